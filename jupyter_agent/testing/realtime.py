"""Scripted realtime endpoint: plays per-connection scripts and records every client frame.

Mounted on a `ScriptedServer` at ``/ws`` (backend dialect default path) and ``/v1/realtime``
(OpenAI GA path) through ``add_ws_route``::

    from jupyter_agent.testing.realtime import RealtimeServer, RealtimeConn, RtSend, RtExpect, session_created

    with RealtimeServer(RealtimeConn([RtSend(session_created("sess_1")), RtExpect(1)])) as rs:
        ...  # client connects to rs.ws_url ("ws://127.0.0.1:PORT/ws") or rs.openai_base_url
        rs.records[0].frames   # parsed JSON frames the client sent (bytes for binary frames)

A `RealtimeConn` is a list of steps (`RtSend`, `RtExpect`, `RtSleep`, `RtClose`, `RtDrop`) played in
order while a reader records frames and fires `RtWhen` reactions; after the steps the connection is
held open until the client closes (``then="hold"``) or closed with 1000 (``then="close"``).
Connections beyond the queued scripts use ``default`` (if set) or are refused with 503.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from websockets.exceptions import ConnectionClosed

from .script import RecordedRequest, WsAccept
from .server import ScriptedServer
from .ws import ServerWebSocket

__all__ = [
    "RealtimeServer",
    "RealtimeEndpoint",
    "RealtimeConn",
    "RealtimeRecord",
    "RtSend",
    "RtExpect",
    "RtSleep",
    "RtClose",
    "RtDrop",
    "RtWhen",
    "tone",
    "session_created",
    "audio_delta",
    "item_added",
    "assistant_message",
    "error_event",
    "ga_session_created",
    "ga_audio_delta",
    "ga_transcript",
    "ga_user_transcript",
    "ga_speech_started",
    "ga_rate_limits",
    "ga_response",
    "reply_to_text",
    "reply_to_audio",
]

SAMPLE_RATE = 24000


# --- script steps ---------------------------------------------------------------------


@dataclass
class RtSend:
    """Send an event: dict -> JSON text frame, str -> raw text frame, bytes -> binary frame."""

    event: Union[dict[str, Any], str, bytes]
    delay: float = 0.0


@dataclass
class RtExpect:
    """Wait until the client sent ``count`` more frames (of JSON ``type`` if given)."""

    count: int = 1
    type: str | None = None
    timeout: float = 10.0


@dataclass
class RtSleep:
    seconds: float


@dataclass
class RtClose:
    """Close with a close frame; the script ends."""

    code: int = 1000
    reason: str = ""


@dataclass
class RtDrop:
    """Drop the TCP connection without a close frame; the script ends."""


@dataclass
class RtWhen:
    """Reaction: once the client has sent ``after`` frames of ``type`` (``None`` = any), send ``send``.

    ``send`` is a list of events, or a callable ``frame -> list`` fired with the matching frame.
    ``once=False`` fires on every matching frame from the ``after``-th on.
    """

    type: str | None
    send: Union[list[Any], Callable[[Any], list[Any]]]
    after: int = 1
    once: bool = True
    _seen: int = 0
    _fired: bool = False


Step = Union[RtSend, RtExpect, RtSleep, RtClose, RtDrop]


@dataclass
class RealtimeConn:
    steps: list[Step] = field(default_factory=list)
    reactions: list[RtWhen] = field(default_factory=list)
    then: Literal["hold", "close"] = "hold"


# --- records --------------------------------------------------------------------------


@dataclass
class RealtimeRecord:
    """One realtime connection as the server saw it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    frames: list[Any] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    opened_at: float = field(default_factory=time.time)
    closed_at: float | None = None

    @property
    def types(self) -> list[str | None]:
        return [f.get("type") if isinstance(f, dict) else None for f in self.frames]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if isinstance(f, dict) and f.get("type") == kind]

    def audio_frames(self) -> list[bytes]:
        """Decoded PCM of every audio frame (backend ``delta`` or GA ``audio``)."""
        out = []
        for f in self.frames:
            if not isinstance(f, dict):
                continue
            if f.get("type") == "response.input_audio.delta" and isinstance(f.get("delta"), str):
                out.append(base64.b64decode(f["delta"]))
            elif f.get("type") == "input_audio_buffer.append" and isinstance(f.get("audio"), str):
                out.append(base64.b64decode(f["audio"]))
        return out

    def audio_pcm(self) -> bytes:
        return b"".join(self.audio_frames())

    def audio_seconds(self, sample_rate: int = SAMPLE_RATE) -> float:
        return len(self.audio_pcm()) / 2 / sample_rate


