"""Kernel side of the voice widget: browser messages -> manager -> scripted server, and back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_agent.events import AgentEvent, RealtimeEvent
from jupyter_agent.loop import AgentLoop
from jupyter_agent.realtime import RealtimeSessionConfig, show_voice
from jupyter_agent.realtime.widget import DROPPED_MESSAGE, VoiceWidget, config_from
from jupyter_agent.testing.realtime import (
    RealtimeConn,
    RealtimeServer,
    RtClose,
    RtExpect,
    RtSend,
    ga_session_created,
    ga_speech_started,
    reply_to_audio,
    reply_to_text,
    session_created,
    tone,
)


@pytest.fixture
def rs() -> Iterator[RealtimeServer]:
    with RealtimeServer() as server:
        yield server


@pytest.fixture
def agent_loop() -> Iterator[AgentLoop]:
    loop = AgentLoop(name="test-voice-widget-loop")
    yield loop
    loop.call_soon(loop.loop.stop)


def until(pred: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def make(
    rs: RealtimeServer, agent_loop: AgentLoop, dialect: str = "backend", **kw: Any
) -> tuple[VoiceWidget, list[Any]]:
    url = rs.http_url if dialect == "backend" else rs.openai_base_url
    w = show_voice(
        {"url": url, "dialect": dialect, "prompt": "voice prompt", "api_key": "sk-never-shown"}, loop=agent_loop, **kw
    )
    sent: list[Any] = []
    w.send = lambda content, buffers=None: sent.append((content, buffers))  # type: ignore[method-assign]
    return w, sent


def test_mic_frames_reach_server_and_audio_comes_back(rs: RealtimeServer, agent_loop: AgentLoop) -> None:
    back = tone(0.3)
    rs.add(RealtimeConn([RtSend(session_created("s1"))], reactions=[reply_to_audio(back, after=5)]))
    w, sent = make(rs, agent_loop)
    assert "sk-never-shown" not in str(w.get_state())
    frame = tone(0.02)
    w._on_front_msg(w, {"type": "mic", "on": True}, [])
    for _ in range(10):  # frames sent while connecting are kept and flushed in order
        w._on_front_msg(w, {"type": "audio", "sample_rate": 24000, "num_channels": 1}, [memoryview(frame)])
    rec = rs.wait_for_frames(0, 11)
    assert rec.audio_pcm() == frame * 10
    until(lambda: sum(1 for c, _ in sent if c["type"] == "audio") == 3)
    chunks = [b for c, b in sent if c["type"] == "audio"]
    assert b"".join(bytes(b[0]) for b in chunks) == back
    until(lambda: any(t["text"] == "I hear you." for t in w.transcript))
    assert w.status == "live" and w.frames_received == 10 and w.samples_received == 4800
    w._on_front_msg(w, {"type": "hangup"}, [])
    until(lambda: w.status == "closed")
    assert w.error == ""


def test_text_path_starts_conversation_and_shows_transcripts(rs: RealtimeServer, agent_loop: AgentLoop) -> None:
    rs.add(RealtimeConn([RtSend(session_created("s1"))], reactions=[reply_to_text("Hello from voice.")]))
    w, _ = make(rs, agent_loop)
    w.send_text("hi there").result(5)
    until(lambda: len(w.transcript) == 2)
    assert [(t["role"], t["text"], t["final"]) for t in w.transcript] == [
        ("user", "hi there", True),
        ("assistant", "Hello from voice.", True),
    ]
    rec = rs.records[0]
    assert rec.frames[0]["session"]["backend_prompt"] == "voice prompt"
    assert rec.frames[1]["item"]["content"][0]["text"] == "hi there"
    w.dispose()


def test_dropped_socket_shows_message(rs: RealtimeServer, agent_loop: AgentLoop) -> None:
    rs.add(RealtimeConn([RtExpect(1), RtClose(1011, "server going away")]))
    w, _ = make(rs, agent_loop)
    assert w.start().result(5) is True
    until(lambda: w.status == "closed")
    assert w.error == DROPPED_MESSAGE


def test_connect_failure_shows_message(agent_loop: AgentLoop) -> None:
    w = show_voice(
        RealtimeSessionConfig(url="http://127.0.0.1:9", dialect="openai", api_key="sk-hide-me", open_timeout=2),
        loop=agent_loop,
    )
    assert w.start().result(5) is False
    until(lambda: w.status == "error")
    assert w.error.startswith("realtime connect failed") and "sk-hide-me" not in w.error


def test_barge_in_and_truncate_openai(rs: RealtimeServer, agent_loop: AgentLoop) -> None:
    rs.add(
        RealtimeConn(
            [
                RtSend(ga_session_created()),
                RtExpect(1, "input_audio_buffer.append"),
                RtSend(ga_speech_started()),
                RtExpect(1, "conversation.item.truncate"),
            ]
        )
    )
    w, sent = make(rs, agent_loop, dialect="openai", model="gpt-realtime")
    w.start().result(5)
    w._on_front_msg(w, {"type": "audio", "sample_rate": 24000}, [tone(0.02)])
    until(lambda: any(c["type"] == "barge_in" for c, _ in sent))
    w._on_front_msg(w, {"type": "played", "item_id": "item_a1", "ms": 640}, [])
    rec = rs.wait_for_frames(0, 1, type="conversation.item.truncate")
    assert rec.of_type("conversation.item.truncate")[0] == {
        "type": "conversation.item.truncate",
        "item_id": "item_a1",
        "content_index": 0,
        "audio_end_ms": 640,
    }
    assert rec.headers["authorization"] == "Bearer sk-never-shown"
    w.dispose()


def test_plain_text_fallback_is_stable(rs: RealtimeServer, agent_loop: AgentLoop) -> None:
    w, _ = make(rs, agent_loop)
    data = w._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert data["text/plain"] == ("Voice conversation widget (backend dialect): press Start talking or type a message.")
    w.dispose()


def test_agent_shares_history_and_events(rs: RealtimeServer, agent_loop: AgentLoop) -> None:
    rs.add(RealtimeConn([RtSend(session_created("s"))], reactions=[reply_to_text("Two.")]))
    from jupyter_agent import Agent

    agent = Agent(
        provider="local",
        loop=agent_loop,
        prewarm=False,
        instructions="agent instructions",
        realtime_url=rs.http_url,
        realtime_dialect="backend",
    )
    agent.add_history_message("user", "x = 1")
    seen: list[AgentEvent] = []
    agent.subscribe(seen.append)
    cfg = config_from(agent)
    assert cfg.prompt == "agent instructions" and cfg.history == [{"role": "user", "text": "x = 1"}]
    w = show_voice(agent)
    w.send = lambda content, buffers=None: None  # type: ignore[method-assign]
    w.send_text("one plus one?").result(5)
    until(lambda: len(agent.history) == 3)
    assert [h["role"] for h in agent.history] == ["user", "user", "assistant"]
    assert agent.history[2]["content"] == [{"type": "output_text", "text": "Two."}]
    kinds = [e.kind for e in seen if isinstance(e, RealtimeEvent)]
    assert kinds[0] == "started" and "transcript" in kinds
    w.dispose()
