"""Image input in tool outputs, and servers that reject it (issue 13, item 4).

``run_cell`` (and MCP tools) may answer with ``input_text``/``input_image`` parts (spec:
``FunctionCallOutputItemParam.output``). A server without image input answers 400; the request is
then sent again with every image replaced by a short text, the user gets a notice, and later
requests of the session leave images out (history keeps them).
"""

from __future__ import annotations

from typing import Any

from ..protocol import errors as E

IMAGE_OMITTED = "[image omitted: this server does not accept image input]"


def has_images(items: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(item.get("output"), list) and any(p.get("type") == "input_image" for p in item["output"])
        for item in items
        if item.get("type") == "function_call_output"
    )


def strip_images(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` with each input_image part of a function_call_output replaced by a text part."""
    out = []
    for item in items:
        output = item.get("output")
        if item.get("type") == "function_call_output" and isinstance(output, list):
            parts = [
                {"type": "input_text", "text": IMAGE_OMITTED} if p.get("type") == "input_image" else p for p in output
            ]
            item = {**item, "output": parts}
        out.append(item)
    return out


def rejects_images(error: E.AgentError, body: dict[str, Any]) -> bool:
    """A non-retryable 400-class error about images, for a request that carried some."""
    text = (error.message or "").lower()
    return (
        not error.retryable
        and error.status in (400, 415, 422)
        and "image" in text
        and has_images(body.get("input") or [])
    )