# --- endpoint -------------------------------------------------------------------------


class RealtimeEndpoint:
    """The realtime WebSocket handler, mountable on any `ScriptedServer`."""

    PATHS = ("/ws", "/v1/realtime", "/openai/v1/realtime", "/openai/realtime")

    def __init__(self, *conns: RealtimeConn, default: RealtimeConn | None = None) -> None:
        self._lock = threading.RLock()  # predicates passed to wait_for may read `records`
        self._cond = threading.Condition(self._lock)
        self._scripts: deque[RealtimeConn] = deque(conns)
        self.default = default
        self._records: list[RealtimeRecord] = []

    def add(self, *conns: RealtimeConn) -> RealtimeEndpoint:
        with self._lock:
            self._scripts.extend(conns)
        return self

    def mount(self, server: ScriptedServer, paths: Iterable[str] = PATHS) -> RealtimeEndpoint:
        for p in paths:
            server.add_ws_route(p, self.handle, pre_accept=self._pre_accept)
        return self

    @property
    def records(self) -> list[RealtimeRecord]:
        with self._lock:
            return list(self._records)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate()`` is true (re-checked on every frame/connection)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def wait_for_connections(self, n: int, timeout: float = 5.0) -> list[RealtimeRecord]:
        if not self.wait_for(lambda: len(self._records) >= n, timeout):
            raise TimeoutError(f"expected {n} realtime connections, got {len(self._records)}")
        return self.records

    def wait_for_frames(self, index: int, n: int, timeout: float = 5.0, type: str | None = None) -> RealtimeRecord:
        def ok() -> bool:
            if len(self._records) <= index:
                return False
            rec = self._records[index]
            got = rec.frames if type is None else rec.of_type(type)
            return len(got) >= n

        if not self.wait_for(ok, timeout):
            raise TimeoutError(f"connection {index}: fewer than {n} frames")
        return self.records[index]

    def _pre_accept(self, hs: RecordedRequest) -> WsAccept | None:
        with self._lock:
            if not self._scripts and self.default is None:
                return WsAccept(503, body={"error": {"message": "scripted realtime: no connection left"}})
        return None

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    async def handle(self, ws: ServerWebSocket, hs: RecordedRequest) -> None:
        with self._lock:
            conn = self._scripts.popleft() if self._scripts else self.default
            rec = RealtimeRecord(path=hs.path, query=dict(hs.query), headers=hs.headers.lower_items())
            self._records.append(rec)
        self._notify()
        if conn is None:
            await ws.close(1011, "no script")
            return
        conn_reactions = [RtWhen(r.type, r.send, r.after, r.once) for r in conn.reactions]
        arrived = asyncio.Event()
        send_lock = asyncio.Lock()

        async def send(item: Any) -> None:
            async with send_lock:
                if isinstance(item, dict):
                    await ws.send(json.dumps(item))
                else:
                    await ws.send(item)

        async def reader() -> None:
            try:
                while True:
                    msg = await ws.recv()
                    frame: Any = msg
                    if isinstance(msg, str):
                        with contextlib.suppress(ValueError):
                            frame = json.loads(msg)
                    with self._lock:
                        rec.frames.append(frame)
                        rec.times.append(time.time())
                    self._notify()
                    arrived.set()
                    kind = frame.get("type") if isinstance(frame, dict) else None
                    for r in conn_reactions:
                        if r._fired or (r.type is not None and r.type != kind):
                            continue
                        r._seen += 1
                        if r._seen < r.after:
                            continue
                        r._fired = r.once
                        items = r.send(frame) if callable(r.send) else r.send
                        for item in items:
                            await send(item)
            except ConnectionClosed:
                pass
            finally:
                with self._lock:
                    rec.closed_at = time.time()
                self._notify()
                arrived.set()

        read_task = asyncio.get_running_loop().create_task(reader())
        cursor = 0
        try:
            for step in conn.steps:
                if isinstance(step, RtSend):
                    if step.delay:
                        await asyncio.sleep(step.delay)
                    await send(step.event)
                elif isinstance(step, RtSleep):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, RtExpect):
                    cursor = await self._expect(rec, step, cursor, arrived, read_task)
                elif isinstance(step, RtClose):
                    await ws.close(step.code, step.reason)
                    return
                elif isinstance(step, RtDrop):
                    await ws.abort()
                    return
            if conn.then == "hold":
                await read_task
        finally:
            read_task.cancel()
            with contextlib.suppress(BaseException):
                await read_task

    async def _expect(
        self, rec: RealtimeRecord, step: RtExpect, cursor: int, arrived: asyncio.Event, read_task: asyncio.Task[None]
    ) -> int:
        deadline = time.monotonic() + step.timeout
        while True:
            with self._lock:
                frames = list(rec.frames)
            matched, pos = 0, cursor
            for i in range(cursor, len(frames)):
                f = frames[i]
                if step.type is None or (isinstance(f, dict) and f.get("type") == step.type):
                    matched += 1
                    pos = i + 1
                    if matched >= step.count:
                        return pos
            left = deadline - time.monotonic()
            if left <= 0 or read_task.done():
                raise TimeoutError(f"scripted realtime: expected {step.count} frame(s) of {step.type or 'any'} type")
            arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(arrived.wait(), left)


