"""The turn accumulator alone: recorded streams in, agent events out, no socket and no session I/O.

The wire events come from ``parse_event`` on each ``data:`` line of the recorded ``.sse`` files;
the header facts from the recorded response headers through ``ModelSession.header_facts`` (pure
state, no request). Expectations come from a plain ``json.loads`` oracle of the same file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from jupyter_agent import events as ev
from jupyter_agent.agent.accumulator import TurnAccumulator
from jupyter_agent.config import resolve_provider
from jupyter_agent.protocol.responses import OutputTextDelta, parse_event
from jupyter_agent.protocol.types import RateLimitSnapshot, RateLimitWindow
from jupyter_agent.session import (
    ModelSession,
    RateLimitsUpdated,
    ServerModelSeen,
    SessionNotice,
    SessionRetry,
    TurnContext,
)
from jupyter_agent.transport.base import ResponseHeaders


def recorded_streams() -> Path:
    """The recorded-streams folder: ``$JUPYTER_AGENT_FIXTURES/recorded-streams``, else the repository's
    copy while it has one, else ``../shared/fixtures/recorded-streams`` next to the checkout."""
    root = os.environ.get("JUPYTER_AGENT_FIXTURES")
    if root:
        return Path(root) / "recorded-streams"
    local = Path(__file__).resolve().parent / "fixtures" / "recorded-streams"
    if local.is_dir():
        return local
    return Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "recorded-streams"


STREAMS = recorded_streams()
NAMES = sorted(p.stem for p in STREAMS.glob("*.sse"))
pytestmark = pytest.mark.skipif(not NAMES, reason=f"no recorded streams under {STREAMS}")


def payloads(name: str) -> list[dict[str, Any]]:
    lines = (STREAMS / f"{name}.sse").read_text(encoding="utf-8").splitlines()
    return [json.loads(line[5:].strip()) for line in lines if line.startswith("data:")]


def wire_events(name: str) -> list[Any]:
    lines = (STREAMS / f"{name}.sse").read_text(encoding="utf-8").splitlines()
    parsed = (parse_event(line[5:].strip()) for line in lines if line.startswith("data:"))
    return [e for e in parsed if e is not None]


def header_facts(name: str, session: ModelSession, ctx: TurnContext) -> list[Any]:
    side = STREAMS / f"{name}.json"
    meta = json.loads(side.read_text(encoding="utf-8")) if side.exists() else {}
    return session.header_facts(ResponseHeaders.from_http(meta.get("response_headers") or {}), ctx)


def fold(events: list[Any], **kw: Any) -> tuple[TurnAccumulator, list[ev.AgentEvent]]:
    out: list[ev.AgentEvent] = []
    acc = TurnAccumulator("t1", out.append, **kw)
    for event in events:
        acc.handle(event)
    return acc, out


@pytest.mark.parametrize("name", NAMES)
def test_recorded_stream_folds_into_agent_events(name: str) -> None:
    raw = payloads(name)
    session = ModelSession(resolve_provider(base_url="http://127.0.0.1:9/v1", api_key="k", env={}, dotenv=None))
    ctx = TurnContext(turn_id="t1")
    acc, out = fold([*header_facts(name, session, ctx), *wire_events(name)], requested_model="")

    text = "".join(e["delta"] for e in raw if e["type"] == "response.output_text.delta")
    assert "".join(e.delta for e in out if isinstance(e, ev.TextDelta)) == text
    done = [e["item"] for e in raw if e["type"] == "response.output_item.done"]
    assert [i.id for i in acc.sampling.items] == [i.get("id") for i in done]
    messages = [i for i in done if i["type"] == "message"]
    assert [(m.text, m.phase) for m in out if isinstance(m, ev.MessageDone)] == [
        ("".join(p.get("text", "") for p in m["content"]), m.get("phase")) for m in messages
    ]
    # Deltas carry the phase their message item announced (spec §8).
    phases = {m["id"]: m.get("phase") for m in messages}
    assert all(d.phase == phases.get(d.item_id) for d in out if isinstance(d, ev.TextDelta) and d.item_id in phases)
    terminal = raw[-1]
    usage = (terminal.get("response") or {}).get("usage") if terminal["type"] == "response.completed" else None
    if usage:
        (u,) = [e.usage for e in out if isinstance(e, ev.UsageEvent)]
        assert (u.input_tokens, u.output_tokens, u.total_tokens) == (
            usage["input_tokens"],
            usage["output_tokens"],
            usage["total_tokens"],
        )
        assert acc.usage == u and acc.sampling.response_id == terminal["response"]["id"]
    else:
        assert not any(isinstance(e, ev.UsageEvent) for e in out)
    # Web searches: one in_progress then one completed event per call.
    searches = [i for i in done if i["type"] == "web_search_call"]
    completed = [e for e in out if isinstance(e, ev.WebSearch) and e.status != "in_progress"]
    assert [e.item_id for e in completed] == [s["id"] for s in searches]
    assert all(e.turn_id == "t1" for e in out)
    if text:
        assert acc.metrics.ttft_ms is not None


def test_server_model_then_reroute_warning_once_per_turn() -> None:
    acc, out = fold(
        [ServerModelSeen("gpt-5.2"), ServerModelSeen("gpt-5.2"), ServerModelSeen("gpt-5.3")],
        requested_model="GPT-5.1",
    )
    kinds = [(type(e).__name__, getattr(e, "model", getattr(e, "to_model", ""))) for e in out]
    assert kinds == [
        ("ServerModel", "gpt-5.2"),
        ("RerouteWarning", "gpt-5.2"),
        ("ServerModel", "gpt-5.3"),
    ]
    assert acc.last_server_model == "gpt-5.3" and acc.reroute_warned


def test_same_model_in_other_case_is_no_reroute() -> None:
    _, out = fold([ServerModelSeen("gpt-5.2")], requested_model="GPT-5.2", last_server_model="gpt-5.2")
    assert out == []


def test_retry_voids_the_failed_attempt() -> None:
    events = wire_events("phase-final-answer-gpt-5.5")
    half = [e for e in events if not isinstance(e, OutputTextDelta)][:3]
    acc, out = fold([*half, *[e for e in events if isinstance(e, OutputTextDelta)][:2]])
    assert acc.sampling.partial_answer()
    acc.handle(SessionRetry(1, 5, 0.2, "HTTP 503"))
    assert acc.sampling.items == [] and acc.sampling.partial_answer() == ""
    assert isinstance(out[-1], ev.Retry) and out[-1].attempt == 1 and out[-1].reason == "HTTP 503"


def test_rate_limits_and_notices_become_agent_events() -> None:
    snap = RateLimitSnapshot(limit_id="codex", primary=RateLimitWindow(used_percent=42.0, window_minutes=60))
    _, out = fold([RateLimitsUpdated(snap), SessionNotice("warning", "Falling back"), SessionNotice("x", "y")])
    assert out == [
        ev.RateLimits(snapshot=snap, turn_id="t1"),
        ev.Notice(level="warning", message="Falling back", turn_id="t1"),
        ev.Notice(level="info", message="y", turn_id="t1"),
    ]


def test_unknown_objects_are_ignored() -> None:
    _, out = fold([object(), {"type": "response.output_text.delta"}, None])
    assert out == []
