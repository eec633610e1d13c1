"""Spec §5.1-5.4: rate-limit headers, codex.rate_limits events, usage payloads, merging; the
OpenAI platform ``x-ratelimit-*`` headers; and the usage-limit 429 over a real socket."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jupyter_agent import events as ev
from jupyter_agent.events import Credits, RateLimitSnapshot, RateLimitWindow
from jupyter_agent.protocol import ratelimits as RL
from jupyter_agent.protocol.responses import parse_event
from jupyter_agent.testing import ScriptedServer, error_reply, text_reply
from tests.sse_support import of_type

CODEX = {
    "x-codex-primary-used-percent": "12.5",
    "x-codex-primary-window-minutes": "10",
    "x-codex-primary-reset-at": "1704069000",
    "x-codex-secondary-used-percent": "40.0",
    "x-codex-secondary-window-minutes": "60",
    "x-codex-secondary-reset-at": "1704074400",
}


def test_defaults_to_codex_headers() -> None:
    snap = RL.parse_rate_limit_for_limit(
        {
            "X-Codex-Primary-Used-Percent": "12.5",
            "x-codex-primary-window-minutes": "10",
            "x-codex-primary-reset-at": "1704069000",
        }
    )
    assert snap.limit_id == "codex" and snap.limit_name is None
    assert snap.primary == RateLimitWindow(used_percent=12.5, window_minutes=10, resets_at=1704069000)
    assert snap.secondary is None and snap.credits is None


def test_reads_secondary_headers() -> None:
    snap = RL.parse_rate_limit_for_limit(CODEX)
    assert snap.secondary == RateLimitWindow(used_percent=40.0, window_minutes=60, resets_at=1704074400)


def test_prefers_limit_name_header() -> None:
    headers = {"x-codex-bengalfox-primary-used-percent": "5", "x-codex-bengalfox-limit-name": "  gpt-5.2-codex-sonic "}
    snap = RL.parse_rate_limit_for_limit(headers, "codex_bengalfox")
    assert snap.limit_id == "codex_bengalfox" and snap.limit_name == "gpt-5.2-codex-sonic"
    assert snap.label == "gpt-5.2-codex-sonic"
    assert (
        RL.parse_rate_limit_for_limit({**headers, "x-codex-bengalfox-limit-name": "  "}, "codex_bengalfox").limit_name
        is None
    )


def test_parse_all_reads_all_families_sorted_with_codex_first() -> None:
    headers = {
        **CODEX,
        "x-codex-secondary-primary-used-percent": "80",  # the family codex_secondary, not codex's secondary
        "x-codex-other-primary-used-percent": "70",
        "x-codex-other-primary-window-minutes": "30",
        "x-codex-primary-over-secondary-limit-percent": "3",  # ignored
        "x-abc-primary-used-percent": "1",
    }
    snaps = RL.parse_all_rate_limits(headers)
    assert [s.limit_id for s in snaps] == ["codex", "abc", "codex_other", "codex_secondary"]
    assert snaps[2].primary == RateLimitWindow(used_percent=70.0, window_minutes=30)
    assert snaps[3].primary is not None and snaps[3].primary.used_percent == 80.0
    assert snaps[0].primary is not None and snaps[0].primary.used_percent == 12.5


def test_parse_all_includes_default_codex_snapshot() -> None:
    [snap] = RL.parse_all_rate_limits({"content-type": "text/event-stream"})
    assert snap == RateLimitSnapshot(limit_id="codex", captured_at=snap.captured_at)


def test_other_family_without_window_or_credits_is_dropped() -> None:
    snaps = RL.parse_all_rate_limits({"x-codex-other-primary-used-percent": "0"})
    assert [s.limit_id for s in snaps] == ["codex"]


@pytest.mark.parametrize(
    ("headers", "present"),
    [
        ({"x-codex-primary-used-percent": "0"}, False),
        ({"x-codex-primary-used-percent": "0", "x-codex-primary-window-minutes": "0"}, False),
        ({"x-codex-primary-used-percent": "0", "x-codex-primary-window-minutes": "300"}, True),
        ({"x-codex-primary-used-percent": "0", "x-codex-primary-reset-at": "1704069000"}, True),
        ({"x-codex-primary-used-percent": "0.5"}, True),
        ({"x-codex-primary-used-percent": "lots", "x-codex-primary-window-minutes": "300"}, False),
        ({"x-codex-primary-used-percent": "nan", "x-codex-primary-window-minutes": "300"}, False),
        ({"x-codex-primary-used-percent": "inf"}, False),
    ],
)
def test_window_presence_rules(headers: dict[str, str], present: bool) -> None:
    assert (RL.parse_rate_limit_for_limit(headers).primary is not None) is present


def test_non_numeric_window_fields_are_ignored() -> None:
    snap = RL.parse_rate_limit_for_limit(
        {
            "x-codex-primary-used-percent": "50",
            "x-codex-primary-window-minutes": "soon",
            "x-codex-primary-reset-at": "later",
        }
    )
    assert snap.primary == RateLimitWindow(used_percent=50.0)


@pytest.mark.parametrize(
    ("headers", "credits"),
    [
        (
            {
                "x-codex-credits-has-credits": "true",
                "x-codex-credits-unlimited": "false",
                "x-codex-credits-balance": " 123 ",
            },
            Credits(True, False, "123"),
        ),
        ({"x-codex-credits-has-credits": "1", "x-codex-credits-unlimited": "0"}, Credits(True, False, None)),
        (
            {
                "x-codex-credits-has-credits": "false",
                "x-codex-credits-unlimited": "true",
                "x-codex-credits-balance": "",
            },
            Credits(False, True, None),
        ),
        ({"x-codex-credits-has-credits": "true"}, None),  # both flags required
        ({"x-codex-credits-has-credits": "yes", "x-codex-credits-unlimited": "false"}, None),
    ],
)
def test_credits(headers: dict[str, str], credits: Credits | None) -> None:
    assert RL.parse_rate_limit_for_limit(headers).credits == credits


def test_credits_use_codex_names_for_every_family() -> None:
    headers = {
        "x-codex-other-primary-used-percent": "0",
        "x-codex-credits-has-credits": "true",
        "x-codex-credits-unlimited": "false",
    }
    snaps = RL.parse_all_rate_limits(headers)
    assert [s.limit_id for s in snaps] == ["codex", "codex_other"]
    assert snaps[1].credits == Credits(True, False, None) and snaps[1].primary is None


def test_merge_inherits_credits_and_plan_but_not_limit_name() -> None:
    previous = RateLimitSnapshot(
        limit_id="codex", limit_name="Old", credits=Credits(True, False, "5"), plan_type="plus"
    )
    new = RateLimitSnapshot(limit_id="codex", primary=RateLimitWindow(10.0))
    merged = RL.merge_snapshot(previous, new)
    assert merged.credits == Credits(True, False, "5") and merged.plan_type == "plus"
    assert merged.limit_name is None and merged.primary == RateLimitWindow(10.0)
    newer = RateLimitSnapshot(limit_id="codex", credits=Credits(False, False, None), plan_type="pro")
    merged2 = RL.merge_snapshot(merged, newer)
    assert merged2.credits == Credits(False, False, None) and merged2.plan_type == "pro"
    assert RL.merge_snapshot(None, new) is new


def test_codex_rate_limits_event() -> None:
    raw = {
        "type": "codex.rate_limits",
        "plan_type": "plus",
        "metered_limit_name": "Codex-Other",
        "rate_limits": {
            "allowed": True,
            "limit_reached": False,
            "primary": {"used_percent": 42, "window_minutes": 60, "reset_at": 1700000000},
            "secondary": None,
        },
        "code_review_rate_limits": None,
        "credits": {"has_credits": True, "unlimited": False, "balance": "123"},
        "promo": None,
    }
    snap = RL.snapshot_from_codex_event(parse_event(json.dumps(raw)))
    assert snap is not None
    assert snap.limit_id == "codex_other" and snap.limit_name is None and snap.plan_type == "plus"
    assert snap.primary == RateLimitWindow(used_percent=42.0, window_minutes=60, resets_at=1700000000)
    assert snap.secondary is None and snap.credits == Credits(True, False, "123")
    raw.pop("metered_limit_name")
    assert RL.snapshot_from_codex_event(parse_event(json.dumps(raw))).limit_id == "codex"


def test_usage_payload_maps_primary_and_additional_rate_limits() -> None:
    payload = {
        "plan_type": "pro",
        "rate_limit": {
            "allowed": True,
            "limit_reached": False,
            "primary_window": {
                "used_percent": 42,
                "limit_window_seconds": 3600,
                "reset_after_seconds": 120,
                "reset_at": 1735689720,
            },
            "secondary_window": {
                "used_percent": 5,
                "limit_window_seconds": 86400,
                "reset_after_seconds": 43200,
                "reset_at": 1735693200,
            },
        },
        "credits": {"has_credits": True, "unlimited": False, "balance": "9.99"},
        "additional_rate_limits": [
            {
                "limit_name": "codex_other",
                "metered_feature": "codex_other",
                "rate_limit": {
                    "allowed": True,
                    "limit_reached": False,
                    "primary_window": {
                        "used_percent": 88,
                        "limit_window_seconds": 1800,
                        "reset_after_seconds": 600,
                        "reset_at": 1735693200,
                    },
                },
            }
        ],
    }
    codex, other = RL.snapshots_from_usage_payload(payload)
    assert codex.limit_id == "codex" and codex.limit_name is None and codex.plan_type == "pro"
    assert codex.primary == RateLimitWindow(used_percent=42.0, window_minutes=60, resets_at=1735689720)
    assert codex.secondary == RateLimitWindow(used_percent=5.0, window_minutes=1440, resets_at=1735693200)
    assert codex.credits == Credits(True, False, "9.99")
    assert other.limit_id == "codex_other" and other.limit_name == "codex_other" and other.credits is None
    assert other.primary == RateLimitWindow(used_percent=88.0, window_minutes=30, resets_at=1735693200)
    assert isinstance(codex.primary.used_percent, float)


def test_usage_payload_without_rate_limit_and_plan_mapping() -> None:
    [snap] = RL.snapshots_from_usage_payload({"plan_type": "education", "rate_limit": None})
    assert snap.primary is None and snap.secondary is None and snap.plan_type == "edu"
    [snap] = RL.snapshots_from_usage_payload(
        {"plan_type": "guest", "rate_limit": {"primary_window": {"used_percent": 1, "limit_window_seconds": 61}}}
    )
    assert snap.plan_type == "unknown" and snap.primary is not None and snap.primary.window_minutes == 2
    [snap] = RL.snapshots_from_usage_payload(
        {"rate_limit": {"primary_window": {"used_percent": 1, "limit_window_seconds": 0}}}
    )
    assert snap.primary is not None and snap.primary.window_minutes is None


# --- OpenAI platform headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360.0),
        ("120ms", 0.12),
        ("1h2m3.5s", 3723.5),
        ("12", 12.0),
        ("0.5s", 0.5),
        ("2m", 120.0),
        ("1s500ms", 1.5),
        ("", None),
        ("abc", None),
        ("1x", None),
        ("5s junk", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    got = RL.parse_duration(text)
    assert got == (pytest.approx(seconds) if seconds is not None else None)


def test_platform_headers() -> None:
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "7500",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    requests, tokens = RL.parse_platform_rate_limits(headers, now=1000.0)
    assert requests.limit_id == "requests" and requests.source == "platform"
    assert requests.primary == RateLimitWindow(
        used_percent=pytest.approx(0.2), resets_at=pytest.approx(1000.12), limit=500, remaining=499
    )
    assert tokens.primary == RateLimitWindow(used_percent=75.0, resets_at=1360.0, limit=30000, remaining=7500)


def test_platform_headers_placeholders_and_missing_are_skipped() -> None:
    assert (
        RL.parse_platform_rate_limits({"x-ratelimit-limit-requests": "-1", "x-ratelimit-remaining-requests": "-1"})
        == []
    )
    assert RL.parse_platform_rate_limits({"x-ratelimit-limit-tokens": "100"}) == []
    [snap] = RL.parse_platform_rate_limits(
        {"x-ratelimit-limit-tokens": "100", "x-ratelimit-remaining-tokens": "100", "x-ratelimit-reset-tokens": "later"},
        now=5.0,
    )
    assert snap.primary is not None and snap.primary.used_percent == 0.0 and snap.primary.resets_at is None


async def test_platform_headers_reach_agent_rate_limits(server: ScriptedServer, make_agent: Any) -> None:
    headers = {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "45",
        "x-ratelimit-reset-requests": "1h2m3.5s",
    }
    server.add_response(text_reply("ok", headers=headers))
    agent = make_agent()
    turn = await agent.ask("hi")
    [event] = of_type(turn.events, ev.RateLimits)
    assert event.snapshot is not None and event.snapshot.limit_id == "requests"
    snap = agent.rate_limits["requests"]
    assert snap.primary is not None and snap.primary.used_percent == 25.0 and snap.primary.remaining == 45
    assert snap.primary.resets_at == pytest.approx(snap.captured_at + 3723.5)


# --- over a real socket ------------------------------------------------------------------------


async def test_usage_limit_error_emits_rate_limit_event(server: ScriptedServer, make_agent: Any) -> None:
    headers = {
        "x-codex-primary-used-percent": "100.0",
        "x-codex-primary-window-minutes": "15",
        "x-codex-secondary-used-percent": "87.5",
        "x-codex-secondary-window-minutes": "60",
    }
    server.add_response(
        error_reply(
            429,
            "The usage limit has been reached",
            type="usage_limit_reached",
            plan_type="pro",
            resets_at=1704067242,
            headers=headers,
        )
    )
    agent = make_agent(max_retries=3)
    turn = await agent.ask("hi")
    assert turn.status == "failed" and len(server.requests) == 1
    kinds = [type(e) for e in turn.events if isinstance(e, (ev.RateLimits, ev.Error))]
    assert kinds == [ev.RateLimits, ev.Error]
    snap = of_type(turn.events, ev.RateLimits)[0].snapshot
    assert snap is not None and snap.limit_id == "codex"
    assert (snap.primary.used_percent, snap.primary.window_minutes) == (100.0, 15)
    assert (snap.secondary.used_percent, snap.secondary.window_minutes) == (87.5, 60)
    [error] = of_type(turn.events, ev.Error)
    assert "usage limit" in error.message and error.code == "usage_limit_reached"
    assert agent.rate_limits["codex"].primary.used_percent == 100.0
    assert agent.history[0]["role"] == "user"


async def test_rate_limits_merge_across_requests(server: ScriptedServer, make_agent: Any) -> None:
    first = {
        **CODEX,
        "x-codex-credits-has-credits": "true",
        "x-codex-credits-unlimited": "false",
        "x-codex-credits-balance": "42",
    }
    second = {
        "x-codex-primary-used-percent": "20",
        "x-codex-primary-window-minutes": "10",
        "x-codex-other-primary-used-percent": "5",
        "x-codex-other-limit-name": "Other",
    }
    server.add_response(text_reply("a", headers=first))
    server.add_response(text_reply("b", headers=second))
    agent = make_agent()
    await agent.ask("one")
    turn = await agent.ask("two")
    codex = agent.rate_limits["codex"]
    assert codex.primary is not None and codex.primary.used_percent == 20.0
    assert codex.secondary is None  # windows are not inherited
    assert codex.credits == Credits(True, False, "42")  # credits are
    assert agent.rate_limits["codex_other"].limit_name == "Other"
    assert {e.snapshot.limit_id for e in of_type(turn.events, ev.RateLimits)} == {"codex", "codex_other"}