class RealtimeServer:
    """A `ScriptedServer` with a `RealtimeEndpoint` mounted; usable as a context manager."""

    def __init__(
        self, *conns: RealtimeConn, default: RealtimeConn | None = None, server: ScriptedServer | None = None
    ) -> None:
        self._own = server is None
        self.server = server or ScriptedServer()
        self.endpoint = RealtimeEndpoint(*conns, default=default)

    def start(self) -> RealtimeServer:
        if self._own:
            self.server.start()
        self.endpoint.mount(self.server)
        return self

    def stop(self) -> None:
        if self._own:
            self.server.stop()

    def __enter__(self) -> RealtimeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, *conns: RealtimeConn) -> RealtimeServer:
        self.endpoint.add(*conns)
        return self

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT`` -- the backend dialect turns it into ``ws://.../ws``."""
        return f"http://{self.server.host}:{self.server.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.server.host}:{self.server.port}/ws"

    @property
    def openai_base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` -- the OpenAI dialect appends ``/realtime?model=``."""
        return f"http://{self.server.host}:{self.server.port}/v1"

    @property
    def records(self) -> list[RealtimeRecord]:
        return self.endpoint.records

    def wait_for_connections(self, n: int, timeout: float = 5.0) -> list[RealtimeRecord]:
        return self.endpoint.wait_for_connections(n, timeout)

    def wait_for_frames(self, index: int, n: int, timeout: float = 5.0, type: str | None = None) -> RealtimeRecord:
        return self.endpoint.wait_for_frames(index, n, timeout, type)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        return self.endpoint.wait_for(predicate, timeout)

    async def frames(self, index: int, n: int, timeout: float = 5.0, type: str | None = None) -> RealtimeRecord:
        """`wait_for_frames` without blocking the calling event loop."""
        return await asyncio.to_thread(self.endpoint.wait_for_frames, index, n, timeout, type)


# --- event builders -------------------------------------------------------------------


def tone(seconds: float, freq: float = 440.0, sample_rate: int = SAMPLE_RATE, amplitude: float = 0.3) -> bytes:
    """A sine tone as PCM16 LE mono."""
    n = int(seconds * sample_rate)
    peak = int(32767 * amplitude)
    return struct.pack(f"<{n}h", *(int(peak * math.sin(2 * math.pi * freq * i / sample_rate)) for i in range(n)))


def _b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode("ascii")


# backend dialect (spec §11.3)
def session_created(session_id: str) -> dict[str, Any]:
    return {"type": "session.created", "session": {"id": session_id}}


def audio_delta(
    pcm: bytes | str, sample_rate: int = SAMPLE_RATE, num_channels: int = 1, samples_per_channel: int | None = None
) -> dict[str, Any]:
    data = pcm if isinstance(pcm, str) else _b64(pcm)
    ev: dict[str, Any] = {
        "type": "response.output_audio.delta",
        "delta": data,
        "sample_rate": sample_rate,
        "num_channels": num_channels,
    }
    if samples_per_channel is not None:
        ev["samples_per_channel"] = samples_per_channel
    return ev


def item_added(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "conversation.item.added", "item": item}


def assistant_message(text: str, item_id: str = "item_a1") -> dict[str, Any]:
    return item_added(
        {"type": "message", "id": item_id, "role": "assistant", "content": [{"type": "text", "text": text}]}
    )


def error_event(message: str) -> dict[str, Any]:
    return {"type": "error", "message": message}


# OpenAI GA dialect (openai-api §3.3)
def ga_session_created(session_id: str = "sess_ga") -> dict[str, Any]:
    return {
        "type": "session.created",
        "event_id": "ev_1",
        "session": {"id": session_id, "type": "realtime", "model": "gpt-realtime"},
    }


def ga_audio_delta(pcm: bytes, item_id: str = "item_a1", response_id: str = "resp_1") -> dict[str, Any]:
    return {
        "type": "response.output_audio.delta",
        "response_id": response_id,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "delta": _b64(pcm),
    }


def ga_transcript(
    text: str, item_id: str = "item_a1", response_id: str = "resp_1", chunks: int = 2
) -> list[dict[str, Any]]:
    """Assistant transcript deltas then ``.done``."""
    size = max(1, math.ceil(len(text) / chunks))
    base = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
    evs = [
        {"type": "response.output_audio_transcript.delta", **base, "delta": text[i : i + size]}
        for i in range(0, len(text), size)
    ]
    evs.append({"type": "response.output_audio_transcript.done", **base, "transcript": text})
    return evs


def ga_user_transcript(text: str, item_id: str = "item_u1") -> list[dict[str, Any]]:
    return [
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": item_id,
            "content_index": 0,
            "delta": text,
        },
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id,
            "content_index": 0,
            "transcript": text,
        },
    ]


def ga_speech_started(item_id: str = "item_u1", audio_start_ms: int = 0) -> dict[str, Any]:
    return {"type": "input_audio_buffer.speech_started", "audio_start_ms": audio_start_ms, "item_id": item_id}


def ga_rate_limits(requests_remaining: int = 99, tokens_remaining: int = 9000) -> dict[str, Any]:
    return {
        "type": "rate_limits.updated",
        "rate_limits": [
            {"name": "requests", "limit": 100, "remaining": requests_remaining, "reset_seconds": 1.5},
            {"name": "tokens", "limit": 10000, "remaining": tokens_remaining, "reset_seconds": 6.0},
        ],
    }


def ga_response(
    text: str, pcm: bytes = b"", response_id: str = "resp_1", item_id: str = "item_a1", chunk_samples: int = 2400
) -> list[dict[str, Any]]:
    """A whole GA audio response: created, rate limits, audio chunks, transcript, done."""
    evs: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}},
        ga_rate_limits(),
    ]
    step = chunk_samples * 2
    evs += [ga_audio_delta(pcm[i : i + step], item_id, response_id) for i in range(0, len(pcm), step)]
    evs += ga_transcript(text, item_id, response_id)
    evs.append({"type": "response.done", "response": {"id": response_id, "status": "completed"}})
    return evs


def reply_to_text(
    text: str, pcm: bytes = b"", dialect: Literal["backend", "openai"] = "backend", chunk_samples: int = 2400
) -> RtWhen:
    """Answer every user text message with ``text`` (and audio ``pcm``) in the given dialect."""
    if dialect == "openai":
        return RtWhen("response.create", lambda _f: ga_response(text, pcm, chunk_samples=chunk_samples), once=False)
    step = chunk_samples * 2

    def answer(_frame: Any) -> list[Any]:
        return [audio_delta(pcm[i : i + step]) for i in range(0, len(pcm), step)] + [assistant_message(text)]

    return RtWhen("conversation.item.create", answer, once=False)


def reply_to_audio(
    pcm: bytes,
    after: int = 10,
    dialect: Literal["backend", "openai"] = "backend",
    chunk_samples: int = 2400,
    text: str = "I hear you.",
) -> RtWhen:
    """Once ``after`` audio frames arrived, send ``pcm`` back (and a transcript) once."""
    kind = "response.input_audio.delta" if dialect == "backend" else "input_audio_buffer.append"
    step = chunk_samples * 2
    if dialect == "openai":
        return RtWhen(kind, ga_response(text, pcm, chunk_samples=chunk_samples), after=after)
    events: list[Any] = [audio_delta(pcm[i : i + step]) for i in range(0, len(pcm), step)]
    events.append(assistant_message(text))
    return RtWhen(kind, events, after=after)
