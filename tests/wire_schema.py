"""Validate what the client sends against OpenAI's published schemas (issue 15 item 9b).

``WireSchema(spec)`` wraps ``openai-spec-subset.json`` (read by the ``openai_spec`` fixture from
``../shared/fixtures/openai-spec``): ``CreateResponse`` for HTTP bodies,
``ResponsesClientEventResponseCreate`` for WebSocket ``response.create`` frames,
``RealtimeClientEvent`` for realtime client frames (OpenAI GA dialect).

Two adjustments make the published schema usable as a validator, and ``ALLOWED`` lists the
client's deliberate deviations; each is filled in before validation so nothing else can hide.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from jsonschema import Draft202012Validator

#: Deliberate deviations from the published schema, each observed against the live API.
ALLOWED = {
    "replayed item ids": "with store: false, output items are replayed without their id (the API answers 404 "
    "for ids it did not store); spec 'Common data shapes'",
    "replayed assistant status": "assistant messages replayed as input carry no status (accepted by the live API)",
    "replayed output_text logprobs": "output_text parts are replayed as the server sent them, without logprobs",
}
#: Item types whose published input schema requires an ``id`` the client leaves out with store: false.
_ID_REQUIRED = {"message", "function_call", "reasoning", "web_search_call", "custom_tool_call", "local_shell_call"}
_ID_REQUIRED |= {"code_interpreter_call", "image_generation_call", "file_search_call", "computer_call", "mcp_call"}


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI ``oneOf`` + ``discriminator`` picks the branch by ``type``; in JSON Schema terms that is
    ``anyOf`` (overlapping branches, e.g. EasyInputMessage and InputMessage, are both valid)."""
    if isinstance(node, dict):
        if "oneOf" in node:
            node["anyOf"] = node.pop("oneOf")
        for value in node.values():
            _openapi_to_jsonschema(value)
    elif isinstance(node, list):
        for value in node:
            _openapi_to_jsonschema(value)
    return node


class WireSchema:
    def __init__(self, spec: dict[str, Any]) -> None:
        defs = _openapi_to_jsonschema(copy.deepcopy(spec["$defs"]))
        self._validators = {
            name: Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": defs})
            for name in ("CreateResponse", "ResponsesClientEventResponseCreate", "RealtimeClientEvent", "InputItem")
        }

    def errors(self, kind: str, body: dict[str, Any]) -> list[str]:
        """Problems of ``body`` (``kind``: http, ws or realtime); empty when it conforms."""
        name = {
            "http": "CreateResponse",
            "ws": "ResponsesClientEventResponseCreate",
            "realtime": "RealtimeClientEvent",
        }[kind]
        body = _with_allowed_deviations(body)
        if not any(True for _ in self._validators[name].iter_errors(body)):
            return []
        out = []
        for i, item in enumerate(body.get("input") or [] if isinstance(body.get("input"), list) else []):
            for error in self._validators["InputItem"].iter_errors(item):
                out.append(f"input[{i}] ({item.get('type')}): {_deepest(error)}")
        if not out:
            out = [_deepest(e) for e in self._validators[name].iter_errors(body)]
        return [f"{kind} body: {m}" for m in out[:5]]


def _with_allowed_deviations(body: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(json.dumps(body))
    for item in body.get("input") or [] if isinstance(body.get("input"), list) else []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        assistant = kind == "message" and item.get("role") == "assistant"
        if (assistant or (kind in _ID_REQUIRED and kind != "message")) and "id" not in item:
            item["id"] = f"{kind}_replayed"  # replayed item ids
        if assistant:
            item.setdefault("status", "completed")  # replayed assistant status
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "output_text":
                    part.setdefault("logprobs", [])  # replayed output_text logprobs
    return body


def _deepest(error: Any) -> str:
    """The most specific message: follow the branch that failed on the discriminating ``type`` last."""
    while error.context:
        not_type = [c for c in error.context if list(c.relative_path)[-1:] != ["type"]]
        error = max(not_type or error.context, key=lambda c: len(c.absolute_path))
    return f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:200]}"
