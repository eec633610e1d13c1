"""Responses API over WebSocket (spec §2): one connection, one JSON event per text frame.

``WsConnection.open`` performs the handshake (``OpenAI-Beta: responses_websockets=2026-02-06``,
permessage-deflate offered) and keeps the handshake facts (``openai-model``, ``x-models-etag``,
``x-reasoning-included``, ``x-codex-turn-state``). ``WsConnection.stream(body)`` sends one
``response.create`` and yields, like the SSE transport, a ``ResponseHeaders`` (the handshake facts
replayed at the start of every request, spec §2.3; rate limits are never read from the handshake),
``EventServerModel`` markers and typed events, until the first completion. At most one response is
in flight per connection. Each connection remembers its last request and the last response (id and
output items) so the next request can be incremental (``plan_request``, spec §2.5). Any error
drops the connection: a later request opens a new one with a full create.

Stale events (issue 15 item 1): a server may send a late event of a response that already ended
(a second ``response.completed``, a late delta); it then waits on the reused connection. Each
request's events are matched to the response in flight (its id from ``response.created``); events
naming a finished response, a different response, or an item of a finished response are discarded
and counted (``jupyter_agent.websocket.stale_event`` in the turn's telemetry).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import CloseCode
from websockets.protocol import State

from ..protocol import errors as E
from ..protocol.responses import (
    OutputItemDone,
    ReasoningItem,
    ResponseCompleted,
    ResponseDone,
    ResponseFailed,
    parse_event,
)
from .base import ResponseHeaders, StreamState
from .failures import log_detail, plain
from .proxy import ws_proxy_option
from .redact import WS_CLIENT_LOGGER
from .sse import DEFAULT_LIMITS

log = logging.getLogger(__name__)

BETA_HEADER = "OpenAI-Beta"
BETA_V2 = "responses_websockets=2026-02-06"
TIMING_HEADER = "x-responsesapi-include-timing-metrics"
#: Handshake statuses that mean "no WebSocket endpoint here": switch to HTTP at once (spec §2.7).
NO_WEBSOCKET_STATUSES = frozenset({404, 405, 426, 501})
#: Largest (decompressed) message accepted: the SSE per-event cap (issue 15 item 2); larger closes with 1009.
MAX_FRAME_BYTES = DEFAULT_LIMITS.max_event_bytes
#: Fields that never break request chaining (spec §2.5).
_NOT_COMPARED = frozenset({"type", "input", "previous_response_id", "generate", "client_metadata", "stream_id"})
#: Item keys that differ between an output item and its replay in later input.
_VOLATILE_ITEM_KEYS = ("id", "status")


def websocket_url(responses_url: str) -> str:
    """The HTTP endpoint with the scheme swapped: http→ws, https→wss (spec §2.1)."""
    parts = urlsplit(responses_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def handshake_headers(http_headers: Mapping[str, str], *, timing_metrics: bool = False) -> dict[str, str]:
    """Handshake headers from the HTTP request headers (same precedence, spec §2.2).

    The WebSocket client sends no User-Agent of its own; ``OpenAI-Beta`` is a default that only
    fills a missing name.
    """
    headers = {k: v for k, v in http_headers.items() if k.lower() != "user-agent"}
    lower = {k.lower() for k in headers}
    if BETA_HEADER.lower() not in lower:
        headers[BETA_HEADER] = BETA_V2
    if timing_metrics and TIMING_HEADER not in lower:
        headers[TIMING_HEADER] = "true"
    return headers


# --- incremental requests ------------------------------------------------------------------


@dataclass(slots=True)
class LastResponse:
    """What the last completed response on a connection added to the conversation."""

    response_id: str
    items: list[Any] = field(default_factory=list)


def _norm(item: Any) -> Any:
    if isinstance(item, dict):
        return {k: v for k, v in item.items() if k not in _VOLATILE_ITEM_KEYS}
    return item


def _strip_prefix(new_input: list[Any], last_input: list[Any], outputs: list[Any]) -> list[Any] | None:
    """The items of ``new_input`` after ``last_input`` + ``outputs``; None when not a prefix.

    Outputs compare in their replay form (ids and status dropped); a reasoning item without
    encrypted content may be missing from the replay (stateless clients drop it).
    """
    n = len(last_input)
    if len(new_input) < n or new_input[:n] != last_input:
        return None
    pos = n
    for item in outputs:
        replay = _norm(item.to_input(keep_id=True)) if hasattr(item, "to_input") else _norm(item)
        if pos < len(new_input) and _norm(new_input[pos]) == replay:
            pos += 1
        elif isinstance(item, ReasoningItem) and not item.encrypted_content:
            continue
        else:
            return None
    return new_input[pos:]


def plan_request(
    body: dict[str, Any], last_request: dict[str, Any] | None, last_response: LastResponse | None
) -> tuple[dict[str, Any], bool]:
    """The ``response.create`` frame for ``body`` on a connection; True when incremental (v2)."""
    frame: dict[str, Any] = {"type": "response.create", **{k: v for k, v in body.items() if k != "type"}}
    if last_request is None or last_response is None or not last_response.response_id:
        return frame, False
    if {k: v for k, v in body.items() if k not in _NOT_COMPARED} != {
        k: v for k, v in last_request.items() if k not in _NOT_COMPARED
    }:
        return frame, False
    delta = _strip_prefix(list(body.get("input") or []), list(last_request.get("input") or []), last_response.items)
    if delta is None:
        return frame, False
    frame["previous_response_id"] = last_response.response_id
    frame["input"] = delta
    return frame, True


# --- the connection --------------------------------------------------------------------------


class WsConnection:
    """One Responses WebSocket connection (see the module docstring)."""

    def __init__(self, ws: ClientConnection, url: str, handshake: ResponseHeaders) -> None:
        self._ws = ws
        self.url = url
        self.handshake = handshake
        self.opened_at = time.monotonic()
        self.last_request: dict[str, Any] | None = None
        self.last_response: LastResponse | None = None
        self.requests = 0
        self.broken = False
        self._lock = asyncio.Lock()
        #: Responses (and their items) that ended on this connection: late events naming them are stale.
        self._finished_ids: set[str] = set()
        self._finished_items: set[str] = set()
        #: Stale events discarded over the connection's life.
        self.stale_events = 0

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    async def open(cls, url: str, headers: Mapping[str, str], *, open_timeout: float = 15.0) -> WsConnection:
        """Handshake; raises ``UpgradeRequired`` (426 and other "no WebSocket here" statuses),
        the HTTP status mapping of spec §3.5 for other refusals, else a retryable ``StreamError``."""
        kwargs = ws_proxy_option(url)  # HTTPS_PROXY / NO_PROXY; loopback direct
        try:
            ws = await connect(
                url,
                additional_headers=dict(headers),
                compression="deflate",
                max_size=MAX_FRAME_BYTES,  # decompressed size: a deflate bomb stops here too
                open_timeout=open_timeout,
                logger=WS_CLIENT_LOGGER,
                **kwargs,
            )
        except InvalidStatus as exc:
            response = exc.response
            status = response.status_code
            if status in NO_WEBSOCKET_STATUSES:
                raise E.UpgradeRequired(f"WebSocket handshake refused with HTTP {status}.", status=status) from None
            raise E.from_http_status(
                status, dict(response.headers.raw_items()), bytes(response.body or b""), url=url
            ) from None
        except (OSError, TimeoutError) as exc:
            log_detail(f"websocket connect to {url}", exc)
            raise E.StreamError(f"websocket connect to {url} failed: {plain(exc)}") from None
        except Exception as exc:  # noqa: BLE001 - handshake protocol errors: retryable, key-free
            log_detail(f"websocket handshake with {url}", exc)
            raise E.StreamError(
                f"websocket handshake with {url} failed: the server's reply was not a valid WebSocket handshake"
            ) from None
        raw = dict(ws.response.headers.raw_items()) if ws.response is not None else {}
        handshake = ResponseHeaders.from_http(raw, read_rate_limits=False)
        return cls(ws, url, handshake)

    @property
    def closed(self) -> bool:
        return self.broken or self._ws.state is not State.OPEN

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    @property
    def age(self) -> float:
        return time.monotonic() - self.opened_at

    @property
    def deflate(self) -> bool:
        """True when permessage-deflate was negotiated."""
        return any(type(ext).__name__.startswith("PerMessageDeflate") for ext in self._ws.protocol.extensions)

    def abort(self) -> None:
        """Drop the connection without waiting for a closing handshake (spec §2.6)."""
        self.broken = True
        transport = getattr(self._ws, "transport", None)
        if transport is not None:
            transport.abort()

    async def close(self) -> None:
        self.broken = True
        try:
            await asyncio.wait_for(self._ws.close(), 2.0)
        except Exception:  # noqa: BLE001 - a close that fails or hangs: abort instead
            self.abort()

    # -- one request ----------------------------------------------------------------------

    async def stream(
        self,
        body: dict[str, Any],
        *,
        idle_timeout: float,
        extra: Mapping[str, Any] | None = None,
        metrics: Any | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[Any]:
        """Send ``body`` (incremental when possible) and yield its events until completion.

        ``extra`` fields (``generate``, ``client_metadata``) go into the frame but never into
        the chaining comparison. ``idle_timeout`` bounds the wait for each frame (spec §3.4);
        ``deadline`` (event-loop clock) optionally bounds the whole turn, as over HTTP.
        """
        if self.closed:
            raise E.StreamError("websocket connection is closed")
        async with self._lock:
            frame, _incremental = plan_request(body, self.last_request, self.last_response)
            if extra:
                frame.update(extra)
            self.last_request, self.last_response = dict(body), None
            completed = False
            try:
                yield ResponseHeaders(
                    server_model=self.handshake.server_model,
                    models_etag=self.handshake.models_etag,
                    reasoning_included=self.handshake.reasoning_included,
                )
                await self._send(frame, idle_timeout, metrics)
                async for event in self._events(idle_timeout, metrics, deadline):
                    yield event
                completed = True
            finally:
                if not completed:
                    self.abort()

    async def _send(self, frame: dict[str, Any], idle_timeout: float, metrics: Any | None) -> None:
        payload = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        started = time.perf_counter()
        reused = self.requests > 0
        self.requests += 1
        try:
            await asyncio.wait_for(self._ws.send(payload), idle_timeout)
        except TimeoutError:
            if metrics is not None:
                metrics.record_ws_request(time.perf_counter() - started, False, connection_reused=reused)
            raise E.IdleTimeout("idle timeout sending websocket request") from None
        except Exception as exc:  # noqa: BLE001 - closed or broken socket
            if metrics is not None:
                metrics.record_ws_request(time.perf_counter() - started, False, connection_reused=reused)
            log_detail("websocket send", exc)
            raise E.StreamError(f"websocket send failed: {plain(exc)}") from None
        if metrics is not None:
            metrics.record_ws_request(time.perf_counter() - started, True, connection_reused=reused)

    def _is_stale(self, event: Any, current: str | None) -> tuple[bool, str | None]:
        """(stale?, the response in flight) for one event (see the module docstring)."""
        response = getattr(event, "response", None)
        rid = getattr(response, "id", None) if response is not None else None
        if rid:
            if current is None:
                return (True, None) if rid in self._finished_ids else (False, rid)
            return rid != current, current
        if self._finished_items:
            item = getattr(event, "item", None)
            item_id = getattr(event, "item_id", None) or (getattr(item, "id", None) if item is not None else None)
            if item_id and item_id in self._finished_items:
                return True, current
        return False, current

    def _finish(self, response_id: str | None, items: list[Any]) -> None:
        if len(self._finished_ids) > 256:  # a long-lived connection: forget the oldest generations
            self._finished_ids.clear()
            self._finished_items.clear()
        if response_id:
            self._finished_ids.add(response_id)
        self._finished_items.update(i for i in (getattr(item, "id", None) for item in items) if i)

    async def _events(self, idle_timeout: float, metrics: Any | None, deadline: float | None) -> AsyncIterator[Any]:
        state = StreamState()
        items: list[Any] = []
        current: str | None = None
        record = metrics.record_ws_event if metrics is not None else None
        while True:
            waited = time.perf_counter()
            wait = idle_timeout
            if deadline is not None:
                wait = min(wait, deadline - asyncio.get_running_loop().time())
                if wait <= 0:
                    raise _deadline_passed()
            try:
                async with asyncio.timeout(wait):  # no task per frame, unlike wait_for
                    message = await self._ws.recv()
            except TimeoutError:
                if record:
                    record(time.perf_counter() - waited, "unknown", False)
                if wait < idle_timeout:
                    raise _deadline_passed() from None
                raise E.IdleTimeout("idle timeout waiting for websocket") from None
            except ConnectionClosed as exc:
                if record:
                    record(time.perf_counter() - waited, "unknown", False)
                if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                    raise E.StreamTooLarge(
                        f"The server sent a WebSocket message larger than this client accepts "
                        f"({MAX_FRAME_BYTES // 2**20} MiB), so the response was stopped."
                    ) from None
                if exc.rcvd is not None:
                    raise E.StreamError("websocket closed by server before response.completed") from None
                raise E.StreamError("stream closed before response.completed") from None
            elapsed = time.perf_counter() - waited
            if isinstance(message, (bytes, bytearray, memoryview)):
                if record:
                    record(elapsed, "unknown", False)
                raise E.StreamError("unexpected binary websocket event")
            event = parse_event(message)  # validated straight from the JSON text
            if event is None:
                if record:
                    record(elapsed, "parse_error", False)
                log.debug("skipped unparseable websocket frame %.80r", message)
                continue
            if record:
                record(elapsed, event.type, not isinstance(event, ResponseFailed))
            stale, current = self._is_stale(event, current)
            if stale:
                self.stale_events += 1
                if metrics is not None:
                    metrics.record_stale_event(event.type)
                log.debug("discarded a stale %s on a reused websocket", event.type)
                continue
            model = state.server_model(event)
            if model is not None:
                yield model
            if isinstance(event, OutputItemDone):
                items.append(event.item)
            yield event
            if state.check_terminal(event):
                response = event.response if isinstance(event, (ResponseCompleted, ResponseDone)) else None
                self.last_response = LastResponse((response.id if response else None) or "", items)
                self._finish(current or (response.id if response else None), items)
                return


def _deadline_passed() -> E.TurnDeadline:
    return E.TurnDeadline("The turn took longer than its deadline (turn_timeout) and was stopped.")
