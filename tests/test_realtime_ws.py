"""Realtime WebSocket client against the scripted realtime endpoint (spec §11.7, API tests)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator

import pytest

from jupyter_agent.protocol import realtime as P
from jupyter_agent.testing.realtime import (
    RealtimeConn,
    RealtimeServer,
    RtClose,
    RtDrop,
    RtExpect,
    RtSend,
    RtSleep,
    audio_delta,
    ga_response,
    ga_session_created,
    ga_speech_started,
    ga_user_transcript,
    session_created,
)
from jupyter_agent.transport.realtime_ws import RealtimeConnectError, RealtimeSessionConfig, RealtimeWebSocket


@pytest.fixture
def rs() -> Iterator[RealtimeServer]:
    with RealtimeServer() as server:
        yield server


def backend_cfg(rs: RealtimeServer, **kw: object) -> RealtimeSessionConfig:
    return RealtimeSessionConfig(url=rs.http_url, dialect="backend", prompt="backend prompt", **kw)  # type: ignore[arg-type]


async def test_realtime_ws_e2e_session_create_and_event_flow(rs: RealtimeServer) -> None:
    rs.add(
        RealtimeConn(
            [
                RtExpect(1, "session.create"),
                RtSend(session_created("sess_mock")),
                RtExpect(1, "response.input_audio.delta"),
                RtSend(audio_delta("AQID", sample_rate=48000)),
            ]
        )
    )
    ws = await RealtimeWebSocket.connect(backend_cfg(rs), conversation_id="conv_123")
    assert await ws.next_event() == P.SessionCreated(session_id="sess_mock")
    await ws.send_audio(P.RealtimeAudioFrame(data="AQID", sample_rate=48000, num_channels=1, samples_per_channel=960))
    ev = await ws.next_event()
    assert isinstance(ev, P.AudioOut)
    assert ev.frame == P.RealtimeAudioFrame(data="AQID", sample_rate=48000, num_channels=1, samples_per_channel=None)
    await ws.close()
    rec = rs.records[0]
    assert rec.path == "/ws"
    assert rec.frames[0] == {
        "type": "session.create",
        "session": {"backend_prompt": "backend prompt", "conversation_id": "conv_123"},
    }
    assert rec.frames[1] == {
        "type": "response.input_audio.delta",
        "delta": "AQID",
        "sample_rate": 48000,
        "num_channels": 1,
        "samples_per_channel": 960,
    }
    assert "authorization" not in rec.headers  # no auth headers on the backend dialect (spec §11.1)


async def test_realtime_ws_e2e_send_while_next_event_waits(rs: RealtimeServer) -> None:
    rs.add(RealtimeConn([RtExpect(2), RtSend(session_created("sess_after"))]))
    ws = await RealtimeWebSocket.connect(backend_cfg(rs))
    pending = asyncio.ensure_future(ws.next_event())
    await asyncio.sleep(0.05)
    assert not pending.done()
    t0 = time.monotonic()
    await asyncio.wait_for(ws.send_text("while waiting"), 0.2)
    assert time.monotonic() - t0 < 0.2
    assert await asyncio.wait_for(pending, 5) == P.SessionCreated(session_id="sess_after")
    await ws.close()


async def test_send_does_not_block_while_next_event_waits_for_inbound_data(rs: RealtimeServer) -> None:
    rs.add(RealtimeConn([]))  # holds the socket open, never sends
    ws = await RealtimeWebSocket.connect(backend_cfg(rs))
    pending = asyncio.ensure_future(ws.next_event())
    t0 = time.monotonic()
    for _ in range(20):
        await ws.send_audio(P.RealtimeAudioFrame.from_pcm(b"\x00\x00" * 480))
    assert time.monotonic() - t0 < 0.2
    rs.wait_for_frames(0, 21, timeout=5)
    assert not pending.done()
    pending.cancel()
    await ws.close()


async def test_realtime_ws_e2e_disconnected_emitted_once(rs: RealtimeServer) -> None:
    rs.add(RealtimeConn([RtExpect(1), RtClose(1000, "bye")]))
    ws = await RealtimeWebSocket.connect(backend_cfg(rs))
    assert await asyncio.wait_for(ws.next_event(), 5) is None
    assert await asyncio.wait_for(ws.next_event(), 1) is None
    assert ws.close_code == 1000


async def test_realtime_ws_e2e_ignores_unknown_text_events(rs: RealtimeServer) -> None:
    rs.add(
        RealtimeConn(
            [
                RtSend({"type": "response.created", "response": {}}),
                RtSend("{not json"),
                RtSend(session_created("sess_after_unknown")),
            ]
        )
    )
    ws = await RealtimeWebSocket.connect(backend_cfg(rs))
    assert await asyncio.wait_for(ws.next_event(), 5) == P.SessionCreated(session_id="sess_after_unknown")
    await ws.close()


async def test_binary_frame_becomes_error_event(rs: RealtimeServer) -> None:
    rs.add(RealtimeConn([RtSend(b"\x00\x01\x02")]))
    ws = await RealtimeWebSocket.connect(backend_cfg(rs))
    ev = await asyncio.wait_for(ws.next_event(), 5)
    assert ev == P.ErrorEvent(message="unexpected binary realtime websocket event")
    await ws.close()


async def test_dropped_tcp_connection_reads_none(rs: RealtimeServer) -> None:
    rs.add(RealtimeConn([RtExpect(1), RtDrop()]))
    ws = await RealtimeWebSocket.connect(backend_cfg(rs))
    assert await asyncio.wait_for(ws.next_event(), 5) is None
    assert await ws.next_event() is None


async def test_e2e_connect_and_exchange_events_against_mock_ws_server(rs: RealtimeServer) -> None:
    rs.add(
        RealtimeConn(
            [
                RtExpect(1, "session.create"),
                RtSend(session_created("sess_1")),
                RtExpect(1, "session.update"),
                RtSend({"type": "session.updated", "session": {"backend_prompt": "prompt 2"}}),
                RtExpect(1, "conversation.item.create"),
                RtSend(
                    {
                        "type": "conversation.item.added",
                        "item": {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "hi"}]},
                    }
                ),
                RtSend({"type": "error", "message": "server said no"}),
            ]
        )
    )
    ws = await RealtimeWebSocket.connect(backend_cfg(rs), conversation_id="conv_9")
    assert await ws.next_event() == P.SessionCreated(session_id="sess_1")
    await ws.update_prompt("prompt 2")
    assert await ws.next_event() == P.SessionUpdated(backend_prompt="prompt 2")
    await ws.send_text("hello agent")
    item = await ws.next_event()
    assert isinstance(item, P.ConversationItemAdded) and item.item["role"] == "assistant"
    assert await ws.next_event() == P.ErrorEvent(message="server said no")
    await ws.close()
    frames = rs.records[0].frames
    assert frames[1] == {
        "type": "session.update",
        "session": {"backend_prompt": "prompt 2", "conversation_id": "conv_9"},
    }
    assert frames[2]["item"]["content"] == [{"type": "text", "text": "hello agent"}]


async def test_connect_failure_is_reported_without_key() -> None:
    cfg = RealtimeSessionConfig(url="http://127.0.0.1:9/v1", dialect="openai", api_key="sk-secret-xyz", open_timeout=2)
    with pytest.raises(RealtimeConnectError) as info:
        await RealtimeWebSocket.connect(cfg)
    assert "sk-secret-xyz" not in str(info.value)
    assert "sk-secret" not in repr(cfg)


async def test_refused_upgrade_is_a_connect_error(rs: RealtimeServer) -> None:
    with pytest.raises(RealtimeConnectError, match="503"):
        await RealtimeWebSocket.connect(backend_cfg(rs))


# --- OpenAI GA dialect ----------------------------------------------------------------


async def test_openai_dialect_handshake_session_update_audio_and_events(rs: RealtimeServer) -> None:
    pcm = b"\x10\x00" * 4800
    rs.add(
        RealtimeConn(
            [
                RtSend(ga_session_created("sess_ga")),
                RtExpect(1, "session.update"),
                RtSend({"type": "session.updated", "session": {"instructions": "talk like a pirate"}}),
                RtExpect(1, "input_audio_buffer.append"),
                RtSend(ga_speech_started()),
                *[RtSend(e) for e in ga_user_transcript("what is two plus two")],
                *[RtSend(e) for e in ga_response("Four.", pcm, chunk_samples=2400)],
            ]
        )
    )
    cfg = RealtimeSessionConfig(
        url=rs.openai_base_url,
        dialect="openai",
        api_key="sk-test-key",
        model="gpt-realtime",
        prompt="talk like a pirate",
        voice="marin",
        history=[{"role": "user", "text": "x = 41"}, {"role": "assistant", "text": "ok"}],
    )
    ws = await RealtimeWebSocket.connect(cfg)
    await ws.send_audio(P.RealtimeAudioFrame.from_pcm(b"\x00\x00" * 480))
    kinds = []
    while True:
        ev = await asyncio.wait_for(ws.next_event(), 5)
        assert ev is not None
        kinds.append(ev.kind)
        if ev.kind == "response_done":
            break
    assert kinds == [
        "session_created",
        "session_updated",
        "speech_started",
        "transcript_delta",
        "transcript_done",
        "rate_limits_updated",
        "audio_out",
        "audio_out",
        "transcript_delta",
        "transcript_delta",
        "transcript_done",
        "response_done",
    ]
    await ws.close()
    rec = rs.records[0]
    assert rec.path == "/v1/realtime" and rec.query == {"model": "gpt-realtime"}
    assert rec.headers["authorization"] == "Bearer sk-test-key"
    assert "openai-beta" not in rec.headers
    assert rec.types[:4] == [
        "session.update",
        "conversation.item.create",
        "conversation.item.create",
        "input_audio_buffer.append",
    ]
    assert rec.frames[0]["session"]["instructions"] == "talk like a pirate"
    assert rec.frames[2]["item"] == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "ok"}],
    }
    assert base64.b64decode(rec.frames[3]["audio"]) == b"\x00\x00" * 480


async def test_openai_dialect_text_sends_item_and_response_create(rs: RealtimeServer) -> None:
    rs.add(RealtimeConn([RtExpect(3), RtSleep(0.01)], then="close"))
    ws = await RealtimeWebSocket.connect(
        RealtimeSessionConfig(url=rs.openai_base_url, dialect="openai", model="gpt-realtime")
    )
    await ws.send_text("hi")
    assert await asyncio.wait_for(ws.next_event(), 5) is None
    assert rs.records[0].types == ["session.update", "conversation.item.create", "response.create"]
