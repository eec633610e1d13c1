"""Rate-limit gauge rows (spec §5.6 labels), renderings and the pinnable widget."""

from __future__ import annotations

import time

import pytest

from jupyter_agent import events as ev
from jupyter_agent.ui.gauges import (
    EMPTY_TEXT,
    STALE_TEXT,
    RateLimitGauges,
    bar,
    credits_text,
    gauge_rows,
    gauges_html,
    gauges_text,
    level_for,
    window_label,
)

NOW = 1_700_000_000.0
W = ev.RateLimitWindow


def snap(lid: str, primary: W | None = None, secondary: W | None = None, **kw) -> ev.RateLimitSnapshot:
    kw.setdefault("captured_at", NOW)
    return ev.RateLimitSnapshot(lid, primary=primary, secondary=secondary, **kw)


def labels(rows) -> list[str]:
    return [r.label for r in rows]


@pytest.mark.parametrize(
    ("minutes", "default", "expected"),
    [
        (None, "5h", "5h"),
        (300, "x", "5h"),
        (60, "x", "1h"),
        (1, "x", "1h"),
        (24 * 60 + 3, "x", "24h"),
        (24 * 60 + 4, "x", "weekly"),
        (10080, "x", "weekly"),
        (30 * 1440, "x", "monthly"),
        (400 * 1440, "x", "annual"),
    ],
)
def test_window_label(minutes, default, expected):
    assert window_label(minutes, default) == expected


def test_codex_rows_and_credits():
    s = snap("codex", W(12.5, 300, NOW + 600), W(40.0, 10080, NOW + 86400), credits=ev.Credits(True, False, "123"))
    rows = gauge_rows({"codex": s}, NOW)
    assert labels(rows) == ["5h limit", "Weekly limit", "Credits"]
    assert rows[0].remaining_percent == 87.5
    assert rows[2].detail == "123 credits"


def test_non_codex_single_limit_renders_combined_row():
    snaps = {
        "codex": snap("codex", W(10, 300), credits=ev.Credits(True, True)),
        "codex_other": snap(
            "codex_other", W(20, 300), limit_name="codex-other", credits=ev.Credits(True, False, "9.6")
        ),
    }
    rows = gauge_rows(snaps, NOW)
    assert labels(rows) == ["5h limit", "Credits", "codex-other 5h limit", "Credits"]
    assert rows[1].detail == "Unlimited" and rows[3].detail == "10 credits"


def test_non_codex_multi_limit_keeps_group_row():
    rows = gauge_rows({"codex_other": snap("codex_other", W(1, 60), W(2, 10080), limit_name="codex-other")}, NOW)
    assert labels(rows) == ["codex-other limit", "1h limit", "Weekly limit"]
    assert rows[0].kind == "heading"


def test_label_falls_back_to_id_and_order_is_codex_first():
    snaps = {"zeta": snap("zeta", W(5, 60)), "alpha": snap("alpha", W(5, 60)), "codex": snap("codex", W(5, 300))}
    assert labels(gauge_rows(snaps, NOW)) == ["5h limit", "alpha 1h limit", "zeta 1h limit"]


def test_platform_buckets_show_remaining_of_limit():
    snaps = {
        "requests": snap("requests", W(20.0, None, NOW + 30, limit=5000, remaining=4000), source="platform"),
        "tokens": snap("tokens", W(95.0, None, NOW + 30, limit=100000, remaining=5000), source="platform"),
    }
    rows = gauge_rows(snaps, NOW)
    assert labels(rows) == ["Requests limit", "Tokens limit"]
    assert rows[0].detail == "4,000/5,000 left"
    assert rows[1].level == "critical"
    text = gauges_text(snaps, NOW)
    assert "4,000/5,000 left" in text and "80% left" in text and "(resets " in text


def test_credits_text_rules():
    assert credits_text(None) is None
    assert credits_text(ev.Credits(False, True)) is None
    assert credits_text(ev.Credits(True, True)) == "Unlimited"
    assert credits_text(ev.Credits(True, False, " 12 ")) == "12 credits"
    assert credits_text(ev.Credits(True, False, "2.5")) == "3 credits"  # half away from zero
    assert credits_text(ev.Credits(True, False, "0")) is None
    assert credits_text(ev.Credits(True, False, "-3")) is None
    assert credits_text(ev.Credits(True, False, "abc")) is None
    assert credits_text(ev.Credits(True, False, "")) is None


def test_levels_and_bar():
    assert (
        level_for(69.9) == "ok"
        and level_for(70) == "warn"
        and level_for(89.9) == "warn"
        and level_for(90) == "critical"
    )
    assert bar(100) == "█" * 20 and bar(0) == "░" * 20 and bar(50) == "█" * 10 + "░" * 10
    assert len(bar(33)) == 20


