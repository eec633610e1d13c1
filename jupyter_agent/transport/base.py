"""What every Responses transport yields, and the stream rules they share.

A transport turns one request into an async stream of:
  * ``ResponseHeaders`` first (HTTP response headers, or the WebSocket handshake headers
    replayed at the start of every request on that connection, spec §2.3/§3.2),
  * ``EventServerModel`` when an event names a server model (spec §4),
  * typed wire events from ``protocol.responses``,
and ends after the terminal event, or raises an ``AgentError``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..protocol import errors as E
from ..protocol.ratelimits import parse_all_rate_limits, parse_platform_rate_limits
from ..protocol.responses import (
    CodexRateLimitsEvent,
    ErrorEvent,
    ResponseCompleted,
    ResponseDone,
    ResponseFailed,
    ResponseIncomplete,
    event_server_model,
)
from ..protocol.types import RateLimitSnapshot


@dataclass(slots=True)
class ResponseHeaders:
    """Header-derived facts, yielded before any event of a response stream."""

    server_model: str | None = None
    rate_limits: list[RateLimitSnapshot] = field(default_factory=list)
    models_etag: str | None = None
    reasoning_included: bool = False
    turn_state: str | None = None
    request_id: str | None = None

    @classmethod
    def from_http(cls, headers: Mapping[str, str], *, read_rate_limits: bool = True) -> ResponseHeaders:
        h = {k.lower(): v for k, v in headers.items()}
        limits: list[RateLimitSnapshot] = []
        if read_rate_limits:
            limits = parse_all_rate_limits(h) + parse_platform_rate_limits(h)
        return cls(
            server_model=h.get("openai-model") or None,
            rate_limits=limits,
            models_etag=h.get("x-models-etag") or None,
            reasoning_included="x-reasoning-included" in h,
            turn_state=h.get("x-codex-turn-state") or None,
            request_id=h.get("x-request-id") or h.get("x-oai-request-id"),
        )


@dataclass(slots=True)
class EventServerModel:
    """A server model named inside an event, emitted when it changes within a stream."""

    model: str


class StreamState:
    """Per-response-stream rules shared by SSE and WebSocket (spec §3.3-3.4, §4)."""

    __slots__ = ("completed", "last_model", "pending_error")

    def __init__(self) -> None:
        self.last_model: str | None = None
        self.pending_error: E.AgentError | None = None
        self.completed = False

    def server_model(self, event: Any) -> EventServerModel | None:
        model = event_server_model(event)
        if model and model != self.last_model:
            self.last_model = model
            return EventServerModel(model)
        return None

    def check_terminal(self, event: Any) -> bool:
        """True when ``event`` ends the stream successfully; raises for failures."""
        if type(event) not in _TERMINAL_KINDS:  # the hot path: deltas end nothing
            return False
        if isinstance(event, (ResponseCompleted, ResponseDone)):
            self.completed = True
            return True
        if isinstance(event, ResponseFailed):
            error = event.response.error if event.response else None
            raise self.pending_error or E.from_failed_response(error)
        if isinstance(event, ResponseIncomplete):
            details = event.response.incomplete_details if event.response else None
            raise E.incomplete_error(details.reason if details else None)
        if isinstance(event, ErrorEvent):
            status = event.http_status
            if status is not None and not 200 <= status < 300:
                # WebSocket wrapped error: behaves like the HTTP status error (spec §2.6).
                body = {"error": event.error.model_dump(exclude_none=True)} if event.error else None
                raise E.from_http_status(status, _stringify(event.headers or {}), body)
            if status is None and (event.error is not None or event.code or event.message):
                # In-stream error (nested or flat): remembered, terminal on its own.
                err = E.from_failed_response(event.error or event)
                raise err
        return False

    def end_of_stream(self) -> E.AgentError:
        return self.pending_error or E.StreamError("stream closed before response.completed")


_TERMINAL_KINDS = frozenset[type]((ResponseCompleted, ResponseDone, ResponseFailed, ResponseIncomplete, ErrorEvent))


def _stringify(headers: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in headers.items():
        if isinstance(v, bool):
            out[str(k)] = "true" if v else "false"
        else:
            out[str(k)] = str(v)
    return out


class Transport:
    """Interface of a Responses transport."""

    name = "base"

    def stream(
        self, body: dict[str, Any], headers: dict[str, str], *, idle_timeout: float
    ) -> AsyncIterator[Any]:  # pragma: no cover - interface
        raise NotImplementedError

    async def aclose(self) -> None:  # pragma: no cover - interface
        return None


__all__ = [
    "CodexRateLimitsEvent",
    "EventServerModel",
    "ResponseHeaders",
    "StreamState",
    "Transport",
]
