"""Builders for common Responses event sequences and scripted replies.

``*_events(...)`` return a list of event dicts (usable in `Reply.events` and in `WsConn.requests`);
``*_reply(...)`` wrap them in a `Reply`.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from .script import Reply, SseItem

__all__ = [
    "usage",
    "created_event",
    "completed_event",
    "text_events",
    "text_reply",
    "function_call_events",
    "function_call_reply",
    "web_search_events",
    "web_search_reply",
    "failed_events",
    "failed_reply",
    "incomplete_events",
    "incomplete_reply",
    "error_reply",
    "last_user_text",
    "echo_responder",
]

_ids = itertools.count(1)
DEFAULT_MODEL = "gpt-5-scripted"


def _next_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids)}"


def usage(input_tokens: int = 10, output_tokens: int = 5, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    """A ``usage`` object as in ``response.completed``."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


def _response(rid: str, model: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": model,
        "output": [],
        **extra,
    }


def created_event(response_id: str, model: str = DEFAULT_MODEL) -> dict[str, Any]:
    """``response.created``."""
    return {"type": "response.created", "response": _response(response_id, model, "in_progress")}


def completed_event(
    response_id: str,
    model: str = DEFAULT_MODEL,
    output: list[dict[str, Any]] | None = None,
    usage_obj: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``response.completed`` with output items and usage."""
    resp = _response(response_id, model, "completed", usage=usage_obj if usage_obj is not None else usage())
    resp["output"] = output or []
    return {"type": "response.completed", "response": resp}


def _split(text: str, chunks: int) -> list[str]:
    if not text:
        return []
    n = max(1, min(chunks, len(text)))
    size = -(-len(text) // n)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _number(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for i, ev in enumerate(events):
        ev["sequence_number"] = i
    return events


def _message_events(
    text: str, phase: str | None, output_index: int, chunks: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    mid = _next_id("msg")
    item: dict[str, Any] = {"type": "message", "id": mid, "status": "in_progress", "role": "assistant", "content": []}
    if phase is not None:
        item["phase"] = phase
    done = {**item, "status": "completed", "content": [{"type": "output_text", "text": text, "annotations": []}]}
    evs: list[dict[str, Any]] = [
        {"type": "response.output_item.added", "output_index": output_index, "item": item},
        {
            "type": "response.content_part.added",
            "item_id": mid,
            "output_index": output_index,
            "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []},
        },
    ]
    for piece in _split(text, chunks):
        evs.append(
            {
                "type": "response.output_text.delta",
                "item_id": mid,
                "output_index": output_index,
                "content_index": 0,
                "delta": piece,
            }
        )
    evs += [
        {
            "type": "response.output_text.done",
            "item_id": mid,
            "output_index": output_index,
            "content_index": 0,
            "text": text,
        },
        {
            "type": "response.content_part.done",
            "item_id": mid,
            "output_index": output_index,
            "content_index": 0,
            "part": {"type": "output_text", "text": text, "annotations": []},
        },
        {"type": "response.output_item.done", "output_index": output_index, "item": done},
    ]
    return evs, done


def text_events(
    text: str,
    *,
    model: str = DEFAULT_MODEL,
    phase: str | None = None,
    response_id: str | None = None,
    chunks: int = 3,
    usage_obj: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """created, message added, ``chunks`` text deltas, message done (with ``phase``), completed."""
    rid = response_id or _next_id("resp")
    msg, done = _message_events(text, phase, 0, chunks)
    return _number([created_event(rid, model), *msg, completed_event(rid, model, [done], usage_obj)])


def text_reply(
    text: str,
    *,
    model: str = DEFAULT_MODEL,
    phase: str | None = None,
    response_id: str | None = None,
    chunks: int = 3,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
    usage_obj: dict[str, Any] | None = None,
) -> Reply:
    """A streamed assistant text answer."""
    evs = text_events(text, model=model, phase=phase, response_id=response_id, chunks=chunks, usage_obj=usage_obj)
    return Reply(headers=dict(headers or {}), events=list(evs), delay=delay)


def function_call_events(
    name: str,
    arguments_json: str,
    *,
    call_id: str = "call_1",
    model: str = DEFAULT_MODEL,
    response_id: str | None = None,
    preamble: str | None = None,
    chunks: int = 2,
) -> list[dict[str, Any]]:
    """created, [commentary message ``preamble``], function_call added, argument deltas, done, completed."""
    rid = response_id or _next_id("resp")
    evs: list[dict[str, Any]] = [created_event(rid, model)]
    output: list[dict[str, Any]] = []
    idx = 0
    if preamble is not None:
        msg, done = _message_events(preamble, "commentary", 0, 1)
        evs += msg
        output.append(done)
        idx = 1
    fid = _next_id("fc")
    item = {
        "type": "function_call",
        "id": fid,
        "call_id": call_id,
        "name": name,
        "arguments": "",
        "status": "in_progress",
    }
    done_item = {**item, "arguments": arguments_json, "status": "completed"}
    evs.append({"type": "response.output_item.added", "output_index": idx, "item": item})
    for piece in _split(arguments_json, chunks):
        evs.append(
            {"type": "response.function_call_arguments.delta", "item_id": fid, "output_index": idx, "delta": piece}
        )
    evs.append(
        {
            "type": "response.function_call_arguments.done",
            "item_id": fid,
            "output_index": idx,
            "arguments": arguments_json,
        }
    )
    evs.append({"type": "response.output_item.done", "output_index": idx, "item": done_item})
    output.append(done_item)
    evs.append(completed_event(rid, model, output))
    return _number(evs)


def function_call_reply(
    name: str,
    arguments_json: str,
    call_id: str = "call_1",
    *,
    model: str = DEFAULT_MODEL,
    response_id: str | None = None,
    preamble: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """A function call the agent should execute."""
    evs = function_call_events(
        name, arguments_json, call_id=call_id, model=model, response_id=response_id, preamble=preamble
    )
    return Reply(headers=dict(headers or {}), events=list(evs))


def web_search_events(
    query: str = "weather seattle",
    *,
    answer: str = "It is sunny.",
    action: dict[str, Any] | None = None,
    call_id: str | None = None,
    model: str = DEFAULT_MODEL,
    response_id: str | None = None,
    phase: str | None = "final_answer",
) -> list[dict[str, Any]]:
    """created, web_search_call in_progress/searching/completed (action ``search`` with ``query``
    unless ``action`` is given), an answer message, completed."""
    rid = response_id or _next_id("resp")
    wid = call_id or _next_id("ws")
    act = action if action is not None else {"type": "search", "query": query}
    started = {"type": "web_search_call", "id": wid, "status": "in_progress"}
    done = {"type": "web_search_call", "id": wid, "status": "completed", "action": act}
    evs: list[dict[str, Any]] = [
        created_event(rid, model),
        {"type": "response.output_item.added", "output_index": 0, "item": started},
        {"type": "response.web_search_call.in_progress", "output_index": 0, "item_id": wid},
        {"type": "response.web_search_call.searching", "output_index": 0, "item_id": wid},
        {"type": "response.web_search_call.completed", "output_index": 0, "item_id": wid},
        {"type": "response.output_item.done", "output_index": 0, "item": done},
    ]
    msg, msg_done = _message_events(answer, phase, 1, 2)
    evs += msg
    evs.append(completed_event(rid, model, [done, msg_done]))
    return _number(evs)


def web_search_reply(query: str = "weather seattle", *, headers: dict[str, str] | None = None, **kw: Any) -> Reply:
    """A web search followed by an answer (see `web_search_events`)."""
    return Reply(headers=dict(headers or {}), events=list(web_search_events(query, **kw)))


def failed_events(
    code: str, message: str, *, model: str = DEFAULT_MODEL, response_id: str | None = None
) -> list[dict[str, Any]]:
    """created, ``response.failed`` with ``error {code, message}``."""
    rid = response_id or _next_id("resp")
    failed = _response(rid, model, "failed", error={"code": code, "message": message}, usage=None)
    return _number([created_event(rid, model), {"type": "response.failed", "response": failed}])


def failed_reply(code: str, message: str, *, headers: dict[str, str] | None = None, **kw: Any) -> Reply:
    """A stream that ends in ``response.failed``."""
    return Reply(headers=dict(headers or {}), events=list(failed_events(code, message, **kw)))


def incomplete_events(
    reason: str = "max_output_tokens",
    *,
    text: str = "",
    model: str = DEFAULT_MODEL,
    response_id: str | None = None,
) -> list[dict[str, Any]]:
    """created, [partial text deltas], ``response.incomplete`` with ``incomplete_details.reason``."""
    rid = response_id or _next_id("resp")
    evs: list[dict[str, Any]] = [created_event(rid, model)]
    if text:
        mid = _next_id("msg")
        item = {"type": "message", "id": mid, "status": "in_progress", "role": "assistant", "content": []}
        evs.append({"type": "response.output_item.added", "output_index": 0, "item": item})
        evs.append(
            {"type": "response.output_text.delta", "item_id": mid, "output_index": 0, "content_index": 0, "delta": text}
        )
    inc = _response(rid, model, "incomplete", incomplete_details={"reason": reason}, usage=usage(10, 0))
    evs.append({"type": "response.incomplete", "response": inc})
    return _number(evs)


def incomplete_reply(reason: str = "max_output_tokens", *, headers: dict[str, str] | None = None, **kw: Any) -> Reply:
    """A stream that ends in ``response.incomplete``."""
    return Reply(headers=dict(headers or {}), events=list(incomplete_events(reason, **kw)))


def error_reply(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",  # wire field name
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **error_fields: Any,
) -> Reply:
    """A non-200 JSON error reply ``{"error": {message, type, param, code, ...}}``."""
    err = {"message": message, "type": type, "param": None, "code": code, **error_fields}
    return Reply(status=status, headers=dict(headers or {}), body={"error": err})


def last_user_text(body: Any) -> str:
    """Text of the last user message (or tool output) in a Responses request body."""
    if not isinstance(body, dict):
        return ""
    inp = body.get("input")
    if isinstance(inp, str):
        return inp
    if not isinstance(inp, list):
        return ""
    for item in reversed(inp):
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call_output":
            out = item.get("output")
            return out if isinstance(out, str) else str(out)
        if item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [
                c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") in ("input_text", "text")
            ]
            return "".join(texts)
    return ""


def echo_responder(req: Any) -> Reply:
    """Responder that quotes the last user input as a ``final_answer`` (prewarm requests with
    ``generate: false`` get an empty completed response)."""
    body = req.json if isinstance(req.json, dict) else {}
    model = str(body.get("model") or DEFAULT_MODEL)
    if body.get("generate") is False:
        rid = _next_id("resp")
        events: list[SseItem] = [*_number([created_event(rid, model), completed_event(rid, model, [], usage(0, 0))])]
        return Reply(events=events)
    said = last_user_text(body).strip()
    text = f'You said: "{said}"' if said else "Hello! Send me a prompt and I will echo it."
    return text_reply(text, model=model, phase="final_answer")
