"""WebSocketSession: a ModelSession that talks over the Responses WebSocket (spec §1, §2, §6, §10).

On top of ``ModelSession`` (headers, rate limits, HTTP+SSE) it keeps one cached connection for
the whole conversation (reused across turns, §2.8), prewarms it with ``generate: false`` when the
session starts (§1), sends incremental requests on it (§2.5), captures the turn state from
handshakes (§6), retries with a fresh connection and a full request, and falls back to HTTP for
good on a 426-style handshake refusal or when the stream retries are exhausted (§2.7), telling
the user once (``SessionNotice``). The first reconnect of a request that had shown nothing yet is
silent (no ``SessionRetry``); later ones, and any after visible output, are announced.
``session.make_session`` picks this class or plain ``ModelSession`` per provider.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from ..config import Provider
from ..protocol import errors as E
from ..protocol.responses import (
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    ReasoningSummaryTextDelta,
    ReasoningTextDelta,
    RefusalDelta,
    ResponseCompleted,
    ResponseDone,
)
from ..protocol.retry import RECONNECT_CODES
from ..telemetry import TurnMetrics
from ..transport.base import Transport
from ..transport.sse import SseTransport
from ..transport.websocket import WsConnection, handshake_headers, websocket_url
from .base import HEADER_KINDS, ModelSession, SessionOptions, TurnContext
from .stream import SessionEvent, SessionNotice, SessionRetry

log = logging.getLogger("jupyter_agent")

HTTP_FALLBACK_MESSAGE = "Falling back from WebSockets to HTTPS transport."
#: Servers end connections after 60 minutes (§2.6); rotate before that instead of failing a request.
MAX_CONNECTION_AGE = 55 * 60.0
#: How long the first turn waits for a still-running prewarm handshake (the LATER bound of spec §1).
PREWARM_WAIT = 15.0
#: Once connected, how long the first turn waits for the ``generate: false`` reply before it gives
#: the warm-up up and opens its own connection (a server that never answers it costs little).
PREWARM_REPLY_WAIT = 2.0
TIMING_ENV = "JUPYTER_AGENT_WS_TIMING_METRICS"
#: Events whose effect a retry must void; an attempt that produced none needs no visible retry.
_VISIBLE_EVENTS = (
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    RefusalDelta,
    ReasoningSummaryTextDelta,
    ReasoningTextDelta,
    ResponseCompleted,
    ResponseDone,
)


class WebSocketSession(ModelSession):
    """One conversation over the Responses WebSocket, with a sticky fallback to HTTP+SSE."""

    def __init__(
        self,
        provider: Provider,
        *,
        options: SessionOptions | None = None,
        conversation_id: str | None = None,
        transport: str = "websocket",
        timing_metrics: bool | None = None,
        open_timeout: float = 15.0,
    ) -> None:
        super().__init__(provider, options=options, conversation_id=conversation_id)
        self.mode = transport
        self.url = websocket_url(provider.responses_url) if provider.base_url else ""
        self.open_timeout = open_timeout
        if timing_metrics is None:
            timing_metrics = os.environ.get(TIMING_ENV, "").strip().lower() in ("1", "true", "yes")
        #: Ask for ``responsesapi.websocket_timing`` events (``x-responsesapi-include-timing-metrics``).
        self.timing_metrics = timing_metrics
        #: Sticky: once true, every request of this session goes over HTTP+SSE.
        self.http_fallback = False
        self.fallback_reason: str | None = None
        #: Dropped for the session if the server rejects the field (unknown parameter).
        self.send_client_metadata = True
        #: Connections opened so far (handshakes that succeeded).
        self.connections_opened = 0
        #: Metrics of the warm-up (kept apart from any turn).
        self.prewarm_metrics = TurnMetrics()
        self.prewarm_response_id: str | None = None
        self._conn: WsConnection | None = None
        self._prewarm_task: asyncio.Task[None] | None = None
        self._prewarm_ctx: TurnContext | None = None
        self._prewarm_connected = asyncio.Event()
        self._notices: list[SessionNotice] = []
        self._sse_metrics: TurnMetrics | None = None

    @property
    def active_transport(self) -> str:
        return "sse" if self.http_fallback else "websocket"

    # -- HTTP path ------------------------------------------------------------------------

    def transport(self, metrics: TurnMetrics | None = None) -> Transport:
        """The HTTP+SSE transport of the fallback path, counting into the current turn's metrics."""
        return SseTransport(
            self.client,
            self.provider.responses_url,
            metrics=metrics or self._sse_metrics,
            limits=self.options.sse_limits,
        )

    def _switch_to_http(self, error: E.AgentError, metrics: TurnMetrics) -> None:
        if self.http_fallback:
            return
        self.http_fallback = True
        self.fallback_reason = error.message
        metrics.record_http_fallback()
        self._notices.append(SessionNotice("warning", f"{HTTP_FALLBACK_MESSAGE} {error.message}".strip()))
        self._drop()
        log.info("websocket fallback to HTTP: %s", error.message)

    # -- connections ----------------------------------------------------------------------

    def _secret(self) -> str | None:
        return self.provider.api_key.get() if self.provider.api_key else None

    def _headers(self, turn: TurnContext) -> dict[str, str]:
        return handshake_headers(self.request_headers(turn), timing_metrics=self.timing_metrics)

    async def _open(self, turn: TurnContext) -> WsConnection:
        conn = await WsConnection.open(self.url, self._headers(turn), open_timeout=self.open_timeout)
        self.connections_opened += 1
        turn.capture_turn_state(conn.handshake.turn_state)
        if conn.handshake.models_etag:
            self.models_etag = conn.handshake.models_etag
        return conn

    async def _connection(self, turn: TurnContext) -> tuple[WsConnection, bool]:
        """The cached connection when usable, else a new one; True when it must be closed after use."""
        conn = self._conn
        if conn is not None and (conn.closed or conn.age > MAX_CONNECTION_AGE):
            self._drop()
            conn = None
        if conn is not None and not conn.busy:
            return conn, False
        fresh = await self._open(turn)
        if conn is None:
            self._conn = fresh
            return fresh, False
        return fresh, True  # the cached one is busy with another request: one-off connection

    def _drop(self) -> None:
        """Abort and forget the cached connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()

    def _discard(self, conn: WsConnection | None) -> None:
        """Abort ``conn`` after a failed request (nothing when the handshake itself failed)."""
        if conn is None:
            return
        conn.abort()
        if conn is self._conn:
            self._conn = None

    def _extra(self, turn: TurnContext) -> dict[str, Any] | None:
        if not self.send_client_metadata:
            return None
        return {"client_metadata": {"x-codex-turn-metadata": turn.metadata}}

    # -- prewarm (spec §1) ----------------------------------------------------------------

    supports_prewarm = True

    def start_prewarm(self, body: dict[str, Any]) -> None:
        """Warm a connection up in the background with ``generate: false`` (call on the agent loop)."""
        if self.http_fallback or self._prewarm_task is not None or self._conn is not None:
            return
        self._prewarm_ctx = TurnContext(metrics=self.prewarm_metrics)
        self._prewarm_task = asyncio.get_running_loop().create_task(self._prewarm(body, self._prewarm_ctx))

    async def _prewarm(self, body: dict[str, Any], ctx: TurnContext) -> None:
        conn: WsConnection | None = None
        try:
            await self.prepare()
            body = self.adapt(body)
            conn = await self._open(ctx)
            self._prewarm_connected.set()
            extra = {"generate": False, **(self._extra(ctx) or {})}
            idle = min(self.options.idle_timeout, PREWARM_WAIT)
            async for _event in conn.stream(body, idle_timeout=idle, extra=extra, metrics=ctx.metrics):
                pass
            self.prewarm_response_id = conn.last_response.response_id if conn.last_response else None
            if self._conn is None and not self.http_fallback:
                self._conn, conn = conn, None
        except E.UpgradeRequired as error:
            self._switch_to_http(error, ctx.metrics)
        except asyncio.CancelledError:
            raise
        except E.AgentError as error:  # a failed warm-up costs nothing but the warm-up
            log.info("websocket prewarm failed: %s", E.redact(error, self._secret()).message)
        except Exception as error:  # noqa: BLE001 - a failed warm-up costs nothing but the warm-up
            log.info("websocket prewarm failed: %s", type(error).__name__)
        finally:
            self._prewarm_connected.set()
            if conn is not None:
                conn.abort()

    async def _take_prewarm(self, turn: TurnContext) -> None:
        """First turn after a prewarm: wait for it (bounded) and inherit its turn state."""
        task, ctx = self._prewarm_task, self._prewarm_ctx
        if task is None or ctx is None:
            return
        self._prewarm_ctx = None
        try:
            # The handshake is worth waiting for (a new connection would pay it again); the
            # warm-up reply only briefly.
            await asyncio.wait_for(self._prewarm_connected.wait(), PREWARM_WAIT)
            await asyncio.wait_for(asyncio.shield(task), PREWARM_REPLY_WAIT)
        except TimeoutError:
            task.cancel()
            log.info("websocket prewarm abandoned: no reply in time")
        turn.capture_turn_state(ctx.turn_state)

    # -- requests -------------------------------------------------------------------------

    async def stream(self, body: dict[str, Any], turn: TurnContext) -> AsyncIterator[SessionEvent]:
        """Stream one response over the WebSocket (retrying on new connections), else over HTTP."""
        await self.prepare()
        self._sse_metrics = turn.metrics
        if not self.http_fallback:
            await self._take_prewarm(turn)
        if not self.http_fallback:
            async for event in self._stream_ws(self.adapt(body), turn):
                yield event
            if not self.http_fallback:
                return
        while self._notices:
            notice = self._notices.pop(0)
            yield notice
        async for event in super().stream(body, turn):
            yield event

    async def _stream_ws(self, body: dict[str, Any], turn: TurnContext) -> AsyncIterator[SessionEvent]:
        budget = self.retry_budget(RECONNECT_CODES)
        while True:
            turn.requests_sent += 1
            conn: WsConnection | None = None
            one_off = False
            streamed = False
            try:
                conn, one_off = await self._connection(turn)
                async for event in conn.stream(
                    body,
                    idle_timeout=self.options.idle_timeout,
                    extra=self._extra(turn),
                    metrics=turn.metrics,
                    deadline=turn.deadline,
                ):
                    if type(event) in HEADER_KINDS:
                        for fact in self.header_facts(event, turn):
                            yield fact
                        continue
                    if isinstance(event, _VISIBLE_EVENTS):
                        streamed = True
                    yield event
                if one_off:
                    await conn.close()
                return
            except E.UpgradeRequired as error:
                self._switch_to_http(error, turn.metrics)
                if streamed:  # void what this attempt showed before the HTTP replay
                    yield SessionRetry(max(1, budget.attempt), budget.max_retries, 0.0, HTTP_FALLBACK_MESSAGE)
                return
            except E.AgentError as error:
                self._discard(conn)
                E.redact(error, self._secret())
                if (
                    isinstance(error, E.InvalidRequest)
                    and self.send_client_metadata
                    and "client_metadata" in error.message
                ):
                    self.send_client_metadata = False  # the server does not know the field
                    continue
                turn.metrics.failures += 1
                if not error.retryable:
                    raise
                delay = budget.next_delay(error)
                if delay is None:  # retries spent: HTTP+SSE for the rest of the session (spec §2.7)
                    self._switch_to_http(error, turn.metrics)
                    if streamed:
                        yield SessionRetry(max(1, budget.attempt), budget.max_retries, 0.0, HTTP_FALLBACK_MESSAGE)
                    return
                if turn.deadline is not None and asyncio.get_running_loop().time() + delay >= turn.deadline:
                    raise E.TurnDeadline(
                        f"The turn reached its deadline (turn_timeout) while retrying: {error.message}"
                    ) from None
                if budget.attempt > 1 or streamed:
                    # The first reconnect of a request that showed nothing stays quiet (spec §2.7,
                    # #11548): a stale socket is routine on WebSockets.
                    yield SessionRetry(budget.attempt, budget.max_retries, delay, error.message)
                if delay:
                    await asyncio.sleep(delay)
            except BaseException:  # whatever ends the attempt (cancel included): drop the socket, re-raise
                self._discard(conn)
                raise

    async def aclose(self) -> None:
        task, self._prewarm_task = self._prewarm_task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except BaseException:  # noqa: BLE001 - closing: how the warm-up ended does not matter
                pass
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        await super().aclose()
