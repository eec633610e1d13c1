"""ModelSession: one conversation with one provider, and the state that crosses requests.

The session owns the HTTP client and transports, builds request headers, keeps the sticky
``x-codex-turn-state`` per turn (spec §6), the latest rate-limit snapshot per bucket (§5), and
runs the retry loop (§3.5-3.7, §2.7). It yields transport events plus ``SessionRetry``
markers; it knows nothing of Jupyter.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import httpx

from .config import ORIGINATOR, USER_AGENT, Provider
from .events import RateLimitSnapshot
from .protocol import errors as E
from .protocol.ratelimits import merge_snapshot
from .telemetry import TurnMetrics
from .transport.base import ResponseHeaders, Transport
from .transport.proxy import httpx_client_options
from .transport.sse import SseTransport


@dataclass
class TurnContext:
    """State that lives for one user turn (all its requests, retries and tool follow-ups)."""

    turn_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    requested_model: str = ""
    #: Write-once sticky routing token (spec §6): first value wins.
    turn_state: str | None = None
    reroute_warned: bool = False
    #: A frontend that can ask the user for approvals is attached.
    interactive: bool = False
    requests_sent: int = 0
    metrics: TurnMetrics = field(default_factory=TurnMetrics)

    def capture_turn_state(self, value: str | None) -> None:
        if value and self.turn_state is None:
            self.turn_state = value

    @property
    def metadata(self) -> str:
        return json.dumps({"turn_id": self.turn_id}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class SessionRetry:
    """A retryable failure; the events of the failed attempt are void."""

    attempt: int
    max_attempts: int
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class SessionNotice:
    """Something the user should see about the session (e.g. the WebSocket→HTTP fallback)."""

    level: str
    message: str


@dataclass
class SessionOptions:
    max_retries: int = 5
    idle_timeout: float = 300.0
    backoff_base: float = 0.2
    max_backoff: float = 10.0


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
            return SseTransport(self.client, self.provider.responses_url, metrics=metrics)
        if self._sse is None:
            self._sse = SseTransport(self.client, self.provider.responses_url)
        return self._sse

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self._sse = None

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
        base = self.options.backoff_base * (2 ** (attempt - 1))
        return min(self.options.max_backoff, base * random.uniform(0.9, 1.1))

    async def stream(self, body: dict[str, Any], turn: TurnContext) -> AsyncIterator[Any]:
        """Stream one response, retrying retryable failures; yields ``SessionRetry`` between tries."""
        await self.prepare()
        body = self.adapt(body)
        attempt = 0
        while True:
            turn.requests_sent += 1
            try:
                async for event in self.transport(turn.metrics).stream(
                    body, self.request_headers(turn), idle_timeout=self.options.idle_timeout
                ):
                    if isinstance(event, ResponseHeaders):
                        turn.capture_turn_state(event.turn_state)
                        if event.models_etag:
                            self.models_etag = event.models_etag
                        if event.reasoning_included:
                            self.reasoning_included = True
                    yield event
                return
            except E.AgentError as error:
                E.redact(error, self.provider.api_key.get() if self.provider.api_key else None)
                turn.metrics.failures += 1
                if not error.retryable or attempt >= self.options.max_retries:
                    if error.retryable and error.status == 429:
                        raise E.retry_limit_exceeded(error) from None
                    raise
                attempt += 1
                delay = error.delay if error.delay is not None else self.backoff(attempt)
                yield SessionRetry(attempt, self.options.max_retries, delay, error.message)
                await asyncio.sleep(delay)
