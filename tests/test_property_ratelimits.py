"""Property-based tests (hypothesis) of rate-limit and retry-delay header parsing (spec §3.6, §5).

Arbitrary header maps never raise and never yield non-finite or out-of-range figures; well-formed
headers round-trip to the values they encode.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_agent.protocol import errors as E
from jupyter_agent.protocol.ratelimits import (
    parse_all_rate_limits,
    parse_duration,
    parse_platform_rate_limits,
    parse_rate_limit_for_limit,
)
from jupyter_agent.transport.base import ResponseHeaders

PROFILE = settings(max_examples=200, derandomize=True, deadline=None)

ids = st.sampled_from(["codex", "codex-other", "gpt-5-mini", "Codex_Bengalfox", "x"])
suffixes = st.sampled_from(
    [
        "primary-used-percent",
        "primary-window-minutes",
        "primary-reset-at",
        "secondary-used-percent",
        "secondary-window-minutes",
        "secondary-reset-at",
        "limit-name",
        "credits-has-credits",
        "credits-unlimited",
        "credits-balance",
    ]
)
platform = st.sampled_from(
    [f"x-ratelimit-{a}-{b}" for a in ("limit", "remaining", "reset") for b in ("requests", "tokens")]
)
retry = st.sampled_from(
    ["retry-after", "retry-after-ms", "Retry-After", "x-codex-active-limit", "openai-model", "x-codex-turn-state"]
)
values = st.one_of(
    st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e999",
            "true",
            "false",
            "1",
            "0",
            "",
            " 12 ",
            "6m0s",
            "1h2m3.5s",
            "12ms",
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ]
    ),
)
header_names = st.one_of(st.builds(lambda i, s: f"x-{i}-{s}", ids, suffixes), platform, retry, st.text(max_size=10))
headers = st.dictionaries(header_names, values, max_size=12)


def _finite(x: float | None) -> bool:
    return x is None or math.isfinite(x)


@PROFILE
@given(headers)
def test_arbitrary_headers_never_raise_and_stay_sane(h: dict[str, str]) -> None:
    snaps = parse_all_rate_limits(h)
    assert snaps[0].limit_id == "codex"
    for snap in snaps + parse_platform_rate_limits(h, now=1000.0):
        for w in (snap.primary, snap.secondary):
            if w is not None:
                assert math.isfinite(w.used_percent) and _finite(w.resets_at)
        if snap.source == "platform":
            assert snap.primary is not None and 0.0 <= snap.primary.used_percent <= 100.0
            assert snap.primary.remaining is not None and snap.primary.remaining >= 0
    delay = E.retry_after_from_headers(h)
    assert delay is None or (delay >= 0 and math.isfinite(delay)), delay
    ResponseHeaders.from_http(h)


@PROFILE
@given(
    st.floats(0, 100, allow_nan=False),
    st.integers(1, 100000),
    st.floats(1e9, 2e9, allow_nan=False),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["", "12.5", "1000"]),
)
def test_codex_family_round_trips(
    used: float, minutes: int, reset: float, has: bool, unlimited: bool, balance: str
) -> None:
    h = {
        "X-Codex-Other-Primary-Used-Percent": repr(used),
        "x-codex-other-primary-window-minutes": str(minutes),
        "x-codex-other-primary-reset-at": repr(reset),
        "x-codex-other-limit-name": "Other model",
        # credits use the x-codex- names for every family (spec §5.1)
        "x-codex-credits-has-credits": "true" if has else "false",
        "x-codex-credits-unlimited": "1" if unlimited else "0",
        "x-codex-credits-balance": balance,
    }
    snap = parse_rate_limit_for_limit(h, "codex-other")
    assert snap.limit_id == "codex_other" and snap.limit_name == "Other model"
    if used or minutes or reset:
        assert snap.primary is not None
        assert (
            snap.primary.used_percent == used
            and snap.primary.window_minutes == minutes
            and snap.primary.resets_at == reset
        )
    assert snap.credits is not None and (snap.credits.has_credits, snap.credits.unlimited) == (has, unlimited)
    assert snap.credits.balance == (balance or None)
    assert [s.limit_id for s in parse_all_rate_limits(h)] == ["codex", "codex_other"]


@PROFILE
@given(
    st.integers(1, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 5),
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 999),
)
def test_platform_headers_round_trip(limit: int, remaining: int, h_: int, m: int, s: int, ms: int) -> None:
    remaining = min(remaining, limit)
    text = (f"{h_}h" if h_ else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "") + (f"{ms}ms" if ms else "")
    expected = h_ * 3600 + m * 60 + s + ms / 1000
    assert parse_duration(text or "0") == (expected if text else 0.0)
    snaps = parse_platform_rate_limits(
        {
            "x-ratelimit-limit-tokens": str(limit),
            "x-ratelimit-remaining-tokens": str(remaining),
            "x-ratelimit-reset-tokens": text or "0",
        },
        now=100.0,
    )
    assert len(snaps) == 1
    w = snaps[0].primary
    assert w is not None and w.limit == limit and w.remaining == remaining
    assert math.isclose(w.used_percent, (limit - remaining) * 100 / limit)
    assert w.resets_at is not None and math.isclose(w.resets_at, 100.0 + (expected if text else 0.0))


@PROFILE
@given(st.integers(0, 10**7), st.floats(0, 10**6, allow_nan=False))
def test_retry_after_headers_round_trip(ms: int, seconds: float) -> None:
    assert E.retry_after_from_headers({"retry-after-ms": str(ms)}) == ms / 1000
    assert E.retry_after_from_headers({"Retry-After": repr(seconds)}) == seconds
    # retry-after-ms wins when both are present
    assert E.retry_after_from_headers({"retry-after": "99", "retry-after-ms": str(ms)}) == ms / 1000


@PROFILE
@given(
    st.floats(0, 10**4, allow_nan=False).map(lambda x: round(x, 3)),
    st.sampled_from(["s", "ms", "seconds", "second", "S", "MS"]),
    st.text(max_size=20),
)
def test_retry_delay_in_message(value: float, unit: str, noise: str) -> None:
    message = f"Rate limit reached. Please try again in {value}{unit}. {noise}"
    got = E.parse_retry_delay(message)
    want = value / 1000 if unit.lower() == "ms" else value
    assert got is not None and math.isclose(got, want)


@PROFILE
@given(st.text(max_size=80))
def test_retry_delay_arbitrary_text(message: str) -> None:
    got = E.parse_retry_delay(message)
    assert got is None or (got >= 0 and math.isfinite(got))
