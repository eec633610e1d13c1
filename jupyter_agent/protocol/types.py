"""Value types shared by every layer: rate-limit snapshots, credits, token usage, phase.

They live in the lowest layer (like codex's ``codex_protocol::protocol::RateLimitSnapshot``) so
that protocol, transport and session code never depend on the frontends' event vocabulary;
``events.py`` re-exports them. Spec §5 (rate limits), §8 (phase).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

#: Spec §8: ``commentary`` (progress talk) or ``final_answer``; None when the server sends none.
Phase = Literal["commentary", "final_answer"] | None


@dataclass(frozen=True, slots=True)
class RateLimitWindow:
    """One window of a bucket: percent used, window length and reset time (unix seconds)."""

    used_percent: float
    window_minutes: int | None = None
    resets_at: float | None = None
    #: Absolute figures, known for the platform ``x-ratelimit-*`` headers only.
    limit: int | None = None
    remaining: int | None = None


@dataclass(frozen=True, slots=True)
class Credits:
    has_credits: bool
    unlimited: bool
    balance: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimitSnapshot:
    """The state of one rate-limit bucket.

    ``source`` is ``"codex"`` for the ``x-<id>-primary-*`` header families, the
    ``codex.rate_limits`` WebSocket event and the usage endpoint; ``"platform"`` for the
    OpenAI ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` headers (then
    ``limit_id`` is ``requests`` or ``tokens``); ``"realtime"`` for ``rate_limits.updated``.
    """

    limit_id: str
    limit_name: str | None = None
    primary: RateLimitWindow | None = None
    secondary: RateLimitWindow | None = None
    credits: Credits | None = None
    plan_type: str | None = None
    source: Literal["codex", "platform", "realtime"] = "codex"
    captured_at: float = field(default_factory=time.time)

    @property
    def label(self) -> str:
        return self.limit_name or self.limit_id


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0


def snapshot_from_dict(data: dict[str, Any]) -> RateLimitSnapshot:
    def window(w: dict[str, Any] | None) -> RateLimitWindow | None:
        return RateLimitWindow(**w) if w else None

    credits = data.get("credits")
    return RateLimitSnapshot(
        **{k: v for k, v in data.items() if k not in {"primary", "secondary", "credits"}},
        primary=window(data.get("primary")),
        secondary=window(data.get("secondary")),
        credits=Credits(**credits) if credits else None,
    )
