"""The one retry policy of both transports (spec §3.5-3.7, §2.7): whether, and when, to try again.

Written down in one place, after openai-python's ``_should_retry``: if the server says when
(``retry-after-ms``, ``retry-after``, or "try again in 11.054s" in a rate-limit message), obey;
otherwise back off exponentially with ±10% jitter, capped. Which errors are retryable is decided
where they are classified (``errors.from_http_status``, ``errors.from_failed_response``); a delay
longer than ``MAX_RETRY_DELAY`` is not waited for (the error is surfaced with it instead).

## Budget trade-off
``max_retries`` counts retries of one request, not of a turn: a tool chain of five requests may
retry each. The WebSocket path spends the same budget, then falls back to HTTP+SSE for good
rather than failing the turn (spec §2.7); codes in ``RECONNECT_CODES`` mean "this connection",
so they reconnect at once instead of backing off.
"""

from __future__ import annotations

import datetime as _dt
import random
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .errors import AgentError

#: Server-suggested delays above this are not waited for (the error is surfaced instead).
MAX_RETRY_DELAY = 120.0
#: The server forgot the chain or retired the connection: reconnect at once with a full request.
RECONNECT_CODES = frozenset({"previous_response_not_found", "websocket_connection_limit_reached"})

_RETRY_AFTER_RE = re.compile(r"try again in\s*(\d+(?:\.\d+)?)\s*(s|ms|seconds?)", re.IGNORECASE)


def parse_retry_delay(message: str | None) -> float | None:
    """Seconds from "try again in 11.054s" / "28ms" / "35 seconds" (spec §3.6)."""
    if not message:
        return None
    match = _RETRY_AFTER_RE.search(message)
    if not match:
        return None
    value = float(match.group(1))
    return value / 1000.0 if match.group(2).lower() == "ms" else value


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms`` (ms) or ``retry-after`` (seconds or an HTTP date)."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        try:
            ms = float(lower["retry-after-ms"])
            if ms == ms and ms not in (float("inf"), float("-inf")):  # "nan"/"inf" parse but mean nothing
                return max(0.0, ms / 1000.0)
        except ValueError:
            pass
    if "retry-after" in lower:
        raw = lower["retry-after"].strip()
        try:
            seconds = float(raw)
            return max(0.0, seconds) if seconds == seconds and abs(seconds) != float("inf") else None
        except ValueError:
            try:
                when = _dt.datetime.strptime(raw, "%a, %d %b %Y %H:%M:%S %Z")
                return max(0.0, when.replace(tzinfo=_dt.UTC).timestamp() - time.time())
            except ValueError:
                return None
    return None


def backoff_delay(attempt: int, base: float = 0.2, cap: float = 10.0) -> float:
    """``base * 2**(attempt-1)`` with ±10% jitter, at most ``cap`` (attempt counts from 1)."""
    return min(cap, base * (2.0 ** (attempt - 1)) * random.uniform(0.9, 1.1))


class RetryBudget:
    """The retries of one request: ``next_delay(error)`` is the wait before the next attempt, or
    None when the error is final (not retryable, or the budget is spent)."""

    __slots__ = ("attempt", "backoff_base", "max_backoff", "max_retries", "reconnect_codes")

    def __init__(
        self,
        max_retries: int,
        *,
        backoff_base: float = 0.2,
        max_backoff: float = 10.0,
        reconnect_codes: frozenset[str] = frozenset(),
    ) -> None:
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self.reconnect_codes = reconnect_codes
        #: Retries granted so far (the number of the next retry once ``next_delay`` returned).
        self.attempt = 0

    @property
    def spent(self) -> bool:
        return self.attempt >= self.max_retries

    def next_delay(self, error: AgentError) -> float | None:
        if not error.retryable or self.spent:
            return None
        self.attempt += 1
        if error.code in self.reconnect_codes:
            return 0.0
        if error.delay is not None:
            return error.delay
        return backoff_delay(self.attempt, self.backoff_base, self.max_backoff)
