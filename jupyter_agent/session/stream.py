"""The session's typed stream: what ``ModelSession.stream`` yields, one union for both transports.

Like codex's ``ResponseEvent`` (``codex-api/src/common.rs``), header facts travel in the stream
next to the output events, so nothing above the session digs through headers:

* the typed wire events of ``protocol.responses`` (``response.output_text.delta``, ...);
* ``ServerModelSeen`` (``openai-model`` header or a model named in an event, spec §4), always
  before the rate limits of the same response (spec §3.2);
* ``RateLimitsUpdated`` (header families or ``codex.rate_limits``, spec §5), already merged into
  the session's per-bucket state;
* ``ModelsEtagSeen``, ``ReasoningIncluded`` (spec §7) and ``TurnStateCaptured`` (spec §6);
* ``SessionRetry`` (the failed attempt's output is void, spec §3.5) and ``SessionNotice``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ..protocol.responses import AnyServerEvent
from ..protocol.types import RateLimitSnapshot


@dataclass(frozen=True, slots=True)
class ServerModelSeen:
    """The model the server says answered (spec §4); repeated values are not filtered here."""

    model: str


@dataclass(frozen=True, slots=True)
class RateLimitsUpdated:
    """One bucket's snapshot, merged with what the session knew (spec §5.2)."""

    snapshot: RateLimitSnapshot


@dataclass(frozen=True, slots=True)
class ModelsEtagSeen:
    etag: str


@dataclass(frozen=True, slots=True)
class ReasoningIncluded:
    """``x-reasoning-included``: the server already counts past reasoning (spec §7)."""


@dataclass(frozen=True, slots=True)
class TurnStateCaptured:
    """The sticky ``x-codex-turn-state`` of this turn (spec §6): sent on every later request of the
    same turn, never across turns."""

    value: str


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


HeaderFact: TypeAlias = ServerModelSeen | RateLimitsUpdated | ModelsEtagSeen | ReasoningIncluded | TurnStateCaptured
SessionEvent: TypeAlias = AnyServerEvent | HeaderFact | SessionRetry | SessionNotice

__all__ = [
    "HeaderFact",
    "ModelsEtagSeen",
    "RateLimitsUpdated",
    "ReasoningIncluded",
    "ServerModelSeen",
    "SessionEvent",
    "SessionNotice",
    "SessionRetry",
    "TurnStateCaptured",
]
