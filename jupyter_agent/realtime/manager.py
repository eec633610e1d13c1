"""RealtimeConversationManager: one realtime voice conversation at a time (spec §11.6).

Plain asyncio: the coroutine methods run on the loop the manager is bound to (the agent loop in
the kernel, any loop in tests). ``push_audio``/``submit_*`` are the thread-safe entry points for
other threads (the kernel thread forwarding microphone frames); they never block.

Events go to ``on_event(AgentEvent)`` on the manager's loop: ``RealtimeEvent`` kinds ``started``,
``event``, ``closed``, ``transcript``, ``error`` (plus ``RateLimits`` for ``rate_limits.updated``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from ..events import AgentEvent, RateLimits, RateLimitSnapshot, RateLimitWindow, RealtimeEvent
from ..protocol import realtime as P
from ..transport.realtime_ws import RealtimeConnectError, RealtimeSessionConfig, RealtimeWebSocket

log = logging.getLogger(__name__)

AUDIO_QUEUE = 256
TEXT_QUEUE = 64
EVENT_QUEUE = 256
NOT_RUNNING = "conversation is not running"

_END = object()


@dataclass(eq=False)
class _Runtime:
    ws: RealtimeWebSocket
    conversation_id: str
    audio: asyncio.Queue[P.RealtimeAudioFrame] = field(default_factory=lambda: asyncio.Queue(AUDIO_QUEUE))
    control: asyncio.Queue[tuple[str, Any]] = field(default_factory=lambda: asyncio.Queue(TEXT_QUEUE))
    out: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(EVENT_QUEUE))
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    partial: dict[tuple[str, str], str] = field(default_factory=dict)


class RealtimeConversationManager:
    """Start / insert audio / insert text / close a realtime conversation."""

    def __init__(
        self,
        config: RealtimeSessionConfig,
        on_event: Callable[[AgentEvent], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self._listeners: list[Callable[[AgentEvent], None]] = [on_event] if on_event else []
        self._loop = loop
        self._rt: _Runtime | None = None
        self.dropped_frames = 0
        self.frames_sent = 0
        self.samples_sent = 0

    # -- plumbing ----------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            from ..loop import get_agent_loop

            self._loop = get_agent_loop().loop
        return self._loop

    def subscribe(self, callback: Callable[[AgentEvent], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _emit(self, event: AgentEvent) -> None:
        for cb in list(self._listeners):
            try:
                cb(event)
            except Exception:  # a frontend bug must not kill the conversation
                log.exception("realtime event listener failed")

    def _error(self, message: str, code: str) -> None:
        self._emit(RealtimeEvent(kind="error", payload={"message": message, "code": code}))

    def _bind(self) -> None:
        running = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = running
        elif self._loop is not running:
            raise RuntimeError("RealtimeConversationManager used from a foreign event loop")

    @property
    def running(self) -> bool:
        return self._rt is not None

    @property
    def conversation_id(self) -> str | None:
        return self._rt.conversation_id if self._rt else None

    # -- coroutine API (on the manager's loop) -----------------------------------------

    async def start(self, prompt: str | None = None, conversation_id: str | None = None) -> bool:
        """Start a conversation, replacing a running one; True when connected."""
        self._bind()
        await self._drop_runtime()
        conv_id = conversation_id or self.config.conversation_id or f"conv_{uuid.uuid4().hex[:12]}"
        try:
            ws = await RealtimeWebSocket.connect(self.config, prompt=prompt, conversation_id=conv_id)
        except RealtimeConnectError as exc:
            self._error(str(exc), "other")
            return False
        rt = _Runtime(ws=ws, conversation_id=conv_id)
        self._rt = rt
        self._emit(RealtimeEvent(kind="started", payload={"conversation_id": conv_id}))
        loop = asyncio.get_running_loop()
        rt.tasks = [loop.create_task(self._io(rt)), loop.create_task(self._forward(rt))]
        return True

    async def insert_audio(self, frame: P.RealtimeAudioFrame) -> None:
        self._bind()
        self._put_audio(frame)

    async def insert_text(self, text: str) -> None:
        """Queue a user text message (waits for queue space)."""
        self._bind()
        rt = self._rt
        if rt is None:
            self._error(NOT_RUNNING, "bad_request")
            return
        await rt.control.put(("text", text))
        self._emit(
            RealtimeEvent(kind="transcript", payload={"role": "user", "text": text, "final": True, "source": "text"})
        )

    async def update_prompt(self, prompt: str) -> None:
        self._bind()
        rt = self._rt
        if rt is None:
            self._error(NOT_RUNNING, "bad_request")
            return
        await rt.control.put(("prompt", prompt))

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        """Report how much of an assistant audio item was played (barge-in, OpenAI dialect)."""
        self._bind()
        if self._rt is not None:
            await self._rt.control.put(("truncate", (item_id, audio_end_ms)))

    async def close(self) -> None:
        """Close the running conversation; emits ``closed`` with reason ``requested``."""
        self._bind()
        if self._rt is None:
            return
        rt = self._rt
        await self._drop_runtime(graceful=True)
        self._emit(RealtimeEvent(kind="closed", payload={"reason": "requested", "conversation_id": rt.conversation_id}))

    # -- thread-safe entry points ------------------------------------------------------

    def push_audio(self, pcm: bytes, sample_rate: int = P.DEFAULT_SAMPLE_RATE, num_channels: int = 1) -> None:
        """Queue raw PCM16 LE from any thread; never blocks (full queue drops the frame)."""
        frame = P.RealtimeAudioFrame.from_pcm(pcm, sample_rate, num_channels)
        loop = self.loop
        if _on_loop(loop):
            self._put_audio(frame)
        else:
            with contextlib.suppress(RuntimeError):  # loop closed: nothing to deliver to
                loop.call_soon_threadsafe(self._put_audio, frame)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Run one of the coroutine methods on the manager's loop from another thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def submit_start(
        self, prompt: str | None = None, conversation_id: str | None = None
    ) -> concurrent.futures.Future[Any]:
        return self.submit(self.start(prompt, conversation_id))

    def submit_text(self, text: str) -> concurrent.futures.Future[Any]:
        return self.submit(self.insert_text(text))

    def submit_close(self) -> concurrent.futures.Future[Any]:
        return self.submit(self.close())

    # -- internals ---------------------------------------------------------------------

    def _put_audio(self, frame: P.RealtimeAudioFrame) -> None:
        rt = self._rt
        if rt is None:
            self._error(NOT_RUNNING, "bad_request")
            return
        try:
            rt.audio.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped_frames += 1
            log.warning("realtime audio queue full; dropped a frame (%d so far)", self.dropped_frames)

    async def _drop_runtime(self, graceful: bool = False) -> None:
        rt, self._rt = self._rt, None
        if rt is None:
            return
        for task in rt.tasks:
            task.cancel()
        for task in rt.tasks:
            with contextlib.suppress(BaseException):
                await task
        if graceful:
            await rt.ws.close()
        else:  # replaced: the old socket is dropped without a close frame (spec §11.6b)
            await rt.ws.abort()

    async def _io(self, rt: _Runtime) -> None:
        """Multiplex audio/text out and inbound events in; ends the out queue when done."""
        loop = asyncio.get_running_loop()
        subs = [
            loop.create_task(self._send_audio(rt)),
            loop.create_task(self._send_control(rt)),
            loop.create_task(self._read(rt)),
        ]
        try:
            await asyncio.wait(subs, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in subs:
                task.cancel()
            for task in subs:
                with contextlib.suppress(BaseException):
                    await task
            await rt.out.put(_END)

    async def _send_audio(self, rt: _Runtime) -> None:
        while True:
            frame = await rt.audio.get()
            try:
                await rt.ws.send_audio(frame)
            except Exception as exc:  # noqa: BLE001 - a dead socket ends the audio pump; the reader reports why
                log.info("realtime audio send failed: %s", exc)
                return
            self.frames_sent += 1
            self.samples_sent += frame.samples_per_channel or 0

    async def _send_control(self, rt: _Runtime) -> None:
        while True:
            what, arg = await rt.control.get()
            try:
                if what == "text":
                    await rt.ws.send_text(arg)
                elif what == "prompt":
                    await rt.ws.update_prompt(arg)
                elif what == "truncate":
                    await rt.ws.truncate(*arg)
            except Exception as exc:  # noqa: BLE001 - a dead socket ends the sender; the reader reports why
                log.info("realtime send failed: %s", exc)
                return

    async def _read(self, rt: _Runtime) -> None:
        while True:
            event = await rt.ws.next_event()
            if event is None:
                await rt.out.put(P.ErrorEvent(message=P.CONNECTION_CLOSED, fatal=True))
                return
            await rt.out.put(event)
            if isinstance(event, P.ErrorEvent) and event.fatal:
                return

    async def _forward(self, rt: _Runtime) -> None:
        while True:
            event = await rt.out.get()
            if event is _END:
                break
            self._emit(RealtimeEvent(kind="event", payload=event.model_dump(mode="json")))
            self._derive(rt, event)
        if self._rt is rt:
            self._rt = None
            payload: dict[str, Any] = {"reason": "transport_closed", "conversation_id": rt.conversation_id}
            if rt.ws.close_code is not None:
                payload["close_code"] = rt.ws.close_code
            self._emit(RealtimeEvent(kind="closed", payload=payload))
            with contextlib.suppress(Exception):
                await rt.ws.abort()

    def _derive(self, rt: _Runtime, event: Any) -> None:
        """Agent events derived from an inbound event: transcripts and rate limits."""
        if isinstance(event, P.TranscriptDelta):
            key = (event.role, event.item_id or "")
            text = rt.partial.get(key, "") + event.delta
            rt.partial[key] = text
            self._transcript(event.role, text, False, event.item_id)
        elif isinstance(event, P.TranscriptDone):
            rt.partial.pop((event.role, event.item_id or ""), None)
            self._transcript(event.role, event.text, True, event.item_id)
        elif isinstance(event, P.ConversationItemAdded) and rt.ws.dialect == "backend":
            found = P.text_from_item(event.item)
            if found:
                item_id = event.item.get("id") if isinstance(event.item, dict) else None
                self._transcript(found[0], found[1], True, item_id)
        elif isinstance(event, P.RateLimitsUpdated):
            for limit in event.rate_limits:
                self._emit(RateLimits(snapshot=_snapshot(limit)))

    def _transcript(self, role: str, text: str, final: bool, item_id: str | None) -> None:
        payload: dict[str, Any] = {"role": role, "text": text, "final": final}
        if item_id:
            payload["item_id"] = item_id
        self._emit(RealtimeEvent(kind="transcript", payload=payload))


def _snapshot(limit: P.RealtimeRateLimit) -> RateLimitSnapshot:
    used = 0.0
    if limit.limit and limit.remaining is not None:
        used = max(0.0, min(100.0, 100.0 * (limit.limit - limit.remaining) / limit.limit))
    resets = time.time() + limit.reset_seconds if limit.reset_seconds is not None else None
    window = RateLimitWindow(used_percent=used, resets_at=resets, limit=limit.limit, remaining=limit.remaining)
    return RateLimitSnapshot(
        limit_id=limit.name, limit_name=f"realtime {limit.name}", primary=window, source="realtime"
    )


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
