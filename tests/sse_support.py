"""Shared fixtures and helpers for the HTTP+SSE client tests (scripted server over real sockets).

Import the fixtures into a test module with ``from tests.sse_support import server, make_agent``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from jupyter_agent import events as ev
from jupyter_agent.agent import Agent
from jupyter_agent.testing import ScriptedServer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "recorded-streams"
#: A fake key: tests assert it never leaks into events, errors or history.
API_KEY = "sk-test-h1-0123456789abcdefSECRET"

E = TypeVar("E", bound=ev.AgentEvent)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    s = ScriptedServer().start()
    try:
        yield s
    finally:
        s.stop()


AgentFactory = Callable[..., Agent]


@pytest.fixture
def make_agent(server: ScriptedServer) -> Iterator[AgentFactory]:
    """Build SSE agents against the scripted server; their sessions are closed afterwards."""
    made: list[Agent] = []

    def factory(**kw: Any) -> Agent:
        kw.setdefault("model", "gpt-5")
        kw.setdefault("base_url", server.base_url)
        kw.setdefault("api_key", API_KEY)
        kw.setdefault("transport", "sse")
        kw.setdefault("prewarm", False)
        kw.setdefault("max_retries", 0)
        kw.setdefault("web_search", "disabled")
        agent = Agent(**kw)
        made.append(agent)
        return agent

    yield factory
    for agent in made:
        if agent._session is not None:
            agent.agent_loop.run_sync(agent._session.aclose(), timeout=5)


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
