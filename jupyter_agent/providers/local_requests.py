"""Request adaptation for the embedded model: standard Responses bodies → what xllamacpp accepts.

Findings (xllamacpp 2026.10.11549, measured by sending each field on its own)
-----------------------------------------------------------------------------
Rejected with HTTP 400 (``{"error": {"code": 400, "message": ..., "type":
"invalid_request_error"}}``) -- :func:`adapt_request` removes them:

* ``previous_response_id`` -> "llama.cpp does not support 'previous_response_id'."
* ``reasoning`` input items (with or without summary) -> "item['content'] is not an array"
* ``web_search_call`` (and any other non-message/non-function item) -> "Cannot determine type of 'item'"
* an assistant message whose ``content`` is a plain string -> "Cannot determine type of 'item'"
  (a user message with string content is accepted)
* ``refusal`` content parts -> "unsupported content[].type"
* ``top_logprobs`` without ``logprobs`` -> "top_logprobs requires logprobs to be set to true"
* ``input_image`` parts -> HTTP 500 "image input is not supported ... mmproj"

Accepted but mishandled -- converted or dropped by :func:`adapt_request`:

* no ``instructions`` -> the model babbles in French ("L'Étoile, la Marseillaise, ...");
  the system prompt is always added.
* ``function_call`` / ``function_call_output`` items are rendered by the SmolLM2 chat
  template as an *empty* assistant turn followed by an unknown ``tool`` role; the model
  then ignores or misreads the result (3 probes: 2/3 used it, 1 answered nonsense).  Folding the call and its
  output into the text of a user message gave 3/3 answers that used the result.
* ``tools`` (function, web_search, custom, local_shell) are silently dropped (the template
  has no tool support, ``/props`` says ``supports_tools=false``); ``tool_choice`` as an object
  logs "Wrong type supplied for parameter 'tool_choice'" and is ignored; ``text.format``
  json_schema is ignored.  All of them are stripped so nothing pretends to work.
* ``max_output_tokens`` absent -> no cap and the model loops; it is always set.

Accepted and ignored (harmless; still stripped to keep the body minimal):
``reasoning`` (null or an object), ``include``, ``store`` (true/false), ``prompt_cache_key``,
``parallel_tool_calls``, ``tool_choice`` strings, ``text.verbosity``, ``metadata``,
``service_tier``, ``truncation``, ``conversation``, ``client_metadata``, ``user``,
``safety_identifier``, ``background``, ``stream_options``, ``phase`` / ``id`` / ``status`` on
input messages, ``annotations`` / ``logprobs`` on ``output_text`` parts, ``input_text`` parts
in assistant messages, a string ``input``, any ``model`` value.

"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = ["LOCAL_MAX_OUTPUT_TOKENS", "LOCAL_SYSTEM_PROMPT", "MODEL_ALIAS", "adapt_request"]

MODEL_ALIAS = "SmolLM2-135M-Instruct"
# Measured against variants: mentioning "Jupyter notebook" or "two sentences" made answers worse.
LOCAL_SYSTEM_PROMPT = "You are a concise, accurate assistant. Answer in one short sentence."
LOCAL_MAX_OUTPUT_TOKENS = 160

# Top-level request fields forwarded to xllamacpp; everything else is dropped.
_FORWARDED_FIELDS = ("model", "instructions", "input", "stream", "max_output_tokens", "temperature", "top_p")


def _content_text(content: Any) -> str:
    """Plain text of a message's ``content`` (string or list of parts)."""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content or []:
        if isinstance(part, dict):
            kind = part.get("type")
            if kind in ("input_text", "output_text", "text", "summary_text"):
                texts.append(str(part.get("text", "")))
            elif kind == "refusal":
                texts.append(str(part.get("refusal", "")))
        elif isinstance(part, str):
            texts.append(part)
    return "\n".join(t for t in texts if t)


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return _content_text(output)
    return json.dumps(output)


def _message(role: str, text: str) -> dict[str, Any]:
    part_type = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": part_type, "text": text}]}


def _adapt_input(items: Any) -> list[dict[str, Any]]:
    """Map standard Responses input items onto shapes xllamacpp renders well."""
    if isinstance(items, str):
        return [_message("user", items)]
    out: list[dict[str, Any]] = []
    calls: dict[str, str] = {}

    def add_user_text(text: str) -> None:
        # Fold tool results into the latest user turn when it is the last item.
        if out and out[-1]["role"] == "user":
            out[-1]["content"][0]["text"] += "\n\n" + text
        else:
            out.append(_message("user", text))

    for item in items or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role", "user")
            if role not in ("user", "assistant", "system", "developer"):
                continue
            text = _content_text(item.get("content"))
            if not text:
                continue
            out.append(_message(role, text))
        elif kind in ("function_call", "custom_tool_call", "local_shell_call"):
            name = item.get("name", kind)
            args = item.get("arguments", item.get("input", item.get("action", "")))
            if not isinstance(args, str):
                args = json.dumps(args)
            calls[str(item.get("call_id", ""))] = f"{name}({args})"
        elif kind in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
            call = calls.pop(str(item.get("call_id", "")), "a tool")
            add_user_text(f"Tool {call} returned: {_output_text(item.get('output'))}")
        # reasoning, web_search_call, item_reference, ...: rejected by xllamacpp, dropped.
    if not out or out[-1]["role"] == "assistant":
        # Calls without outputs (or a history ending on the assistant) still need a user turn.
        pending = "; ".join(calls.values())
        if pending:
            out.append(_message("user", f"Tool call {pending} has no result yet."))
    return out


def adapt_request(body: dict[str, Any]) -> dict[str, Any]:
    """Turn a standard Responses request body into one xllamacpp accepts and answers sensibly.

    Keeps ``model``, ``stream`` and sampling fields; drops ``previous_response_id``,
    ``tools``/``tool_choice``/``parallel_tool_calls``, ``reasoning``, ``include``,
    ``store``, ``prompt_cache_key``, ``text`` and all other fields; rewrites ``input``
    (see :func:`_adapt_input`); prefixes ``instructions`` with
    :data:`LOCAL_SYSTEM_PROMPT`; caps ``max_output_tokens`` at
    :data:`LOCAL_MAX_OUTPUT_TOKENS`.  The input dict is not modified.
    """
    src = copy.deepcopy(body)
    out: dict[str, Any] = {k: src[k] for k in _FORWARDED_FIELDS if src.get(k) is not None}
    out["model"] = MODEL_ALIAS
    instructions = str(src.get("instructions") or "").strip()
    if LOCAL_SYSTEM_PROMPT not in instructions:
        instructions = f"{LOCAL_SYSTEM_PROMPT}\n\n{instructions}".strip()
    out["instructions"] = instructions
    out["input"] = _adapt_input(src.get("input"))
    requested = src.get("max_output_tokens")
    out["max_output_tokens"] = min(int(requested), LOCAL_MAX_OUTPUT_TOKENS) if requested else LOCAL_MAX_OUTPUT_TOKENS
    out["stream"] = bool(src.get("stream", False))
    return out
