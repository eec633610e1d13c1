"""The Agent over the Responses WebSocket, against the scripted server over real sockets.

Agent-level scenarios of spec §1 (prewarmed tool chain on one connection), §2.7 (fallback with a
visible notice, sticky), §2.8 (reuse across turns), §4 (server model from the handshake), §5.3
(``codex.rate_limits``), §10 (telemetry summary at turn end), plus cancel and the UI rendering of
the fallback notice and the telemetry line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_agent import events as ev
from jupyter_agent.agent import Agent
from jupyter_agent.session.websocket import TIMING_ENV, WebSocketSession
from jupyter_agent.testing import (
    Ev,
    Hang,
    ScriptedServer,
    WsClose,
    WsConn,
    completed_event,
    created_event,
    function_call_events,
    text_events,
    text_reply,
    usage,
)
from jupyter_agent.ui.transcript import TurnViewState

MODEL = "gpt-5-scripted"
V2 = "responses_websockets=2026-02-06"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def make_agent(server: ScriptedServer, *, prewarm: bool = False, transport: str = "websocket", **kw: Any) -> Agent:
    return Agent(
        model=MODEL,
        base_url=server.base_url,
        provider="openai",
        api_key="sk-ws-test",
        transport=transport,
        prewarm=prewarm,
        web_search="disabled",
        **kw,
    )


def warm(rid: str = "warm-1") -> list[dict[str, Any]]:
    return [created_event(rid), completed_event(rid, output=[], usage_obj=usage(0, 0))]


def of(turn: Any, kind: type) -> list[Any]:
    return [e for e in turn.events if isinstance(e, kind)]


async def until(server: ScriptedServer, predicate: Any, timeout: float = 5.0) -> None:
    assert await asyncio.to_thread(server.wait_for, predicate, timeout)


async def test_prewarmed_tool_chain_and_next_turn_on_one_connection(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(
            headers={"openai-model": MODEL},
            requests=[
                warm(),
                function_call_events("add", '{"a": 2, "b": 3}', call_id="call-1", response_id="resp-1"),
                text_events("2 + 3 = 5", response_id="resp-2", phase="final_answer"),
                text_events("You are welcome.", response_id="resp-3", phase="final_answer"),
            ],
            close_after_requests=False,
        )
    )
    agent = make_agent(server, prewarm=True, tools=[add])
    await until(server, lambda: len(server.ws_connections) == 1 and len(server.ws_connections[0].frames) == 1)
    turn = await agent.ask("what is 2 + 3?")
    assert turn.status == "completed" and turn.text == "2 + 3 = 5"
    turn2 = await agent.ask("thanks")
    assert turn2.text == "You are welcome."
    (rec,) = server.ws_connections  # one handshake for warm-up, both turns and the tool follow-up
    assert rec.headers["openai-beta"] == V2
    warmup, first, follow_up, second = rec.frames
    assert warmup["generate"] is False and warmup["input"] == [] and [t["name"] for t in warmup["tools"]] == ["add"]
    assert first["previous_response_id"] == "warm-1" and "generate" not in first
    assert first["input"][0]["content"][0]["text"] == "what is 2 + 3?"
    assert follow_up["previous_response_id"] == "resp-1"
    assert follow_up["input"] == [{"type": "function_call_output", "call_id": "call-1", "output": "5"}]
    assert second["previous_response_id"] == "resp-2"
    assert [i["content"][0]["text"] for i in second["input"]] == ["thanks"]  # only the new message
    assert turn.telemetry["websocket_calls"]["count"] == 2 and turn.telemetry["api_calls"]["count"] == 0
    assert turn.telemetry["tool_calls"]["count"] == 1
    agent.reset()


async def test_fallback_notice_reaches_events_and_cell_rendering(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(status=426))
    server.add_response(text_reply("over https", phase="final_answer"))
    server.add_response(text_reply("again over https", phase="final_answer"))
    agent = make_agent(server)
    state = TurnViewState()
    turn = await agent.ask("hi", sink=state.handle)
    assert turn.status == "completed" and turn.text == "over https"
    (notice,) = of(turn, ev.Notice)
    assert notice.level == "warning" and notice.message.startswith("Falling back from WebSockets to HTTPS transport.")
    assert "Falling back from WebSockets to HTTPS transport." in state.plain_text()
    assert of(turn, ev.Retry) == []
    turn2 = await agent.ask("again")
    assert turn2.text == "again over https" and of(turn2, ev.Notice) == []  # sticky, told once
    assert len(server.ws_connections) == 1 and len(server.find_requests("POST", "/responses")) == 2
    assert isinstance(agent.session, WebSocketSession) and agent.session.active_transport == "sse"
    agent.reset()


async def test_exhausted_retries_fall_back_without_duplicated_text(server: ScriptedServer) -> None:
    partial = [
        created_event("r"),
        {"type": "response.output_text.delta", "item_id": "m", "delta": "partial "},
        WsClose(1011, "gone"),
    ]
    for _ in range(3):
        server.add_ws_connection(WsConn(requests=[partial]))
    server.add_response(text_reply("the full answer", phase="final_answer"))
    agent = make_agent(server, max_retries=2)
    state = TurnViewState()
    turn = await agent.ask("hi", sink=state.handle)
    assert turn.status == "completed" and turn.text == "the full answer"
    assert [r.display_text for r in of(turn, ev.Retry)][:2] == ["Reconnecting... 1/2", "Reconnecting... 2/2"]
    assert len(of(turn, ev.Notice)) == 1
    assert "partial" not in state.plain_text() and "the full answer" in state.plain_text()
    assert len(server.ws_connections) == 3 and len(server.find_requests("POST")) == 1
    assert [m["role"] for m in agent.transcript()] == ["user", "assistant"]
    t = turn.telemetry
    assert t["api_calls"]["count"] == 1 and t["websocket_calls"]["count"] == 3 and t["streaming_events"]["count"] > 0
    agent.reset()


async def test_codex_rate_limits_event_and_handshake_facts(server: ScriptedServer) -> None:
    rate = {
        "type": "codex.rate_limits",
        "plan_type": "plus",
        "metered_limit_name": "codex",
        "rate_limits": {
            "allowed": True,
            "limit_reached": False,
            "primary": {"used_percent": 42, "window_minutes": 60, "reset_at": 1700000000},
            "secondary": None,
        },
        "code_review_rate_limits": None,
        "credits": {"has_credits": True, "unlimited": False, "balance": "123"},
        "promo": None,
    }
    events = text_events("ok", response_id="resp-1")
    server.add_ws_connection(
        WsConn(
            headers={
                "x-models-etag": "etag-123",
                "x-reasoning-included": "true",
                "x-codex-primary-used-percent": "99",
                "x-codex-primary-window-minutes": "5",
            },
            requests=[[events[0], rate, *events[1:]]],
        )
    )
    agent = make_agent(server)
    turn = await agent.ask("hi")
    (snap_ev,) = of(turn, ev.RateLimits)  # only the event: handshake rate-limit headers are not read
    snap = agent.rate_limits["codex"]
    assert snap_ev.snapshot == snap
    assert snap.plan_type == "plus" and snap.primary is not None
    assert (snap.primary.used_percent, snap.primary.window_minutes, snap.primary.resets_at) == (42, 60, 1700000000)
    assert snap.credits is not None and snap.credits.balance == "123" and snap.secondary is None
    assert agent.session.models_etag == "etag-123" and agent.session.reasoning_included
    agent.reset()


async def test_usage_limit_wrapped_error_emits_rate_limits_then_error(server: ScriptedServer) -> None:
    err = {
        "type": "error",
        "status": 429,
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "pro",
            "resets_at": 1704067242,
        },
        "headers": {
            "x-codex-primary-used-percent": "100.0",
            "x-codex-primary-window-minutes": "15",
            "x-codex-secondary-used-percent": "87.5",
            "x-codex-secondary-window-minutes": "60",
        },
    }
    server.add_ws_connection(WsConn(requests=[[err]]))
    agent = make_agent(server, max_retries=3)
    turn = await agent.ask("hi")
    assert turn.status == "failed"
    kinds = [type(e).__name__ for e in turn.events if isinstance(e, (ev.RateLimits, ev.Error))]
    assert kinds == ["RateLimits", "Error"]
    snap = of(turn, ev.RateLimits)[0].snapshot
    assert (snap.primary.used_percent, snap.primary.window_minutes) == (100.0, 15)
    assert (snap.secondary.used_percent, snap.secondary.window_minutes) == (87.5, 60)
    assert "usage limit" in of(turn, ev.Error)[0].message
    assert len(server.ws_connections) == 1 and server.find_requests("POST") == []
    assert [m["role"] for m in agent.transcript()] == ["user"]  # the message is kept
    agent.reset()


async def test_websocket_telemetry_events(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(requests=[[created_event("resp-1"), completed_event("resp-1", output=[])]]))
    agent = make_agent(server)
    state = TurnViewState()
    turn = await agent.ask("hi", sink=state.handle)
    s = turn.telemetry
    assert (
        s["api_calls"]["count"],
        s["streaming_events"]["count"],
        s["websocket_calls"]["count"],
        s["websocket_events"]["count"],
    ) == (0, 0, 1, 2)
    (tel,) = of(turn, ev.Telemetry)
    assert tel.summary == s and "WebSocket: 1 events send" in tel.line and "2 events received" in tel.line
    assert tel.line in state.plain_text()
    assert "x-responsesapi-include-timing-metrics" not in server.ws_connections[0].headers
    agent.reset()


async def test_timing_metrics_header_and_histograms(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMING_ENV, "1")
    timing = {
        "type": "responsesapi.websocket_timing",
        "timing_metrics": {
            "responses_duration_excl_engine_and_client_tool_time_ms": 120,
            "engine_service_total_ms": 450,
            "engine_iapi_ttft_total_ms": 310,
            "engine_service_ttft_total_ms": 340,
            "engine_iapi_tbt_across_engine_calls_ms": 220,
            "engine_service_tbt_across_engine_calls_ms": 260,
        },
    }
    events = text_events("ok", response_id="resp-1")
    server.add_ws_connection(WsConn(requests=[[*events[:-1], timing, events[-1]]]))
    agent = make_agent(server)
    state = TurnViewState()
    turn = await agent.ask("hi", sink=state.handle)
    assert server.ws_connections[0].headers["x-responsesapi-include-timing-metrics"] == "true"
    s = turn.telemetry
    assert s["responses_duration_excl_engine_and_client_tool_time_ms"] == 120 and s["engine_service_total_ms"] == 450
    line = of(turn, ev.Telemetry)[0].line
    for piece in (
        "Responses API overhead: 120ms",
        "Responses API inference: 450ms",
        "TTFT: 310ms (iapi) 340ms (service)",
        "TBT: 220ms (iapi) 260ms (service)",
    ):
        assert piece in line
    assert line in state.plain_text()
    agent.reset()


async def test_handshake_server_model_warns_once_per_turn_across_follow_ups(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(
            headers={"openai-model": "gpt-5.2"},
            requests=[
                function_call_events("add", '{"a": 1, "b": 1}', call_id="c1", response_id="resp-1"),
                text_events("2", response_id="resp-2", phase="final_answer"),
            ],
            close_after_requests=False,
        )
    )
    agent = make_agent(server, tools=[add])
    turn = await agent.ask("1+1?")
    assert turn.text == "2" and len(of(turn, ev.RerouteWarning)) == 1
    assert of(turn, ev.RerouteWarning)[0].to_model == "gpt-5.2"
    agent.reset()


async def test_cancel_mid_stream_drops_connection_and_next_turn_works(server: ScriptedServer) -> None:
    delta = {"type": "response.output_text.delta", "item_id": "m1", "delta": "thinking"}
    server.add_ws_connection(WsConn(requests=[[created_event("resp-1"), Ev(delta), Hang()]]))
    server.add_ws_connection(WsConn(requests=[text_events("fresh", response_id="resp-2", phase="final_answer")]))
    agent = make_agent(server)
    seen = asyncio.Event()
    loop = asyncio.get_running_loop()
    handle = agent.start(
        "long question", sink=lambda e: isinstance(e, ev.TextDelta) and loop.call_soon_threadsafe(seen.set)
    )
    await asyncio.wait_for(seen.wait(), 5)
    handle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.wrap_future(handle.future), 5)
    assert agent.turns[0].status == "interrupted"
    await until(server, lambda: server.ws_connections[0].closed)
    turn = await agent.ask("next")
    assert turn.text == "fresh"
    frame = server.ws_connections[1].frames[0]
    assert "previous_response_id" not in frame
    texts = [json.dumps(i) for i in frame["input"]]
    assert "long question" in texts[0] and "next" in texts[-1]
    agent.reset()


async def test_auto_transport_uses_websocket_only_where_supported(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(requests=[text_events("over ws", response_id="resp-1", phase="final_answer")]))
    server.add_response(text_reply("over http", phase="final_answer"))
    ws_agent = make_agent(server, transport="auto")  # provider declared as openai: WebSocket first
    assert (await ws_agent.ask("hi")).text == "over ws"
    http_agent = Agent(model=MODEL, base_url=server.base_url, provider="compatible", transport="auto", prewarm=False)
    assert (await http_agent.ask("hi")).text == "over http"
    assert len(server.ws_connections) == 1 and len(server.find_requests("POST", "/responses")) == 1
    ws_agent.reset()
    http_agent.reset()


async def test_a_new_connection_is_prewarmed_too(server: ScriptedServer) -> None:
    """``%agent transport`` / ``%agent connect`` replace the session; the new one warms up like the first."""
    agent = make_agent(server, prewarm=True, transport="sse")
    await asyncio.sleep(0.2)
    assert server.ws_connections == []  # nothing to warm over HTTP+SSE
    server.add_ws_connection(
        WsConn(
            requests=[warm(), text_events("Warm.", response_id="resp-1", phase="final_answer")],
            close_after_requests=False,
        )
    )
    agent.transport = "websocket"
    await until(server, lambda: len(server.ws_connections) == 1 and len(server.ws_connections[0].frames) == 1)
    turn = await agent.ask("hi")
    assert turn.text == "Warm."
    (rec,) = server.ws_connections
    assert rec.frames[0]["generate"] is False and rec.frames[1]["previous_response_id"] == "warm-1"


def test_status_names_the_transport_in_use_after_a_fallback(server: ScriptedServer) -> None:
    from jupyter_agent.magics import status_text

    server.add_ws_connection(WsConn(status=426))
    server.add_response(text_reply("Over HTTPS.", phase="final_answer"))
    agent = make_agent(server)
    turn = agent.start("hello").result(15)
    assert turn.text == "Over HTTPS."
    status = status_text(agent)
    assert "Transport:  websocket (in use: HTTP+SSE; fell back from WebSocket:" in status, status
