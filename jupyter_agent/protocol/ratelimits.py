"""Rate-limit state from headers, ``codex.rate_limits`` events and the usage endpoint (spec §5).

Two kinds of snapshot come out of here, both ``jupyter_agent.events.RateLimitSnapshot``:
the codex families ``x-<id>-primary-*`` (percent used per window, default id ``codex``), and
the OpenAI platform headers ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .types import Credits, RateLimitSnapshot, RateLimitWindow

DEFAULT_LIMIT_ID = "codex"
_SUFFIX = "-primary-used-percent"


def _lower(headers: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _int(value: str | None) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    text = value.strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    return None


def normalize_limit_id(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _window(h: dict[str, str], prefix: str, which: str) -> RateLimitWindow | None:
    used = _float(h.get(f"{prefix}-{which}-used-percent"))
    if used is None:
        return None
    minutes = _int(h.get(f"{prefix}-{which}-window-minutes"))
    reset = _float(h.get(f"{prefix}-{which}-reset-at"))
    if used == 0 and not minutes and reset is None:
        return None
    return RateLimitWindow(used_percent=used, window_minutes=minutes, resets_at=reset)


def _credits(h: dict[str, str]) -> Credits | None:
    has = _bool(h.get("x-codex-credits-has-credits"))
    unlimited = _bool(h.get("x-codex-credits-unlimited"))
    if has is None or unlimited is None:
        return None
    balance = (h.get("x-codex-credits-balance") or "").strip() or None
    return Credits(has_credits=has, unlimited=unlimited, balance=balance)


def parse_rate_limit_for_limit(headers: Mapping[str, Any], limit_id: str = DEFAULT_LIMIT_ID) -> RateLimitSnapshot:
    h = _lower(headers)
    limit_id = normalize_limit_id(limit_id)
    prefix = "x-" + limit_id.replace("_", "-")
    name = (h.get(f"{prefix}-limit-name") or "").strip() or None
    return RateLimitSnapshot(
        limit_id=limit_id,
        limit_name=name,
        primary=_window(h, prefix, "primary"),
        secondary=_window(h, prefix, "secondary"),
        credits=_credits(h),
    )


def parse_all_rate_limits(headers: Mapping[str, Any]) -> list[RateLimitSnapshot]:
    """Every family: ``codex`` first (always, possibly empty), then other ids sorted."""
    h = _lower(headers)
    ids = set()
    for key in h:
        if key.startswith("x-") and key.endswith(_SUFFIX):
            ids.add(normalize_limit_id(key[2 : -len(_SUFFIX)]))
    ids.discard(DEFAULT_LIMIT_ID)
    out = [parse_rate_limit_for_limit(h, DEFAULT_LIMIT_ID)]
    for limit_id in sorted(ids):
        snap = parse_rate_limit_for_limit(h, limit_id)
        if snap.primary or snap.secondary or snap.credits:
            out.append(snap)
    return out


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str | None) -> float | None:
    """``6m0s`` -> 360.0, ``120ms`` -> 0.12, ``1h2m3.5s``, plain ``12`` (seconds)."""
    if not text:
        return None
    text = text.strip()
    plain = _float(text)
    if plain is not None:
        return plain
    total, pos = 0.0, 0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            return None
        value, unit = float(match.group(1)), match.group(2)
        total += value * {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}[unit]
        pos = match.end()
    return total if pos == len(text) and pos > 0 else None


def parse_platform_rate_limits(headers: Mapping[str, Any], now: float | None = None) -> list[RateLimitSnapshot]:
    """OpenAI platform ``x-ratelimit-*`` headers as ``requests`` / ``tokens`` snapshots."""
    h = _lower(headers)
    now = time.time() if now is None else now
    out = []
    for kind in ("requests", "tokens"):
        limit = _int(h.get(f"x-ratelimit-limit-{kind}"))
        remaining = _int(h.get(f"x-ratelimit-remaining-{kind}"))
        if limit is None or remaining is None or limit <= 0:
            continue  # absent, or Azure's -1/0 placeholders
        reset = parse_duration(h.get(f"x-ratelimit-reset-{kind}"))
        used = max(0.0, min(100.0, (limit - remaining) * 100.0 / limit))
        window = RateLimitWindow(
            used_percent=used,
            resets_at=now + reset if reset is not None else None,
            limit=limit,
            remaining=max(0, remaining),
        )
        out.append(RateLimitSnapshot(limit_id=kind, primary=window, source="platform", captured_at=now))
    return out


def snapshot_from_codex_event(event: Any) -> RateLimitSnapshot | None:
    """``codex.rate_limits`` WebSocket event -> snapshot (spec §5.3)."""
    limit_id = event.metered_limit_name or event.limit_name or DEFAULT_LIMIT_ID
    rl = event.rate_limits

    def window(w: Any) -> RateLimitWindow | None:
        if w is None:
            return None
        return RateLimitWindow(
            used_percent=float(w.used_percent), window_minutes=w.window_minutes, resets_at=w.reset_at
        )

    credits = event.credits
    return RateLimitSnapshot(
        limit_id=normalize_limit_id(limit_id),
        limit_name=None,
        primary=window(rl.primary) if rl else None,
        secondary=window(rl.secondary) if rl else None,
        credits=Credits(credits.has_credits, credits.unlimited, credits.balance) if credits else None,
        plan_type=event.plan_type,
    )


_PLAN_MAP = {"guest": "unknown", "free_workspace": "unknown", "quorum": "unknown", "k12": "unknown", "education": "edu"}


def snapshots_from_usage_payload(payload: Mapping[str, Any]) -> list[RateLimitSnapshot]:
    """The backend usage endpoint (``/wham/usage`` or ``/api/codex/usage``) -> snapshots (§5.4)."""
    plan = payload.get("plan_type")
    plan = _PLAN_MAP.get(plan, plan) if isinstance(plan, str) else None

    def window(w: Mapping[str, Any] | None) -> RateLimitWindow | None:
        if not w or w.get("used_percent") is None:
            return None
        seconds = w.get("limit_window_seconds")
        minutes = math.ceil(seconds / 60) if isinstance(seconds, (int, float)) and seconds > 0 else None
        return RateLimitWindow(
            used_percent=float(w["used_percent"]), window_minutes=minutes, resets_at=w.get("reset_at")
        )

    def windows(rl: Mapping[str, Any] | None) -> tuple[RateLimitWindow | None, RateLimitWindow | None]:
        if not rl:
            return None, None
        return window(rl.get("primary_window")), window(rl.get("secondary_window"))

    credits_raw = payload.get("credits")
    credits = None
    if isinstance(credits_raw, Mapping) and "has_credits" in credits_raw and "unlimited" in credits_raw:
        balance = credits_raw.get("balance")
        credits = Credits(
            bool(credits_raw["has_credits"]), bool(credits_raw["unlimited"]), None if balance is None else str(balance)
        )
    primary, secondary = windows(payload.get("rate_limit"))
    out = [
        RateLimitSnapshot(
            limit_id=DEFAULT_LIMIT_ID, primary=primary, secondary=secondary, credits=credits, plan_type=plan
        )
    ]
    for extra in payload.get("additional_rate_limits") or []:
        if not isinstance(extra, Mapping):
            continue
        p, s = windows(extra.get("rate_limit"))
        limit_id = extra.get("metered_feature") or extra.get("limit_name") or "unknown"
        out.append(
            RateLimitSnapshot(
                limit_id=normalize_limit_id(str(limit_id)),
                limit_name=extra.get("limit_name"),
                primary=p,
                secondary=s,
                plan_type=plan,
            )
        )
    return out


def merge_snapshot(previous: RateLimitSnapshot | None, new: RateLimitSnapshot) -> RateLimitSnapshot:
    """Keep credits and plan type from the previous snapshot when the new one lacks them (§5.2)."""
    if previous is None:
        return new
    return replace(
        new,
        credits=new.credits if new.credits is not None else previous.credits,
        plan_type=new.plan_type if new.plan_type is not None else previous.plan_type,
    )