def test_empty_and_stale():
    assert labels(gauge_rows({}, NOW)) == [EMPTY_TEXT]
    assert labels(gauge_rows({"codex": snap("codex")}, NOW)) == [EMPTY_TEXT]  # all-null snapshot: no rows
    fresh = {"codex": snap("codex", W(1, 300), captured_at=NOW - 14 * 60)}
    assert STALE_TEXT not in labels(gauge_rows(fresh, NOW))
    old = {"codex": snap("codex", W(1, 300), captured_at=NOW - 16 * 60)}
    assert labels(gauge_rows(old, NOW))[-1] == STALE_TEXT
    assert STALE_TEXT in gauges_text(old, NOW)


def test_text_rendering_has_20_segment_bars_and_percent_left():
    text = gauges_text({"codex": snap("codex", W(75, 300, NOW + 3600))}, NOW)
    line = text.splitlines()[1]
    assert line.strip().startswith("5h limit:")
    assert "[" + "█" * 5 + "░" * 15 + "]" in line
    assert "25% left" in line and "[low]" in line and "(resets " in line


def test_html_colors_amber_and_red():
    out = gauges_html({"codex": snap("codex", W(75, 300), W(95, 10080)), "other": snap("other", W(10, 60))}, NOW)
    assert 'data-level="warn"' in out and "#f59e0b" in out
    assert 'data-level="critical"' in out and "#d32f2f" in out
    assert 'data-level="ok"' in out


def test_widget_updates_and_merges_credits(monkeypatch):
    g = RateLimitGauges(min_interval=0.0)
    w = g.widget
    assert EMPTY_TEXT in w.value
    g.update({"codex": snap("codex", W(50, 300), credits=ev.Credits(True, False, "7"), captured_at=time.time())})
    assert "5h limit" in w.value and "7 credits" in w.value
    g.update({"codex": snap("codex", W(80, 300), captured_at=time.time())})  # credits inherited
    assert "7 credits" in w.value and "20% left" in w.value
    g.handle(
        ev.RateLimits(
            snapshot=snap("tokens", W(10, None, limit=10, remaining=9), source="platform", captured_at=time.time())
        )
    )
    assert "Tokens limit" in w.value
    bundle = g._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"].startswith("Rate limits:")
    g.close()


def test_widget_throttles_background_updates():
    g = RateLimitGauges(min_interval=0.2)
    w = g.widget
    for i in range(50):
        g.update({"codex": snap("codex", W(float(i), 300), captured_at=time.time())})
    assert g.updates_sent <= 2
    deadline = time.time() + 2
    while "51% left" not in w.value and time.time() < deadline:  # the last value lands via the timer
        time.sleep(0.02)
    assert "51% left" in w.value
    g.close()


class FakeAgent:
    def __init__(self):
        self.callbacks = []
        self.rate_limits = {"codex": snap("codex", W(30, 300), captured_at=time.time())}

    def subscribe(self, cb):
        self.callbacks.append(cb)
        return lambda: self.callbacks.remove(cb)


def test_pinned_gauges_follow_agent_events():
    from jupyter_agent.ui import pinned_gauges

    agent = FakeAgent()
    g = pinned_gauges(agent)
    g._min_interval = 0.0
    w = g.widget
    assert "70% left" in w.value
    agent.callbacks[0](ev.RateLimits(snapshot=snap("codex", W(60, 300), captured_at=time.time())))
    agent.callbacks[0](ev.TextDelta(delta="ignored"))
    assert "40% left" in w.value
    g.close()
    assert agent.callbacks == []


def test_pinned_widget_marks_stale_data_by_itself(monkeypatch):
    """No new turn: the displayed widget re-renders when its data passes the 15-minute mark."""
    import jupyter_agent.ui.gauges as G

    monkeypatch.setattr(G, "STALE_AFTER_S", 0.3)  # the widget's refresh timer
    monkeypatch.setattr("jupyter_agent.ui.gauge_render.STALE_AFTER_S", 0.3)  # the row renderer
    g = RateLimitGauges({"codex": snap("codex", W(40, 300), captured_at=time.time())}, min_interval=0.0)
    w = g.widget
    assert "60% left" in w.value and STALE_TEXT not in w.value
    deadline = time.time() + 3
    while STALE_TEXT not in w.value and time.time() < deadline:
        time.sleep(0.02)
    assert STALE_TEXT in w.value and "60% left" in w.value
    assert g._stale_timer is None  # everything is stale now: no further refresh armed
    g.update({"codex": snap("codex", W(45, 300), captured_at=time.time())})  # fresh data clears the marker
    assert STALE_TEXT not in w.value and g._stale_timer is not None
    g.close()
    assert g._stale_timer is None
