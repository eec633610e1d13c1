"""Scripted replies for the tool, approval and persistence tests (several items per response)."""

from __future__ import annotations

import itertools
import json
from typing import Any

from jupyter_agent.testing import Reply
from jupyter_agent.testing.replies import completed_event, created_event

_ids = itertools.count(1)


def call_item(name: str, arguments: dict[str, Any] | str, call_id: str) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "type": "function_call",
        "id": f"fc_{next(_ids)}",
        "call_id": call_id,
        "name": name,
        "arguments": args,
        "status": "completed",
    }


def message_item(text: str, phase: str | None = "final_answer") -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "message",
        "id": f"msg_{next(_ids)}",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    if phase is not None:
        item["phase"] = phase
    return item


def reasoning_item(summary: str, encrypted: str) -> dict[str, Any]:
    return {
        "type": "reasoning",
        "id": f"rs_{next(_ids)}",
        "summary": [{"type": "summary_text", "text": summary}],
        "encrypted_content": encrypted,
    }


def items_events(*items: dict[str, Any], model: str = "gpt-5") -> list[dict[str, Any]]:
    """One response whose output is ``items`` (each added, then done; message text streamed as one delta)."""
    rid = f"resp_{next(_ids)}"
    evs: list[dict[str, Any]] = [created_event(rid, model)]
    for idx, item in enumerate(items):
        added = {**item, "status": "in_progress"}
        if item["type"] == "message":
            added["content"] = []
        if item["type"] == "function_call":
            added["arguments"] = ""
        evs.append({"type": "response.output_item.added", "output_index": idx, "item": added})
        if item["type"] == "message":
            text = item["content"][0]["text"]
            evs.append(
                {
                    "type": "response.output_text.delta",
                    "item_id": item["id"],
                    "output_index": idx,
                    "content_index": 0,
                    "delta": text,
                }
            )
        evs.append({"type": "response.output_item.done", "output_index": idx, "item": item})
    evs.append(completed_event(rid, model, list(items)))
    for i, e in enumerate(evs):
        e["sequence_number"] = i
    return evs


def items_reply(*items: dict[str, Any]) -> Reply:
    return Reply(events=items_events(*items))


def calls_reply(*calls: tuple[str, dict[str, Any] | str, str], preamble: str | None = None) -> Reply:
    """One response with a commentary preamble (optional) and several function calls."""
    items = [message_item(preamble, "commentary")] if preamble else []
    items += [call_item(name, args, cid) for name, args, cid in calls]
    return items_reply(*items)


def outputs(request_json: dict[str, Any]) -> dict[str, str]:
    """``call_id -> output`` of the function_call_output items a request sent."""
    return {i["call_id"]: i["output"] for i in request_json["input"] if i.get("type") == "function_call_output"}
