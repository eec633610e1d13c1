"""Helpers for the HTTP+SSE client tests; the fixtures (``server``, ``make_agent``, ``recorded_streams``)
are in ``conftest.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from jupyter_agent import events as ev

#: A fake key: tests assert it never leaks into events, errors or history.
API_KEY = "sk-test-h1-0123456789abcdefSECRET"

#: The recorded OpenAI streams (``../shared/fixtures/recorded-streams``, see its README); tests read
#: them through the ``recorded_streams`` fixture, which skips when the directory is absent.
RECORDED_STREAM_NAMES = (
    "error-insufficient-quota-gpt-5",
    "function-call-gpt-4.1",
    "incomplete-max-output-tokens-gpt-4o",
    "phase-commentary-function-call-gpt-5.5",
    "phase-final-answer-gpt-5.5",
    "reasoning-encrypted-function-call-gpt-5",
    "reasoning-summary-code-interpreter-gpt-5",
    "reasoning-summary-multipart-o3-mini",
    "text-basic-gpt-4.1-nano",
    "text-legacy-no-sequence-number-gpt-4.1",
    "web-search-gpt-5",
    "web-search-open-page-find-in-page-gpt-5",
    "web-search-queries-citations-gpt-5.2",
)

E = TypeVar("E", bound=ev.AgentEvent)


def of_type(events: list[ev.AgentEvent], cls: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, cls)]


def sse_payloads(path: Path) -> list[dict[str, Any]]:
    """Independent oracle: the JSON of every ``data:`` line of a recorded ``.sse`` file."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("data:"):
            out.append(json.loads(line[5:].strip()))
    return out


def assert_no_secret(obj: Any) -> None:
    """The API key appears nowhere in the JSON-ish rendering of ``obj``."""
    text = json.dumps(obj, default=lambda o: o.to_dict() if hasattr(o, "to_dict") else repr(o))
    assert API_KEY not in text
