"""Script and record types of the scripted Responses server.

Everything here is plain data: a test builds `Reply` / `WsConn` scripts, the server in `server.py`
plays them, and records what the client sent as `RecordedRequest` / `WsRecord`.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, Union
from urllib.parse import parse_qsl

__all__ = [
    "Headers",
    "Ev",
    "Raw",
    "Reply",
    "Fault",
    "RecordedRequest",
    "WsConn",
    "WsBinary",
    "WsPing",
    "WsDrop",
    "WsClose",
    "Sleep",
    "Hang",
    "WsAccept",
    "WsRecord",
    "encode_sse_event",
]


class Headers(MutableMapping[str, str]):
    """Case-insensitive header mapping that keeps the first spelling of each name.

    Repeated headers are joined with ``", "`` (HTTP list semantics).
    """

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._d: dict[str, tuple[str, str]] = {}
        if items is None:
            return
        pairs = items.items() if isinstance(items, Mapping) else items
        for k, v in pairs:
            self.add(k, v)

    def add(self, key: str, value: str) -> None:
        """Add a value, joining with an existing one of the same name."""
        low = key.lower()
        if low in self._d:
            name, old = self._d[low]
            self._d[low] = (name, f"{old}, {value}")
        else:
            self._d[low] = (key, str(value))

    def __getitem__(self, key: str) -> str:
        return self._d[key.lower()][1]

    def __setitem__(self, key: str, value: str) -> None:
        self._d[key.lower()] = (key, str(value))

    def __delitem__(self, key: str) -> None:
        del self._d[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._d.values())

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._d

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"

    def lower_items(self) -> dict[str, str]:
        """A plain dict with lower-cased names."""
        return {k: v for k, (_, v) in self._d.items()}


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Ev:
    """One event with its own delay (seconds, slept before it is sent).

    ``delay=None`` uses the enclosing `Reply.delay` / `WsConn.delay`.
    """

    data: dict[str, Any]
    delay: float | None = None


@dataclass(frozen=True)
class Raw:
    """Raw bytes written as-is (SSE: into the body; WebSocket: as a text frame payload)."""

    data: bytes


SseItem: TypeAlias = Union[dict[str, Any], Ev, Raw]

Fault: TypeAlias = Union[
    Literal["reset_before_first_byte", "close_before_first_byte", "slow"],
    tuple[Literal["drop_after", "hang_after"], int],
    None,
]


def encode_sse_event(event: dict[str, Any]) -> bytes:
    """SSE-encode one event: ``event: <type>\\ndata: <json>\\n\\n``.

    An event whose JSON has only ``type`` is sent without a data line (wire spec §12); an event
    without ``type`` is sent as a bare data line.
    """
    etype = event.get("type")
    if etype is None:
        return b"data: " + _dumps(event) + b"\n\n"
    if set(event) == {"type"}:
        return f"event: {etype}\n\n".encode()
    return f"event: {etype}\n".encode() + b"data: " + _dumps(event) + b"\n\n"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Reply:
    """One scripted HTTP reply.

    - ``events``: SSE events (dicts, `Ev`, or `Raw` chunks). Sent as ``text/event-stream`` with
      chunked transfer encoding (``chunked=False``: close-delimited body instead).
    - ``body``: when not None, a plain body (dict/list -> JSON, str/bytes as-is) sent with
      Content-Length instead of events (error replies, usage endpoints).
    - ``delay``: seconds slept before each event after the first; ``first_byte_delay``: seconds slept
      before the status line.
    - ``fault``: ``"reset_before_first_byte"`` (TCP RST after reading the request),
      ``"close_before_first_byte"`` (FIN instead), ``("drop_after", n)`` (headers + n events, then
      close without terminal chunk), ``("hang_after", n)`` (n events then silence until the client
      disconnects or the server stops), ``"slow"`` (body one byte at a time).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    events: list[SseItem] = field(default_factory=list)
    body: Any = None
    delay: float = 0.0
    first_byte_delay: float = 0.0
    fault: Fault = None
    chunked: bool = True
    content_type: str | None = None
    slow_interval: float = 0.002

    def body_bytes(self) -> bytes:
        """The non-streaming body as bytes (JSON-encodes dicts/lists)."""
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return _dumps(self.body)

    def default_content_type(self) -> str:
        """Content-Type used when neither ``content_type`` nor ``headers`` sets one."""
        if self.content_type:
            return self.content_type
        if self.body is None:
            return "text/event-stream"
        if isinstance(self.body, (bytes, str)):
            return "text/plain; charset=utf-8"
        return "application/json"


