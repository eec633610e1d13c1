"""RealtimeConversationManager lifecycle against the scripted endpoint (spec §11.6-11.7, core tests)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest

from jupyter_agent.events import AgentEvent, RateLimits, RealtimeEvent
from jupyter_agent.loop import AgentLoop
from jupyter_agent.protocol import realtime as P
from jupyter_agent.realtime import RealtimeConversationManager, RealtimeSessionConfig
from jupyter_agent.realtime import manager as M
from jupyter_agent.testing.realtime import (
    RealtimeConn,
    RealtimeServer,
    RtClose,
    RtExpect,
    RtSend,
    RtSleep,
    assistant_message,
    audio_delta,
    ga_response,
    ga_session_created,
    ga_user_transcript,
    reply_to_text,
    session_created,
    tone,
)


@pytest.fixture
def rs() -> Iterator[RealtimeServer]:
    with RealtimeServer() as server:
        yield server


class Recorder:
    """Collects emitted events; ``await wait(pred)`` for one to arrive."""

    def __init__(self) -> None:
        self.events: list[AgentEvent] = []
        self._cond = threading.Condition()

    def __call__(self, ev: AgentEvent) -> None:
        with self._cond:
            self.events.append(ev)
            self._cond.notify_all()

    def rt(self, kind: str | None = None) -> list[RealtimeEvent]:
        return [e for e in self.events if isinstance(e, RealtimeEvent) and (kind is None or e.kind == kind)]

    async def wait(self, kind: str, n: int = 1, timeout: float = 5.0) -> list[RealtimeEvent]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.rt(kind)) < n:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no {kind!r} event; got {[(e.kind, e.payload) for e in self.rt()]}")
            await asyncio.sleep(0.01)
        return self.rt(kind)


def manager(rs: RealtimeServer, rec: Recorder, dialect: str = "backend", **kw: object) -> RealtimeConversationManager:
    url = rs.http_url if dialect == "backend" else rs.openai_base_url
    cfg = RealtimeSessionConfig(url=url, dialect=dialect, prompt="be helpful", model="gpt-realtime", **kw)  # type: ignore[arg-type]
    return RealtimeConversationManager(cfg, rec)


async def test_conversation_start_audio_text_close_round_trip(rs: RealtimeServer) -> None:
    rs.add(
        RealtimeConn(
            [
                RtExpect(1, "session.create"),
                RtSend(session_created("sess_1")),
                RtSend(audio_delta("AQID", sample_rate=24000, samples_per_channel=1)),
                RtExpect(1, "conversation.item.create"),
                RtExpect(1, "response.input_audio.delta"),
            ],
            then="hold",
        )
    )
    rec = Recorder()
    mgr = manager(rs, rec)
    assert await mgr.start(conversation_id="conv_1")
    started = await rec.wait("started")
    assert started[0].payload == {"conversation_id": "conv_1"}
    events = await rec.wait("event", 2)
    assert P.inbound_from_dict(events[0].payload) == P.SessionCreated(session_id="sess_1")
    audio = P.inbound_from_dict(events[1].payload)
    assert isinstance(audio, P.AudioOut) and audio.frame.data == "AQID"
    await mgr.insert_text("hello agent")
    await mgr.insert_audio(
        P.RealtimeAudioFrame(data="AQID", sample_rate=24000, num_channels=1, samples_per_channel=480)
    )
    r = await rs.frames(0, 3)
    assert r.frames[0] == {
        "type": "session.create",
        "session": {"backend_prompt": "be helpful", "conversation_id": "conv_1"},
    }
    assert sorted(r.types[1:3]) == ["conversation.item.create", "response.input_audio.delta"]
    await mgr.close()
    closed = await rec.wait("closed")
    assert closed[0].payload["reason"] in ("requested", "transport_closed")
    assert not mgr.running
    # the user's typed text is a transcript too
    assert [e.payload for e in rec.rt("transcript")] == [
        {"role": "user", "text": "hello agent", "final": True, "source": "text"}
    ]


async def test_conversation_transport_close_emits_closed_event(rs: RealtimeServer) -> None:
    rs.add(RealtimeConn([RtSend(session_created("sess_1")), RtSleep(0.05), RtClose(1000, "done")]))
    rec = Recorder()
    mgr = manager(rs, rec)
    await mgr.start(conversation_id="conv_t")
    closed = await rec.wait("closed")
    assert closed[0].payload["reason"] == "transport_closed"
    payloads = [e.payload for e in rec.rt("event")]
    assert P.inbound_from_dict(payloads[0]) == P.SessionCreated(session_id="sess_1")
    assert P.inbound_from_dict(payloads[-1]) == P.ErrorEvent(message="realtime websocket connection is closed")
    assert not mgr.running
    await mgr.insert_text("late")  # state cleared -> not running
    assert (await rec.wait("error"))[0].payload == {"message": "conversation is not running", "code": "bad_request"}


async def test_conversation_audio_before_start_emits_error(rs: RealtimeServer) -> None:
    rec = Recorder()
    mgr = manager(rs, rec)
    await mgr.insert_audio(P.RealtimeAudioFrame(data="AQID", sample_rate=24000, num_channels=1))
    errs = await rec.wait("error")
    assert errs[0].payload == {"message": "conversation is not running", "code": "bad_request"}
    assert rs.records == []


async def test_conversation_text_before_start_emits_error(rs: RealtimeServer) -> None:
    rec = Recorder()
    mgr = manager(rs, rec)
    await mgr.insert_text("hello")
    errs = await rec.wait("error")
    assert errs[0].payload == {"message": "conversation is not running", "code": "bad_request"}


async def test_conversation_second_start_replaces_runtime(rs: RealtimeServer) -> None:
    rs.add(
        RealtimeConn([RtExpect(1, "session.create")]),
        RealtimeConn([RtExpect(1, "session.create"), RtExpect(1, "response.input_audio.delta")]),
    )
    rec = Recorder()
    mgr = manager(rs, rec)
    await mgr.start(conversation_id="conv_old")
    await rs.frames(0, 1)
    await mgr.start(conversation_id="conv_new")
    await mgr.insert_audio(P.RealtimeAudioFrame(data="AQID", sample_rate=24000, num_channels=1, samples_per_channel=1))
    new = await rs.frames(1, 2)
    old = rs.records[0]
    assert old.frames == [
        {"type": "session.create", "session": {"backend_prompt": "be helpful", "conversation_id": "conv_old"}}
    ]
    assert new.frames[0]["session"]["conversation_id"] == "conv_new"
    assert new.frames[1]["type"] == "response.input_audio.delta"
    assert [e.payload["conversation_id"] for e in rec.rt("started")] == ["conv_old", "conv_new"]
    await asyncio.sleep(0.1)
    assert rec.rt("closed") == []  # the replaced conversation emits no closed event
    assert mgr.conversation_id == "conv_new"
    await mgr.close()


async def test_server_error_is_forwarded_then_transport_closed(rs: RealtimeServer) -> None:
    rs.add(RealtimeConn([RtSend({"type": "error", "message": "quota"})]))
    rec = Recorder()
    mgr = manager(rs, rec)
    await mgr.start()
    closed = await rec.wait("closed")
    assert closed[0].payload["reason"] == "transport_closed"
    assert [P.inbound_from_dict(e.payload) for e in rec.rt("event")] == [P.ErrorEvent(message="quota")]


async def test_connect_failure_emits_error_other() -> None:
    rec = Recorder()
    cfg = RealtimeSessionConfig(url="http://127.0.0.1:9", dialect="backend", open_timeout=2)
    mgr = RealtimeConversationManager(cfg, rec)
    assert not await mgr.start()
    err = (await rec.wait("error"))[0]
    assert err.payload["code"] == "other" and err.payload["message"].startswith("realtime connect failed")
    assert rec.rt("started") == []


async def test_full_audio_queue_drops_frames_without_blocking(
    rs: RealtimeServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rs.add(RealtimeConn([]))
    rec = Recorder()
    mgr = manager(rs, rec)
    await mgr.start()
    rt = mgr._rt
    assert rt is not None and rt.audio.maxsize == 256 and rt.control.maxsize == 64 and rt.out.maxsize == 256
    # stall the sender so the queue fills up
    for task in rt.tasks:
        task.cancel()
    await asyncio.sleep(0.01)
    mgr._rt = rt
    frame = P.RealtimeAudioFrame.from_pcm(b"\x00\x00" * 480)
    with caplog.at_level(logging.WARNING, logger=M.__name__):
        for _ in range(300):
            await mgr.insert_audio(frame)
    assert rt.audio.qsize() == 256
    assert mgr.dropped_frames == 44
    assert "dropped a frame" in caplog.text
    mgr._rt = None
    await rt.ws.abort()


async def test_update_prompt_sends_session_update(rs: RealtimeServer) -> None:
    rs.add(RealtimeConn([RtExpect(2)]))
    rec = Recorder()
    mgr = manager(rs, rec)
    await mgr.start(conversation_id="c1")
    await mgr.update_prompt("new prompt")
    r = await rs.frames(0, 2)
    assert r.frames[1] == {
        "type": "session.update",
        "session": {"backend_prompt": "new prompt", "conversation_id": "c1"},
    }
    await mgr.close()


async def test_backend_item_transcripts(rs: RealtimeServer) -> None:
    rs.add(
        RealtimeConn(
            [
                RtSend(session_created("s")),
                RtSend(
                    {
                        "type": "conversation.item.added",
                        "item": {"type": "spawn_transcript", "delta_user_transcript": "what time is it"},
                    }
                ),
                RtSend(assistant_message("It is noon.")),
            ]
        )
    )
    rec = Recorder()
    mgr = manager(rs, rec)
    await mgr.start()
    ts = await rec.wait("transcript", 2)
    assert [(t.payload["role"], t.payload["text"], t.payload["final"]) for t in ts] == [
        ("user", "what time is it", True),
        ("assistant", "It is noon.", True),
    ]
    await mgr.close()


async def test_text_reply_reaction_backend(rs: RealtimeServer) -> None:
    rs.add(RealtimeConn([RtSend(session_created("s"))], reactions=[reply_to_text("Hi there!", tone(0.2))]))
    rec = Recorder()
    mgr = manager(rs, rec)
    await mgr.start()
    await mgr.insert_text("hello")
    ts = await rec.wait("transcript", 2)
    assert ts[1].payload["text"] == "Hi there!"
    audio = [P.inbound_from_dict(e.payload) for e in rec.rt("event") if e.payload["kind"] == "audio_out"]
    assert sum(len(a.frame.pcm()) for a in audio) == 2 * 4800
    await mgr.close()


async def test_openai_dialect_transcripts_and_rate_limits(rs: RealtimeServer) -> None:
    rs.add(
        RealtimeConn(
            [
                RtSend(ga_session_created()),
                RtExpect(1, "input_audio_buffer.append"),
                *[RtSend(e) for e in ga_user_transcript("hello there")],
                *[RtSend(e) for e in ga_response("General Kenobi.", tone(0.1))],
            ]
        )
    )
    rec = Recorder()
    mgr = manager(rs, rec, dialect="openai", api_key="sk-abc")
    await mgr.start(conversation_id="conv_ga")
    await mgr.insert_audio(P.RealtimeAudioFrame.from_pcm(b"\x00\x00" * 480))
    await rec.wait("transcript", 5)
    ts = [(t.payload["role"], t.payload["text"], t.payload["final"]) for t in rec.rt("transcript")]
    assert ts == [
        ("user", "hello there", False),
        ("user", "hello there", True),
        ("assistant", "General ", False),
        ("assistant", "General Kenobi.", False),
        ("assistant", "General Kenobi.", True),
    ]
    limits = [e.snapshot for e in rec.events if isinstance(e, RateLimits)]
    assert [s.limit_id for s in limits] == ["requests", "tokens"]
    assert limits[1].source == "realtime" and limits[1].primary.remaining == 9000
    assert limits[1].primary.used_percent == pytest.approx(10.0)
    await mgr.close()
    assert rec.rt("closed")[-1].payload["reason"] == "requested"


async def test_thread_safe_push_audio_from_another_thread(rs: RealtimeServer) -> None:
    rs.add(RealtimeConn([RtExpect(1, "session.create")]))
    agent_loop = AgentLoop(name="test-realtime-loop")
    rec = Recorder()
    cfg = RealtimeSessionConfig(url=rs.http_url, dialect="backend", prompt="p")
    mgr = RealtimeConversationManager(cfg, rec, loop=agent_loop.loop)
    assert await asyncio.wrap_future(mgr.submit_start(conversation_id="c_thread"))
    pcm = tone(0.02)  # 480 samples
    for _ in range(25):  # from this (non-agent) loop's thread: must not block
        mgr.push_audio(pcm)
    r = await rs.frames(0, 26)
    assert r.audio_seconds() == pytest.approx(0.5)
    assert all(f["samples_per_channel"] == 480 for f in r.of_type("response.input_audio.delta"))
    await asyncio.wrap_future(mgr.submit_text("hi"))
    await asyncio.wrap_future(mgr.submit_close())
    assert rec.rt("closed")[-1].payload["reason"] == "requested"
    assert mgr.frames_sent == 25 and mgr.samples_sent == 25 * 480
    agent_loop.call_soon(agent_loop.loop.stop)


# --- GA error-bearing server events (issue 15 item 8) -------------------------------------------

TRANSCRIPTION_FAILED = "RealtimeServerEventConversationItemInputAudioTranscriptionFailed"


def test_every_ga_error_bearing_example_is_an_error_event(openai_spec: dict) -> None:
    """The spec's own examples: every failure/error server event parses to a non-fatal ErrorEvent;
    the others parse or are ignored, never raise."""
    import json

    examples = openai_spec["realtime_server_examples"]
    failing = {name for name in examples if name.endswith(("Failed", "Error"))}
    assert TRANSCRIPTION_FAILED in failing and len(failing) >= 4
    for name, example in examples.items():
        event = P.parse_openai_event(json.dumps(example))
        if name in failing:
            assert isinstance(event, P.ErrorEvent) and not event.fatal, name
            assert event.message and "{" not in event.message, (name, event.message)
        else:
            assert not isinstance(event, P.ErrorEvent), name
    failed = P.parse_openai_event(json.dumps(examples[TRANSCRIPTION_FAILED]))
    assert failed.message == "Your speech could not be transcribed: The audio could not be transcribed."
    assert failed.code == "audio_unintelligible" and failed.item_id == "msg_003"
    done_failed = {
        "type": "response.done",
        "response": {
            "id": "resp_1",
            "status": "failed",
            "status_details": {"type": "failed", "error": {"type": "server_error", "message": "Engine overloaded."}},
        },
    }
    event = P.parse_openai_event(json.dumps(done_failed))
    assert isinstance(event, P.ErrorEvent) and event.message == "The voice reply failed: Engine overloaded."


async def test_ga_transcription_failure_is_surfaced_and_the_session_goes_on(
    rs: RealtimeServer, openai_spec: dict
) -> None:
    failed = openai_spec["realtime_server_examples"][TRANSCRIPTION_FAILED]
    rs.add(
        RealtimeConn(
            [
                RtSend(ga_session_created()),
                RtExpect(1, "input_audio_buffer.append"),
                RtSend(failed),
                *[RtSend(e) for e in ga_user_transcript("second try")],
            ]
        )
    )
    rec = Recorder()
    mgr = manager(rs, rec, dialect="openai", api_key="sk-abc")
    await mgr.start(conversation_id="conv_fail")
    await mgr.insert_audio(P.RealtimeAudioFrame.from_pcm(b"\x00\x00" * 480))
    (err,) = await rec.wait("error")
    assert err.payload == {
        "message": "Your speech could not be transcribed: The audio could not be transcribed.",
        "code": "audio_unintelligible",
        "source": "conversation.item.input_audio_transcription.failed",
        "item_id": "msg_003",
    }
    await rec.wait("transcript", 2)
    assert mgr.running  # not fatal: the conversation continues
    await mgr.close()
