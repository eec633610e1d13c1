"""Realtime fault: the voice socket drops mid-conversation (no close frame).

The manager runs on its own agent loop, as in the kernel. The drop must end the conversation
within a bounded time with one ``closed`` event (``transport_closed``), keep the transcript of
what was said (once each), turn late audio/text into a "not running" error instead of an
exception or a hang, leave the caller's loop responsive, and a new conversation must work.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from jupyter_agent.events import AgentEvent, RealtimeEvent
from jupyter_agent.loop import AgentLoop
from jupyter_agent.realtime import RealtimeConversationManager, RealtimeSessionConfig
from jupyter_agent.testing.realtime import (
    RealtimeConn,
    RealtimeServer,
    RtDrop,
    RtExpect,
    RtSend,
    audio_delta,
    ga_session_created,
    reply_to_text,
    session_created,
    tone,
)

from .fault_scenarios import MAX_CALLER_LAG, agent_loop

TEXT_TYPE = "conversation.item.create"


class Events:
    """Thread-safe event recorder (the manager emits on the agent thread)."""

    def __init__(self) -> None:
        self.items: list[AgentEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: AgentEvent) -> None:
        with self.lock:
            self.items.append(event)

    def rt(self, kind: str) -> list[RealtimeEvent]:
        with self.lock:
            return [e for e in self.items if isinstance(e, RealtimeEvent) and e.kind == kind]

    async def wait(self, kind: str, n: int = 1, timeout: float = 5.0) -> list[RealtimeEvent]:
        deadline = time.monotonic() + timeout
        while len(self.rt(kind)) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {n} {kind!r} events in {timeout} s")
            await asyncio.sleep(0.005)
        return self.rt(kind)


@pytest.fixture(scope="module")
def loop() -> Iterator[AgentLoop]:
    with agent_loop() as lp:
        yield lp


@pytest.mark.parametrize("dialect", ["backend", "openai"])
async def test_realtime_socket_dropped_mid_conversation(dialect: str, loop: AgentLoop) -> None:
    created = session_created("sess_1") if dialect == "backend" else ga_session_created("sess_1")
    answer = reply_to_text("First answer.", pcm=tone(0.1), dialect=dialect)  # type: ignore[arg-type]
    answer.once = True  # the second question gets only the start of an answer, then the drop
    dropped = RealtimeConn(
        [RtSend(created), RtExpect(2, TEXT_TYPE), RtSend(audio_delta(tone(0.05))), RtDrop()],
        reactions=[answer],
    )
    fresh = RealtimeConn([RtSend(created)], reactions=[reply_to_text("Second call works.", dialect=dialect)])  # type: ignore[arg-type]
    with RealtimeServer(dropped, fresh) as rs:
        url = rs.http_url if dialect == "backend" else rs.openai_base_url
        cfg = RealtimeSessionConfig(url=url, dialect=dialect, prompt="be brief", model="gpt-realtime")  # type: ignore[arg-type]
        events = Events()
        mgr = RealtimeConversationManager(cfg, events, loop=loop.loop)

        lag = [0.0]
        stop = asyncio.Event()

        async def watch() -> None:
            lp = asyncio.get_running_loop()
            while not stop.is_set():
                t0 = lp.time()
                await asyncio.sleep(0.01)
                lag[0] = max(lag[0], lp.time() - t0 - 0.01)

        watcher = asyncio.create_task(watch())
        assert await asyncio.wrap_future(mgr.submit_start(conversation_id="conv_drop"))
        await asyncio.wrap_future(mgr.submit_text("first question"))
        await events.wait("transcript", 2)  # the user's text and the assistant's answer
        t0 = time.perf_counter()
        await asyncio.wrap_future(mgr.submit_text("second question"))
        closed = await events.wait("closed", timeout=3.0)
        took = time.perf_counter() - t0
        assert took < 3.0
        assert len(closed) == 1 and closed[0].payload["reason"] == "transport_closed"
        assert closed[0].payload["conversation_id"] == "conv_drop"
        assert not mgr.running

        finals = [(e.payload["role"], e.payload["text"]) for e in events.rt("transcript") if e.payload.get("final")]
        assert finals.count(("user", "first question")) == 1
        assert finals.count(("user", "second question")) == 1
        assert finals.count(("assistant", "First answer.")) == 1

        # Late input after the drop: a clear error, never an exception or a blocked thread.
        errors_before = len(events.rt("error"))
        threading.Thread(target=mgr.push_audio, args=(tone(0.02),)).start()
        await asyncio.wrap_future(mgr.submit_text("too late"))
        errs = await events.wait("error", errors_before + 2)
        assert all(e.payload["message"] == "conversation is not running" for e in errs[errors_before:])
        assert len(events.rt("closed")) == 1  # no second closed event

        # A new call works on a fresh connection.
        assert await asyncio.wrap_future(mgr.submit_start(conversation_id="conv_2"))
        await asyncio.wrap_future(mgr.submit_text("hello again"))
        deadline = time.monotonic() + 5
        while not any(
            e.payload.get("text") == "Second call works." and e.payload.get("final") for e in events.rt("transcript")
        ):
            assert time.monotonic() < deadline, "the second conversation got no answer"
            await asyncio.sleep(0.01)
        await asyncio.wrap_future(mgr.submit_close())
        assert [e.payload["reason"] for e in events.rt("closed")] == ["transport_closed", "requested"]
        assert len(rs.records) == 2
        stop.set()
        await watcher
        assert lag[0] < MAX_CALLER_LAG