# --------------------------------------------------------------------------- recording


@dataclass
class RecordedRequest:
    """One HTTP request the server received (WebSocket handshakes included)."""

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    json: Any
    time: float
    target: str = ""
    peer: tuple[str, int] | None = None

    @property
    def is_websocket(self) -> bool:
        """True for a WebSocket upgrade request."""
        return self.headers.get("upgrade", "").lower() == "websocket"

    @classmethod
    def build(
        cls, method: str, target: str, headers: Headers, body: bytes, peer: tuple[str, int] | None = None
    ) -> RecordedRequest:
        """Split the target into path/query and parse a JSON body when possible."""
        path, _, qs = target.partition("?")
        parsed: Any = None
        if body:
            raw = body
            if headers.get("content-encoding", "").lower() == "gzip":
                with contextlib.suppress(OSError, EOFError):
                    raw = gzip.decompress(body)
            try:
                parsed = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                parsed = None
        return cls(
            method=method,
            path=path,
            query=dict(parse_qsl(qs, keep_blank_values=True)),
            headers=headers,
            body=body,
            json=parsed,
            time=time.time(),
            target=target,
            peer=peer,
        )


# --------------------------------------------------------------------------- websocket scripts


@dataclass(frozen=True)
class WsBinary:
    """Send a binary frame."""

    data: bytes


@dataclass(frozen=True)
class WsPing:
    """Send a ping control frame (the client's pongs are recorded in `WsRecord.pongs`)."""

    data: bytes = b"ping"


@dataclass(frozen=True)
class WsDrop:
    """Drop the TCP connection mid-script (no close frame)."""


@dataclass(frozen=True)
class WsClose:
    """Close the connection (close frame) mid-script."""

    code: int = 1000
    reason: str = ""


@dataclass(frozen=True)
class Sleep:
    """Pause the script."""

    seconds: float


@dataclass(frozen=True)
class Hang:
    """Stop sending; keep the socket open until the client closes or the server stops."""


WsItem: TypeAlias = Union[dict[str, Any], Ev, Raw, WsBinary, WsPing, WsDrop, WsClose, Sleep, Hang]


@dataclass
class WsConn:
    """Script for one accepted WebSocket connection (wire spec §12).

    For each entry of ``requests``: read one client frame, record it, send the listed events.
    ``status != 101`` refuses the upgrade with that status, ``headers`` and ``body``.
    """

    status: int = 101
    headers: dict[str, str] = field(default_factory=dict)
    accept_delay: float = 0.0
    requests: list[list[WsItem]] = field(default_factory=list)
    close_after_requests: bool = True
    delay: float = 0.0
    body: Any = None


@dataclass
class WsAccept:
    """What a `add_ws_route` pre-accept hook returns: the handshake answer.

    ``status == 101`` accepts (with extra ``headers``); anything else refuses with that status.
    """

    status: int = 101
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0


@dataclass
class WsRecord:
    """One WebSocket connection as the server saw it.

    ``frames`` holds the JSON of every client text frame (``{"_text": ...}`` when not JSON,
    ``{"_binary": <bytes>}`` for binary frames); ``messages`` the raw payloads.
    """

    path: str
    headers: Headers
    frames: list[dict[str, Any]] = field(default_factory=list)
    opened_at: float = 0.0
    closed_at: float | None = None
    query: dict[str, str] = field(default_factory=dict)
    status: int = 101
    extensions: list[str] = field(default_factory=list)
    response_headers: Headers = field(default_factory=Headers)
    messages: list[str | bytes] = field(default_factory=list)
    close_code: int | None = None
    handshake: RecordedRequest | None = None
    #: Payloads of the pong frames the client sent (answers to `WsPing`).
    pongs: list[bytes] = field(default_factory=list)
    _closed_evt: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def closed(self) -> bool:
        """True once the TCP connection is gone."""
        return self.closed_at is not None

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Block (any thread) until the connection closed; False on timeout."""
        return self._closed_evt.wait(timeout)

    @property
    def deflate(self) -> bool:
        """True when permessage-deflate was negotiated."""
        return any(e.startswith("permessage-deflate") for e in self.extensions)

    def _add_message(self, msg: str | bytes) -> None:
        self.messages.append(msg)
        if isinstance(msg, bytes):
            self.frames.append({"_binary": msg})
            return
        try:
            obj = json.loads(msg)
        except ValueError:
            obj = None
        self.frames.append(obj if isinstance(obj, dict) else {"_text": msg})


Responder: TypeAlias = Callable[[RecordedRequest], Reply]
