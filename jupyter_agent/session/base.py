"""ModelSession: one conversation with one provider, and the state that crosses requests.

The session owns the HTTP client and transports, builds request headers, keeps the sticky
``x-codex-turn-state`` per turn (spec §6), the latest rate-limit snapshot per bucket (§5), and
runs the retry loop (§3.5-3.7, §2.7). It yields the typed session stream of ``session.stream``
(wire events, header facts, retry and notice markers); it knows nothing of Jupyter.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..config import ORIGINATOR, USER_AGENT, Provider
from ..protocol import errors as E
from ..protocol.ratelimits import merge_snapshot, snapshot_from_codex_event
from ..protocol.responses import CodexRateLimitsEvent
from ..protocol.retry import RetryBudget, backoff_delay
from ..protocol.types import RateLimitSnapshot
from ..telemetry import TurnMetrics
from ..transport.base import EventServerModel, ResponseHeaders, Transport
from ..transport.proxy import httpx_client_options
from ..transport.sse import DEFAULT_LIMITS, SseLimits, SseTransport
from .stream import (
    HeaderFact,
    ModelsEtagSeen,
    RateLimitsUpdated,
    ReasoningIncluded,
    ServerModelSeen,
    SessionEvent,
    SessionRetry,
    TurnStateCaptured,
)


@dataclass
class TurnContext:
    """Session state of one user turn (all its requests, retries and tool follow-ups).

    Turn scope, apart from the session scope (``ModelSession``), like codex's ``core/src/client.rs``.
    Not the display state of a turn (that is ``ui.TurnViewState``, built from agent events).
    """

    turn_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    requested_model: str = ""
    #: ``x-codex-turn-state`` (spec §6): write-once, first value wins; sent on every later request of
    #: this turn and never across turns (a new ``TurnContext`` starts empty).
    turn_state: str | None = None
    reroute_warned: bool = False
    #: A frontend that can ask the user for approvals is attached.
    interactive: bool = False
    requests_sent: int = 0
    metrics: TurnMetrics = field(default_factory=TurnMetrics)
    #: Optional end of the whole turn on the event-loop clock (issue 15 item 4): no request or
    #: retry outlives it. ``None``: only the per-event idle timeout applies.
    deadline: float | None = None

    def capture_turn_state(self, value: str | None) -> bool:
        """Keep the first turn state of the turn; True when ``value`` became it."""
        if value and self.turn_state is None:
            self.turn_state = value
            return True
        return False

    @property
    def metadata(self) -> str:
        return json.dumps({"turn_id": self.turn_id}, separators=(",", ":"))


#: Transport events that carry session facts rather than output (see ``header_facts``).
HEADER_KINDS = frozenset({ResponseHeaders, EventServerModel, CodexRateLimitsEvent})


@dataclass
class SessionOptions:
    max_retries: int = 5
    idle_timeout: float = 300.0
    backoff_base: float = 0.2
    max_backoff: float = 10.0
    #: Caps on one SSE event and one decoded response body (``transport.sse.SseLimits``, issue 15).
    sse_limits: SseLimits = DEFAULT_LIMITS


class ModelSession:
    """One conversation with one provider."""

    def __init__(
        self, provider: Provider, *, options: SessionOptions | None = None, conversation_id: str | None = None
    ) -> None:
        self.provider = provider
        self.options = options or SessionOptions()
        self.conversation_id = conversation_id or str(uuid.uuid4())
        self.rate_limits: dict[str, RateLimitSnapshot] = {}
        self.server_model: str | None = None
        self.models_etag: str | None = None
        self.reasoning_included = False
        self._client: httpx.AsyncClient | None = None
        self._sse: SseTransport | None = None
        self._prepared = False

    # -- lifecycle ------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Run the provider's one-time preparation (e.g. start the embedded model)."""
        if self._prepared:
            return
        if self.provider.prepare is not None:
            await asyncio.to_thread(self.provider.prepare)
        self._prepared = True

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                **httpx_client_options(),
                http2=False,
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
                follow_redirects=False,
            )
        return self._client

    def transport(self, metrics: TurnMetrics | None = None) -> Transport:
        """The HTTP+SSE transport; it counts API calls and SSE events into ``metrics`` (spec §10)."""
        if metrics is not None:
            return SseTransport(
                self.client, self.provider.responses_url, metrics=metrics, limits=self.options.sse_limits
            )
        if self._sse is None:
            self._sse = SseTransport(self.client, self.provider.responses_url, limits=self.options.sse_limits)
        return self._sse

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self._sse = None

    #: Set by the WebSocket session when it fell back to HTTP (spec §2.7); never here.
    fallback_reason: str | None = None

    @property
    def active_transport(self) -> str:
        """The wire in use: ``sse`` here, ``websocket`` until a fallback in ``WebSocketSession``."""
        return "sse"

    # -- prewarm (spec §1) ----------------------------------------------------------------

    #: Whether ``start_prewarm`` does anything (the WebSocket session; HTTP has nothing to warm).
    supports_prewarm = False

    def start_prewarm(self, body: dict[str, Any]) -> None:
        """Warm up before the first turn with ``body`` (call on the agent loop); no-op here."""
        return None

    # -- requests -------------------------------------------------------------------------

    def request_headers(self, turn: TurnContext) -> dict[str, str]:
        headers = {
            "originator": ORIGINATOR,
            "User-Agent": USER_AGENT,
            "session_id": self.conversation_id,
            "x-codex-turn-metadata": turn.metadata,
        }
        headers.update(self.provider.extra_headers)
        if turn.turn_state:
            headers["x-codex-turn-state"] = turn.turn_state
        headers.update(self.provider.auth_headers())
        return headers

    def adapt(self, body: dict[str, Any]) -> dict[str, Any]:
        adapter = self.provider.request_adapter
        return adapter(body) if adapter else body

    def update_rate_limits(self, snapshot: RateLimitSnapshot) -> RateLimitSnapshot:
        merged = merge_snapshot(self.rate_limits.get(snapshot.limit_id), snapshot)
        self.rate_limits[merged.limit_id] = merged
        return merged

    def backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self.options.backoff_base, self.options.max_backoff)

    def retry_budget(self, reconnect_codes: frozenset[str] = frozenset()) -> RetryBudget:
        """The retry budget of one request, from the options as they are now."""
        o = self.options
        return RetryBudget(
            o.max_retries, backoff_base=o.backoff_base, max_backoff=o.max_backoff, reconnect_codes=reconnect_codes
        )

    def header_facts(self, event: Any, turn: TurnContext) -> list[HeaderFact]:
        """Session state from a header-carrying transport event, as the facts of the typed stream.

        ``event`` is one of ``HEADER_KINDS`` (transport headers, an event naming the server model,
        a ``codex.rate_limits`` event). The server model comes before rate limits (spec §3.2).
        """
        facts: list[HeaderFact] = []
        if isinstance(event, ResponseHeaders):
            if turn.capture_turn_state(event.turn_state) and turn.turn_state:
                facts.append(TurnStateCaptured(turn.turn_state))
            if event.models_etag:
                self.models_etag = event.models_etag
                facts.append(ModelsEtagSeen(event.models_etag))
            if event.reasoning_included:
                self.reasoning_included = True
                facts.append(ReasoningIncluded())
            if event.server_model:
                self.server_model = event.server_model
                facts.append(ServerModelSeen(event.server_model))
            for snap in event.rate_limits:
                if snap.primary or snap.secondary or snap.credits:
                    facts.append(RateLimitsUpdated(self.update_rate_limits(snap)))
        elif isinstance(event, EventServerModel):
            self.server_model = event.model
            facts.append(ServerModelSeen(event.model))
        elif isinstance(event, CodexRateLimitsEvent):
            codex = snapshot_from_codex_event(event)
            if codex is not None:
                facts.append(RateLimitsUpdated(self.update_rate_limits(codex)))
        return facts

    async def stream(self, body: dict[str, Any], turn: TurnContext) -> AsyncIterator[SessionEvent]:
        """Stream one response, retrying retryable failures; yields ``SessionRetry`` between tries."""
        await self.prepare()
        body = self.adapt(body)
        budget = self.retry_budget()
        while True:
            turn.requests_sent += 1
            try:
                async for event in self.transport(turn.metrics).stream(
                    body, self.request_headers(turn), idle_timeout=self.options.idle_timeout, deadline=turn.deadline
                ):
                    if type(event) in HEADER_KINDS:
                        for fact in self.header_facts(event, turn):
                            yield fact
                    else:
                        yield event
                return
            except E.AgentError as error:
                E.redact(error, self.provider.api_key.get() if self.provider.api_key else None)
                turn.metrics.failures += 1
                delay = budget.next_delay(error)
                if delay is None:
                    if error.retryable and error.status == 429:
                        raise E.retry_limit_exceeded(error) from None
                    raise
                if turn.deadline is not None and asyncio.get_running_loop().time() + delay >= turn.deadline:
                    raise E.TurnDeadline(
                        f"The turn reached its deadline (turn_timeout) while retrying: {error.message}"
                    ) from None
                yield SessionRetry(budget.attempt, budget.max_retries, delay, error.message)
                await asyncio.sleep(delay)
