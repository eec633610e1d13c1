"""Responses WebSocket transport and session against the scripted server over real sockets.

Spec §1 (prewarm), §2 (transport, incremental requests, errors, reuse), §6 (turn state), §7
(handshake headers replayed). v2 semantics only: the v1 ``response.append`` / connect-only
preconnect tests are not replicated (v1 was removed upstream).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_agent.config import resolve_provider
from jupyter_agent.protocol import errors as E
from jupyter_agent.protocol.responses import ErrorEvent, OutputTextDelta, ResponseCompleted, parse_event_dict
from jupyter_agent.session import (
    ModelSession,
    ModelsEtagSeen,
    RateLimitsUpdated,
    ReasoningIncluded,
    ServerModelSeen,
    SessionNotice,
    SessionOptions,
    SessionRetry,
    TurnContext,
    make_session,
)
from jupyter_agent.session.websocket import WebSocketSession
from jupyter_agent.testing import (
    Ev,
    Hang,
    Raw,
    ScriptedServer,
    WsAccept,
    WsBinary,
    WsClose,
    WsConn,
    WsDrop,
    WsPing,
    completed_event,
    created_event,
    echo_responder,
    failed_events,
    function_call_events,
    text_events,
    text_reply,
    usage,
)
from jupyter_agent.transport.base import ResponseHeaders, StreamState
from jupyter_agent.transport.websocket import (
    BETA_V2,
    LastResponse,
    WsConnection,
    handshake_headers,
    plan_request,
    websocket_url,
)

MODEL = "gpt-5-scripted"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def session_for(server: ScriptedServer, *, max_retries: int = 0, idle: float = 5.0, **kw: Any) -> WebSocketSession:
    provider = resolve_provider(base_url=server.base_url, provider="openai", api_key="sk-test-key", env={}, dotenv=None)
    return WebSocketSession(
        provider, options=SessionOptions(max_retries=max_retries, idle_timeout=idle, backoff_base=0.01), **kw
    )


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def assistant(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
        "phase": "final_answer",
    }


def body(items: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "model": MODEL,
        "instructions": "be brief",
        "input": items,
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": None,
        "store": False,
        "stream": True,
        "prompt_cache_key": "conv-1",
    }
    b.update(over)
    return b


def warm(rid: str = "warm-1") -> list[dict[str, Any]]:
    return [created_event(rid), completed_event(rid, output=[], usage_obj=usage(0, 0))]


async def run(session: ModelSession, b: dict[str, Any], turn: TurnContext | None = None) -> list[Any]:
    return [e async for e in session.stream(b, turn or TurnContext())]


async def until(server: ScriptedServer, predicate: Any, timeout: float = 5.0) -> None:
    """Wait for a server-side condition without blocking this loop (the client runs on it)."""
    assert await asyncio.to_thread(server.wait_for, predicate, timeout)


def text_of(events: list[Any]) -> str:
    return "".join(e.delta for e in events if isinstance(e, OutputTextDelta))


# --------------------------------------------------------------------------- units


def test_websocket_url_swaps_scheme() -> None:
    assert websocket_url("https://api.openai.com/v1/responses") == "wss://api.openai.com/v1/responses"
    assert websocket_url("http://127.0.0.1:9/v1/responses?k=v") == "ws://127.0.0.1:9/v1/responses?k=v"
    assert websocket_url("wss://x/responses") == "wss://x/responses"


def test_merge_request_headers_matches_http_precedence() -> None:
    http = {
        "originator": "jupyter_agent",
        "User-Agent": "ua",
        "session_id": "s",
        "OpenAI-Beta": "custom",
        "Authorization": "Bearer k",
    }
    ws = handshake_headers(http)
    assert ws == {
        "originator": "jupyter_agent",
        "session_id": "s",
        "OpenAI-Beta": "custom",
        "Authorization": "Bearer k",
    }
    ws2 = handshake_headers({"session_id": "s"}, timing_metrics=True)
    assert ws2 == {"session_id": "s", "OpenAI-Beta": BETA_V2, "x-responsesapi-include-timing-metrics": "true"}


def _wrapped(raw: dict[str, Any]) -> E.AgentError | None:
    event = parse_event_dict(raw)
    try:
        StreamState().check_terminal(event)
    except E.AgentError as err:
        return err
    return None


def test_parse_wrapped_websocket_error_event_maps_to_transport_http() -> None:
    err = _wrapped(
        {
            "type": "error",
            "status": 429,
            "error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": "pro",
                "resets_at": 1704067242,
            },
            "headers": {"x-codex-primary-used-percent": "100.0", "x-codex-primary-window-minutes": 15, "x-flag": True},
        }
    )
    assert isinstance(err, E.UsageLimitReached) and err.status == 429
    assert err.rate_limits[0].primary is not None and err.rate_limits[0].primary.used_percent == 100.0
    assert err.rate_limits[0].primary.window_minutes == 15


def test_parse_wrapped_websocket_error_with_status_maps_invalid_request() -> None:
    err = _wrapped(
        {
            "type": "error",
            "status_code": 400,
            "error": {"type": "invalid_request_error", "message": "Model does not support image inputs"},
        }
    )
    assert isinstance(err, E.InvalidRequest) and not err.retryable and "does not support image inputs" in err.message


def test_parse_wrapped_websocket_error_without_status_or_2xx_is_not_mapped() -> None:
    assert _wrapped({"type": "error", "status": 200, "error": {"message": "fine"}}) is None
    assert isinstance(parse_event_dict({"type": "error", "status": 200}), ErrorEvent)
    assert _wrapped({"type": "response.output_text.delta", "delta": "x"}) is None  # non-error payloads


def test_plan_request_rules() -> None:
    b1 = body([user("one")])
    out1 = [
        parse_event_dict(
            {"type": "response.output_item.done", "item": {**assistant("hi"), "id": "msg_1", "status": "completed"}}
        ).item
    ]  # type: ignore[union-attr]
    last = LastResponse("resp-1", out1)
    frame, inc = plan_request(body([user("one"), assistant("hi"), user("two")]), b1, last)
    assert (
        inc
        and frame["previous_response_id"] == "resp-1"
        and frame["input"] == [user("two")]
        and frame["type"] == "response.create"
    )
    frame, inc = plan_request(body([user("one")]), b1, last)  # shorter than baseline
    assert not inc and "previous_response_id" not in frame
    frame, inc = plan_request(body([user("other"), assistant("hi"), user("two")]), b1, last)  # non-prefix
    assert not inc and len(frame["input"]) == 3
    frame, inc = plan_request(body([user("one"), assistant("hi"), user("two")], instructions="changed"), b1, last)
    assert not inc and frame["instructions"] == "changed"
    frame, inc = plan_request(body([user("one")]), b1, LastResponse("", []))  # no id: full create
    assert not inc
    frame, inc = plan_request(body([user("one")]), b1, LastResponse("warm-1", []))  # same input: empty delta (v2)
    assert inc and frame["input"] == [] and frame["previous_response_id"] == "warm-1"
    # a reasoning item without encrypted content may be missing from the replay
    reasoning = parse_event_dict(
        {"type": "response.output_item.done", "item": {"type": "reasoning", "id": "rs_1", "summary": []}}
    ).item  # type: ignore[union-attr]
    frame, inc = plan_request(
        body([user("one"), assistant("hi"), user("two")]), b1, LastResponse("resp-1", [reasoning, *out1])
    )
    assert inc and frame["input"] == [user("two")]


def test_factory_picks_transport_per_provider(server: ScriptedServer) -> None:
    openai = resolve_provider(base_url=server.base_url, provider="openai", api_key="k", env={}, dotenv=None)
    compatible = resolve_provider(base_url=server.base_url, provider="compatible", env={}, dotenv=None)
    assert type(make_session(openai, "auto")) is WebSocketSession
    assert type(make_session(openai, "sse")) is ModelSession
    assert type(make_session(compatible, "auto")) is ModelSession
    assert type(make_session(compatible, "websocket")) is WebSocketSession
    local = resolve_provider(provider="local", env={}, dotenv=None)
    assert type(make_session(local, "websocket")) is ModelSession
    azure = resolve_provider(base_url="https://x.openai.azure.com/openai/v1", api_key="k", env={}, dotenv=None)
    assert type(make_session(azure, "auto")) is WebSocketSession


# --------------------------------------------------------------------------- streaming


async def test_responses_websocket_streams_request(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(requests=[text_events("hello", response_id="resp-1")]))
    s = session_for(server)
    events = await run(s, body([user("hi")]))
    # Header facts are translated by the session: raw transport headers never reach the agent.
    assert not any(isinstance(e, ResponseHeaders) for e in events) and text_of(events) == "hello"
    assert isinstance(events[-1], ResponseCompleted)
    rec = server.wait_for_ws_connections(1)[0]
    (frame,) = rec.frames
    assert frame["type"] == "response.create" and frame["model"] == MODEL and frame["stream"] is True
    assert frame["input"] == [user("hi")] and "generate" not in frame and "previous_response_id" not in frame
    h = rec.headers
    assert h["openai-beta"] == BETA_V2 and h["session_id"] == s.conversation_id
    assert h["authorization"] == "Bearer sk-test-key" and h["originator"] == "jupyter_agent"
    assert not h.get("user-agent", "").startswith("jupyter_agent")  # no UA of our own on WS
    assert "x-codex-turn-state" not in h
    assert rec.deflate  # permessage-deflate offered and negotiated
    await s.aclose()


async def test_prewarm_reuses_connection(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(requests=[warm(), text_events("ok", response_id="resp-1")], close_after_requests=False)
    )
    s = session_for(server)
    b = body([user("hi")])
    s.start_prewarm(b)
    events = await run(s, b)
    assert text_of(events) == "ok"
    assert s.prewarm_response_id == "warm-1"
    (rec,) = server.ws_connections
    f1, f2 = rec.frames
    assert f1["type"] == "response.create" and f1["generate"] is False and f1["tools"] == []
    assert f2["previous_response_id"] == "warm-1" and f2["input"] == [] and "generate" not in f2
    await s.aclose()


async def test_prewarm_is_reused_even_with_header_changes(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(requests=[warm(), text_events("ok", response_id="resp-1")], close_after_requests=False)
    )
    s = session_for(server)
    s.start_prewarm(body([]))
    turn = TurnContext()  # another turn id -> other turn metadata: chaining is not affected
    events = await run(s, body([user("hi")]), turn)
    assert text_of(events) == "ok" and len(server.ws_connections) == 1
    f1, f2 = server.ws_connections[0].frames
    assert f2["previous_response_id"] == "warm-1" and f2["input"] == [user("hi")]
    assert json.loads(f2["client_metadata"]["x-codex-turn-metadata"])["turn_id"] == turn.turn_id
    assert f1["client_metadata"]["x-codex-turn-metadata"] != f2["client_metadata"]["x-codex-turn-metadata"]
    await s.aclose()


async def test_prewarm_rejected_generate_costs_only_the_warmup(server: ScriptedServer) -> None:
    rejected = {
        "type": "error",
        "status": 400,
        "error": {"type": "invalid_request_error", "message": "Unsupported parameter: generate", "param": "generate"},
    }
    server.add_ws_connection(WsConn(requests=[[rejected]], close_after_requests=False))
    server.add_ws_connection(WsConn(requests=[text_events("fine", response_id="resp-1")], close_after_requests=False))
    s = session_for(server)
    s.start_prewarm(body([]))
    events = await run(s, body([user("hi")]))
    assert text_of(events) == "fine" and not any(isinstance(e, (SessionRetry, SessionNotice)) for e in events)
    second = server.ws_connections[1].frames[0]
    assert second["input"] == [user("hi")] and "previous_response_id" not in second
    assert not s.http_fallback
    await s.aclose()


async def test_reuses_connection_across_turns_with_incremental_requests(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(
            requests=[
                text_events("first", response_id="resp-1", phase="final_answer"),
                text_events("second", response_id="resp-2"),
            ],
            close_after_requests=False,
        )
    )
    s = session_for(server)
    events = await run(s, body([user("one")]))
    done = [e.item for e in events if type(e).__name__ == "OutputItemDone"]
    history = [user("one"), *(i.to_input() for i in done), user("two")]
    for item in history:
        if item.get("type") == "message":
            item.pop("status", None)
    assert text_of(await run(s, body(history))) == "second"
    (rec,) = server.ws_connections
    assert len(rec.frames) == 2
    assert rec.frames[1]["previous_response_id"] == "resp-1" and rec.frames[1]["input"] == [user("two")]
    await s.aclose()


async def test_creates_on_non_prefix_and_when_non_input_fields_change(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(
            requests=[
                text_events("a", response_id="resp-1"),
                text_events("b", response_id="resp-2"),
                text_events("c", response_id="resp-3"),
            ],
            close_after_requests=False,
        )
    )
    s = session_for(server)
    await run(s, body([user("one")]))
    await run(s, body([user("not one"), user("two")]))
    await run(s, body([user("not one"), user("two")], instructions="other"))
    f = server.ws_connections[0].frames
    assert "previous_response_id" not in f[1] and f[1]["input"] == [user("not one"), user("two")]
    assert "previous_response_id" not in f[2] and f[2]["instructions"] == "other" and len(f[2]["input"]) == 2
    await s.aclose()


async def test_v2_creates_with_previous_response_id_on_prefix(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(
            requests=[text_events("a", response_id="resp-1"), text_events("b", response_id="resp-2")],
            close_after_requests=False,
        )
    )
    s = session_for(server)
    events = await run(s, body([user("one")]))
    msg = next(e.item for e in events if type(e).__name__ == "OutputItemDone").to_input()
    await run(s, body([user("one"), msg, user("two")]))
    f2 = server.ws_connections[0].frames[1]
    assert f2["previous_response_id"] == "resp-1" and f2["input"] == [user("two")]
    await s.aclose()


async def test_after_error_uses_full_create_on_new_connection(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(
            requests=[text_events("a", response_id="resp-1"), failed_events("invalid_prompt", "bad prompt")],
            close_after_requests=False,
        )
    )
    server.add_ws_connection(WsConn(requests=[text_events("c", response_id="resp-3")], close_after_requests=False))
    s = session_for(server)
    events = await run(s, body([user("one")]))
    msg = next(e.item for e in events if type(e).__name__ == "OutputItemDone").to_input()
    with pytest.raises(E.InvalidRequest, match="bad prompt"):
        await run(s, body([user("one"), msg, user("two")]))
    third = body([user("one"), msg, user("two"), user("three")])
    assert text_of(await run(s, third)) == "c"
    assert len(server.ws_connections) == 2
    f = server.ws_connections[1].frames[0]
    assert "previous_response_id" not in f and f["input"] == third["input"]
    await s.aclose()


async def test_invalid_request_error_with_status_is_forwarded(server: ScriptedServer) -> None:
    err = {
        "type": "error",
        "status": 400,
        "error": {"type": "invalid_request_error", "message": "Model gpt-x does not support image inputs"},
    }
    server.add_ws_connection(WsConn(requests=[[err]], close_after_requests=False))
    s = session_for(server, max_retries=3)
    with pytest.raises(E.InvalidRequest, match="does not support image inputs"):
        await run(s, body([user("look")]))
    assert len(server.ws_connections) == 1  # not retried
    await s.aclose()


async def test_handshake_headers_replayed_at_every_request(server: ScriptedServer) -> None:
    headers = {
        "openai-model": "gpt-5.2",
        "x-models-etag": "etag-123",
        "x-reasoning-included": "true",
        "x-codex-primary-used-percent": "50",
        "x-codex-primary-window-minutes": "60",
    }
    server.add_ws_connection(
        WsConn(
            headers=headers,
            requests=[text_events("a", response_id="resp-1"), text_events("b", response_id="resp-2")],
            close_after_requests=False,
        )
    )
    s = session_for(server)
    for prompt in ("one", "two"):
        got = await run(s, body([user(prompt)]))
        facts = [
            e for e in got if isinstance(e, (ServerModelSeen, ModelsEtagSeen, ReasoningIncluded, RateLimitsUpdated))
        ]
        # Rate limits are never read from the handshake.
        assert facts == [ModelsEtagSeen("etag-123"), ReasoningIncluded(), ServerModelSeen("gpt-5.2")]
    assert s.models_etag == "etag-123" and s.reasoning_included
    await s.aclose()


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ([created_event("r"), WsBinary(b"\x00")], "unexpected binary websocket event"),
        ([created_event("r"), WsClose(1000, "bye")], "websocket closed by server before response.completed"),
        ([created_event("r"), Hang()], "idle timeout waiting for websocket"),
        ([created_event("r"), WsDrop()], "stream closed before response.completed"),
    ],
)
async def test_stream_end_errors(server: ScriptedServer, script: list[Any], message: str) -> None:
    server.add_ws_connection(WsConn(requests=[script], close_after_requests=False))
    conn = await WsConnection.open(server.ws_base_url + "/responses", {})
    with pytest.raises(E.StreamError, match=message) as info:
        async for _ in conn.stream(body([user("hi")]), idle_timeout=0.3):
            pass
    assert info.value.retryable
    assert conn.closed  # any stream error drops the connection


async def test_unparseable_frames_are_skipped(server: ScriptedServer) -> None:
    events = text_events("fine", response_id="resp-1")
    server.add_ws_connection(
        WsConn(requests=[[events[0], Raw(b"{not json"), Raw(b"[1,2]"), {"no": "type"}, *events[1:]]])
    )
    s = session_for(server)
    got = await run(s, body([user("hi")]))
    assert text_of(got) == "fine" and isinstance(got[-1], ResponseCompleted)
    await s.aclose()


@pytest.mark.parametrize("code", ["previous_response_not_found", "websocket_connection_limit_reached"])
async def test_lost_chain_recovers_with_new_connection_and_full_request(server: ScriptedServer, code: str) -> None:
    err = {
        "type": "error",
        "status": 400,
        "error": {"type": "invalid_request_error", "code": code, "message": f"{code} happened"},
    }
    server.add_ws_connection(
        WsConn(requests=[text_events("a", response_id="resp-1"), [err]], close_after_requests=False)
    )
    server.add_ws_connection(WsConn(requests=[text_events("b", response_id="resp-2")], close_after_requests=False))
    s = session_for(server, max_retries=2)
    events = await run(s, body([user("one")]))
    msg = next(e.item for e in events if type(e).__name__ == "OutputItemDone").to_input()
    second = body([user("one"), msg, user("two")])
    got = await run(s, second)
    assert text_of(got) == "b"
    assert not any(isinstance(e, SessionRetry) for e in got)  # first quiet reconnect, no backoff
    assert server.ws_connections[0].frames[1]["previous_response_id"] == "resp-1"
    f = server.ws_connections[1].frames[0]
    assert "previous_response_id" not in f and f["input"] == second["input"]
    assert not s.http_fallback
    await s.aclose()


async def test_server_closed_idle_connection_is_replaced_before_next_request(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(requests=[text_events("a", response_id="resp-1")]))  # closes after the request
    server.add_ws_connection(WsConn(requests=[text_events("b", response_id="resp-2")]))
    s = session_for(server)
    await run(s, body([user("one")]))
    await until(server, lambda: server.ws_connections[0].closed)
    got = await run(s, body([user("two")]))
    assert text_of(got) == "b" and not any(isinstance(e, SessionRetry) for e in got)
    assert "previous_response_id" not in server.ws_connections[1].frames[0]
    await s.aclose()


async def test_websocket_turn_state_persists_within_turn_and_resets_after(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(
            headers={"x-codex-turn-state": "ts-1"},
            requests=[function_call_events("f", "{}", call_id="c1", response_id="resp-1")],
        )
    )
    server.add_ws_connection(
        WsConn(headers={"x-codex-turn-state": "ts-2"}, requests=[text_events("done", response_id="resp-2")])
    )
    server.add_ws_connection(WsConn(requests=[text_events("new turn", response_id="resp-3")]))
    s = session_for(server)
    turn1 = TurnContext()
    await run(s, body([user("one")]), turn1)
    await until(server, lambda: server.ws_connections[0].closed)
    await run(s, body([user("one"), {"type": "function_call_output", "call_id": "c1", "output": "x"}]), turn1)
    assert turn1.turn_state == "ts-1"  # write-once
    await until(server, lambda: server.ws_connections[1].closed)
    await run(s, body([user("three")]), TurnContext())
    hs = [c.headers.get("x-codex-turn-state") for c in server.ws_connections]
    assert hs == [None, "ts-1", None]
    await s.aclose()


async def test_prewarm_turn_state_becomes_first_turn_state(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(headers={"x-codex-turn-state": "ts-warm"}, requests=[warm()])
    )  # closes after warm-up
    server.add_ws_connection(WsConn(requests=[text_events("ok", response_id="resp-1")]))
    s = session_for(server)
    s.start_prewarm(body([]))
    turn = TurnContext()
    await until(server, lambda: len(server.ws_connections) == 1 and server.ws_connections[0].closed)
    assert text_of(await run(s, body([user("hi")]), turn)) == "ok"
    assert turn.turn_state == "ts-warm"
    assert server.ws_connections[1].headers["x-codex-turn-state"] == "ts-warm"
    await s.aclose()


async def test_client_metadata_dropped_when_server_rejects_it(server: ScriptedServer) -> None:
    err = {
        "type": "error",
        "status": 400,
        "error": {
            "type": "invalid_request_error",
            "message": "Unknown parameter: 'client_metadata'.",
            "param": "client_metadata",
        },
    }
    server.add_ws_connection(WsConn(requests=[[err]], close_after_requests=False))
    server.add_ws_connection(WsConn(requests=[text_events("ok", response_id="resp-1")], close_after_requests=False))
    s = session_for(server)
    assert text_of(await run(s, body([user("hi")]))) == "ok"
    assert "client_metadata" in server.ws_connections[0].frames[0]
    assert "client_metadata" not in server.ws_connections[1].frames[0]
    await s.aclose()


# --------------------------------------------------------------------------- fallback (§2.7)


async def test_fallback_switches_to_http_on_upgrade_required(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(status=426))
    server.add_response(text_reply("over http", response_id="resp-1"))
    server.add_response(text_reply("still http", response_id="resp-2"))
    s = session_for(server, max_retries=3)
    got = await run(s, body([user("hi")]))
    notices = [e for e in got if isinstance(e, SessionNotice)]
    assert [n.message for n in notices] == [
        "Falling back from WebSockets to HTTPS transport. WebSocket handshake refused with HTTP 426."
    ]
    assert text_of(got) == "over http" and not any(isinstance(e, SessionRetry) for e in got)
    assert s.http_fallback and s.active_transport == "sse"
    got2 = await run(s, body([user("again")]))  # sticky: no more WebSocket attempts, no second notice
    assert text_of(got2) == "still http" and not any(isinstance(e, SessionNotice) for e in got2)
    assert len(server.ws_connections) == 1 and len(server.find_requests("POST", "/responses")) == 2
    post = server.find_requests("POST", "/responses")[0]
    assert "openai-beta" not in post.headers and post.json["input"] == [user("hi")]
    await s.aclose()


async def test_fallback_after_prewarm_upgrade_required(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(status=426))
    server.add_response(text_reply("http", response_id="resp-1"))
    s = session_for(server)
    s.start_prewarm(body([]))
    got = await run(s, body([user("hi")]))
    assert text_of(got) == "http" and any(isinstance(e, SessionNotice) for e in got)
    assert len(server.ws_connections) == 1 and len(server.find_requests("POST")) == 1
    await s.aclose()


async def test_fallback_switches_to_http_after_retries_exhausted(server: ScriptedServer) -> None:
    for _ in range(4):
        server.add_ws_connection(WsConn(status=500, body={"error": {"message": "boom"}}))
    server.add_response(text_reply("http answer", response_id="resp-1"))
    s = session_for(server, max_retries=2)
    s.start_prewarm(body([]))
    got = await run(s, body([user("hi")]))
    assert text_of(got) == "http answer"
    assert [e.attempt for e in got if isinstance(e, SessionRetry)] == [2]  # the first retry is hidden
    (notice,) = [e for e in got if isinstance(e, SessionNotice)]
    assert notice.level == "warning" and notice.message.startswith("Falling back from WebSockets to HTTPS transport. ")
    assert len(server.ws_connections) == 4 and len(server.find_requests("POST")) == 1  # 1 prewarm + 3 stream attempts
    await s.aclose()


# --------------------------------------------------------------------------- scripted-server WebSocket features


async def test_server_ping_is_answered_mid_stream(server: ScriptedServer) -> None:
    events = text_events("pong ok", response_id="resp-1")
    server.add_ws_connection(WsConn(requests=[[events[0], WsPing(b"are-you-there"), *events[1:]]]))
    s = session_for(server)
    got = await run(s, body([user("hi")]))
    assert text_of(got) == "pong ok"
    await until(server, lambda: server.ws_connections[0].pongs == [b"are-you-there"])
    await s.aclose()


async def test_responder_served_handshake_uses_ws_accept(server: ScriptedServer) -> None:
    server.responder = echo_responder
    server.ws_accept = WsAccept(delay=0.05, headers={"openai-model": "gpt-echo"})
    s = session_for(server)
    got = await run(s, body([user("ping me")]))
    assert ServerModelSeen("gpt-echo") in got
    assert text_of(got) == 'You said: "ping me"'
    server.ws_accept = WsAccept(status=426)
    s2 = session_for(server)
    server.add_response(text_reply("http", response_id="r"))
    assert text_of(await run(s2, body([user("x")]))) == "http" and s2.http_fallback
    await s.aclose()
    await s2.aclose()


async def test_one_response_in_flight_per_connection(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(
            requests=[[Ev(e, delay=0.01) for e in text_events("first", response_id="resp-1")]],
            close_after_requests=False,
        )
    )
    server.add_ws_connection(WsConn(requests=[text_events("second", response_id="resp-2")], close_after_requests=False))
    s = session_for(server)
    a, b = await asyncio.gather(run(s, body([user("one")])), run(s, body([user("two")])))
    assert {text_of(a), text_of(b)} == {"first", "second"}
    assert [len(c.frames) for c in server.ws_connections] == [1, 1]  # the busy connection was not shared
    await s.aclose()


async def test_api_key_echoed_in_wrapped_error_is_redacted(server: ScriptedServer) -> None:
    err = {
        "type": "error",
        "status": 400,
        "error": {"type": "invalid_request_error", "message": "bad key sk-test-key in header"},
    }
    server.add_ws_connection(WsConn(requests=[[err]], close_after_requests=False))
    s = session_for(server)
    with pytest.raises(E.InvalidRequest) as info:
        await run(s, body([user("hi")]))
    assert "sk-test-key" not in str(info.value) and "sk-test-key" not in info.value.message
    await s.aclose()


async def test_handshake_401_is_an_error_not_a_fallback(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(status=401, body={"error": {"message": "bad key"}}))
    s = session_for(server, max_retries=3)
    with pytest.raises(E.AuthenticationError):
        await run(s, body([user("hi")]))
    assert not s.http_fallback and len(server.ws_connections) == 1 and server.find_requests("POST") == []
    await s.aclose()


async def test_handshake_404_means_no_websocket_endpoint(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(status=404))
    server.add_response(text_reply("http", response_id="r"))
    s = session_for(server, max_retries=3)
    got = await run(s, body([user("hi")]))
    assert text_of(got) == "http" and s.http_fallback
    assert "HTTP 404" in next(e for e in got if isinstance(e, SessionNotice)).message
    await s.aclose()


async def test_old_connection_is_rotated_before_the_server_limit(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jupyter_agent.session.websocket as ws_session

    server.add_ws_connection(WsConn(requests=[text_events("a", response_id="resp-1")], close_after_requests=False))
    server.add_ws_connection(WsConn(requests=[text_events("b", response_id="resp-2")], close_after_requests=False))
    s = session_for(server)
    await run(s, body([user("one")]))
    monkeypatch.setattr(ws_session, "MAX_CONNECTION_AGE", 0.0)
    got = await run(s, body([user("two")]))
    assert text_of(got) == "b" and not any(isinstance(e, SessionRetry) for e in got)
    assert len(server.ws_connections) == 2 and "previous_response_id" not in server.ws_connections[1].frames[0]
    await s.aclose()


async def test_prewarm_without_reply_is_abandoned_quickly(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jupyter_agent.session.websocket as ws_session

    monkeypatch.setattr(ws_session, "PREWARM_REPLY_WAIT", 0.2)
    server.add_ws_connection(WsConn(requests=[[Hang()]]))  # never answers generate:false
    server.add_ws_connection(WsConn(requests=[text_events("fresh", response_id="resp-1")], close_after_requests=False))
    s = session_for(server)
    s.start_prewarm(body([]))
    t0 = asyncio.get_running_loop().time()
    got = await run(s, body([user("hi")]))
    assert text_of(got) == "fresh" and asyncio.get_running_loop().time() - t0 < 2.0
    assert not any(isinstance(e, (SessionRetry, SessionNotice)) for e in got)
    assert "previous_response_id" not in server.ws_connections[1].frames[0]
    await until(server, lambda: server.ws_connections[0].closed)
    await s.aclose()
