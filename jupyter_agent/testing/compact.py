"""``POST /v1/responses/compact`` of the scripted server, as the real API defines it (openai-api.md §1.1).

The request carries ``model`` and ``input`` (optionally ``instructions``, ``previous_response_id``);
the reply is a ``response.compaction`` object whose ``output`` is the compacted window: the user
messages of the input, then one ``compaction`` item with opaque ``encrypted_content``, and a
``usage``. The scripted "encryption" is base64 of a short summary, so tests can read what was kept.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from .script import RecordedRequest, Reply

_COUNTER = iter(range(1, 1 << 62))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return ""


def compact_reply(rec: RecordedRequest) -> Reply:
    """The compacted window for the request in ``rec`` (400 without ``model`` or a list ``input``)."""
    body = rec.json if isinstance(rec.json, dict) else {}
    items = body.get("input")
    if not body.get("model") or not isinstance(items, list):
        error = {
            "message": "model and input are required",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        return Reply(status=400, body={"error": error})
    n = next(_COUNTER)
    users = [
        i for i in items if isinstance(i, dict) and i.get("type", "message") == "message" and i.get("role") == "user"
    ]
    summary = {
        "items": len(items),
        "tools": sum(1 for i in items if isinstance(i, dict) and i.get("type") == "function_call"),
    }
    output: list[dict[str, Any]] = [
        {
            "id": f"msg_cmp_{n}_{k}",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_text", "text": _text(u.get("content"))}],
        }
        for k, u in enumerate(users)
    ]
    output.append(
        {
            "id": f"cmp_{n}",
            "type": "compaction",
            "encrypted_content": base64.b64encode(json.dumps(summary).encode()).decode(),
        }
    )
    in_tokens = max(1, len(rec.body) // 4)
    usage = {
        "input_tokens": in_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 64,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": in_tokens + 64,
    }
    reply = {
        "id": f"resp_cmp_{n}",
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": output,
        "usage": usage,
    }
    return Reply(body=reply, headers={"content-type": "application/json"})
