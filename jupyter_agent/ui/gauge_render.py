"""Rate-limit gauge rows and their text, markdown and HTML renderings (no widget, no threads)."""

from __future__ import annotations

import html
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from ..events import Credits, RateLimitSnapshot, RateLimitWindow

BAR_SEGMENTS = 20
STALE_AFTER_S = 15 * 60
STALE_TEXT = "limits may be stale - start new turn to refresh."
EMPTY_TEXT = "data not available yet"
WARN_USED = 70.0
CRITICAL_USED = 90.0
COLORS = {"ok": "#2e7d32", "warn": "#f59e0b", "critical": "#d32f2f"}

Level = Literal["ok", "warn", "critical"]


@dataclass(frozen=True, slots=True)
class GaugeRow:
    """One display row. ``kind`` is ``window`` (a bar), ``heading``, ``credits`` or ``note``."""

    label: str
    kind: Literal["window", "heading", "credits", "note"] = "window"
    used_percent: float | None = None
    resets_at: float | None = None
    #: Extra figures, e.g. ``4,000/5,000 left`` for platform buckets or ``123 credits``.
    detail: str = ""
    limit_id: str = ""

    @property
    def remaining_percent(self) -> float | None:
        if self.used_percent is None:
            return None
        return min(100.0, max(0.0, 100.0 - self.used_percent))

    @property
    def level(self) -> Level:
        return level_for(self.used_percent)


def level_for(used_percent: float | None) -> Level:
    """``critical`` from 90 % used, ``warn`` from 70 %, else ``ok``."""
    if used_percent is None:
        return "ok"
    if used_percent >= CRITICAL_USED:
        return "critical"
    if used_percent >= WARN_USED:
        return "warn"
    return "ok"


def window_label(minutes: int | None, default: str) -> str:
    """Spec §5.6: ``<N>h`` up to 24h (+3 min slack), then weekly / monthly / annual."""
    if minutes is None or minutes <= 0:
        return default
    if minutes <= 24 * 60 + 3:
        return f"{max(1, (minutes + 3) // 60)}h"
    if minutes <= 7 * 24 * 60 + 3:
        return "weekly"
    if minutes <= 30 * 24 * 60 + 3:
        return "monthly"
    return "annual"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def credits_text(credits: Credits | None) -> str | None:
    """``Unlimited``, ``<n> credits`` or None (no row) per spec §5.6."""
    if credits is None or not credits.has_credits:
        return None
    if credits.unlimited:
        return "Unlimited"
    raw = (credits.balance or "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        try:
            f = float(raw)
        except ValueError:
            return None
        if not math.isfinite(f):
            return None
        value = math.floor(abs(f) + 0.5) * (1 if f >= 0 else -1)  # half away from zero, as the TUI
    if value <= 0:
        return None
    return f"{value} credits"


def ordered(snapshots: Mapping[str, RateLimitSnapshot]) -> list[RateLimitSnapshot]:
    """``codex`` first, then codex-style ids sorted, then platform/realtime buckets sorted."""

    def key(s: RateLimitSnapshot) -> tuple[int, str]:
        if s.limit_id == "codex":
            return (0, "")
        return (1 if s.source == "codex" else 2, s.limit_id)

    return sorted(snapshots.values(), key=key)


def _windows(s: RateLimitSnapshot) -> list[tuple[RateLimitWindow, str]]:
    out = []
    if s.primary is not None:
        out.append((s.primary, window_label(s.primary.window_minutes, "5h")))
    if s.secondary is not None:
        out.append((s.secondary, window_label(s.secondary.window_minutes, "weekly")))
    return out


def _absolute_detail(w: RateLimitWindow) -> str:
    if w.limit is None or w.remaining is None:
        return ""
    return f"{w.remaining:,}/{w.limit:,} left"


def gauge_rows(snapshots: Mapping[str, RateLimitSnapshot], now: float | None = None) -> list[GaugeRow]:
    """Display rows for all buckets (see module doc). Notes for stale / missing data come last."""
    now = time.time() if now is None else now
    rows: list[GaugeRow] = []
    stale = False
    for snap in ordered(snapshots):
        windows = _windows(snap)
        credit = credits_text(snap.credits)
        if not windows and credit is None:
            continue
        if now - snap.captured_at > STALE_AFTER_S:
            stale = True
        lid = snap.limit_id
        if snap.source != "codex" or any(w.limit is not None for w, _ in windows):
            # Platform x-ratelimit-* buckets (requests / tokens) and realtime buckets.
            for w, _name in windows:
                rows.append(
                    GaugeRow(
                        f"{_cap(snap.label)} limit",
                        used_percent=w.used_percent,
                        resets_at=w.resets_at,
                        detail=_absolute_detail(w),
                        limit_id=lid,
                    )
                )
        elif lid == "codex":
            for w, name in windows:
                rows.append(
                    GaugeRow(f"{_cap(name)} limit", used_percent=w.used_percent, resets_at=w.resets_at, limit_id=lid)
                )
        elif len(windows) == 1:
            w, name = windows[0]
            rows.append(
                GaugeRow(f"{snap.label} {name} limit", used_percent=w.used_percent, resets_at=w.resets_at, limit_id=lid)
            )
        elif windows:
            rows.append(GaugeRow(f"{snap.label} limit", kind="heading", limit_id=lid))
            for w, name in windows:
                rows.append(
                    GaugeRow(f"{_cap(name)} limit", used_percent=w.used_percent, resets_at=w.resets_at, limit_id=lid)
                )
        if credit is not None:
            rows.append(GaugeRow("Credits", kind="credits", detail=credit, limit_id=lid))
    if not rows:
        return [GaugeRow(EMPTY_TEXT, kind="note")]
    if stale:
        rows.append(GaugeRow(STALE_TEXT, kind="note"))
    return rows


def exhausted_text(snapshots: Mapping[str, RateLimitSnapshot], now: float | None = None) -> str:
    """``Limit reached: 5h limit (resets 14:05)`` for every window at 100 % used, or ``""``."""
    rows = [r for r in gauge_rows(snapshots, now) if r.kind == "window" and (r.used_percent or 0.0) >= 100.0]
    if not rows:
        return ""
    parts = [r.label + (f" (resets {format_reset(r.resets_at, now)})" if r.resets_at is not None else "") for r in rows]
    return "Limit reached: " + "; ".join(parts) + "."


# --- renderings -------------------------------------------------------------------------


def bar(percent: float) -> str:
    """20-segment bar filled to ``percent`` (rate limits pass what is left, the context gauge what is used)."""
    filled = round(min(100.0, max(0.0, percent)) / 100.0 * BAR_SEGMENTS)
    return "█" * filled + "░" * (BAR_SEGMENTS - filled)


def format_reset(ts: float, now: float | None = None) -> str:
    """``14:05`` for a reset today (local time), else ``14:05 on 3 Dec``."""
    now = time.time() if now is None else now
    t = time.localtime(ts)
    hm = time.strftime("%H:%M", t)
    if time.strftime("%Y-%m-%d", t) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return hm
    return f"{hm} on {t.tm_mday} {time.strftime('%b', t)}"


def _row_figures(row: GaugeRow, now: float | None) -> str:
    parts = []
    if row.remaining_percent is not None:
        parts.append(f"{row.remaining_percent:.0f}% left")
    if row.detail:
        parts.append(row.detail)
    text = ", ".join(parts)
    if row.resets_at is not None:
        text += f" (resets {format_reset(row.resets_at, now)})"
    return text


_LEVEL_WORD = {"ok": "", "warn": "  [low]", "critical": "  [very low]"}


def rows_text(rows: Iterable[GaugeRow], now: float | None = None) -> str:
    rows = list(rows)
    width = max((len(r.label) for r in rows if r.kind in ("window", "credits")), default=0)
    lines = []
    for r in rows:
        if r.kind == "note":
            lines.append(r.label)
        elif r.kind == "heading":
            lines.append(f"{r.label}:")
        elif r.kind == "credits":
            lines.append(f"{(r.label + ':').ljust(width + 1)} {r.detail}")
        else:
            b = bar(r.remaining_percent) if r.remaining_percent is not None else " " * BAR_SEGMENTS
            lines.append(f"{(r.label + ':').ljust(width + 1)} [{b}] {_row_figures(r, now)}{_LEVEL_WORD[r.level]}")
    return "\n".join(lines)


def gauges_text(
    snapshots: Mapping[str, RateLimitSnapshot], now: float | None = None, *, title: str = "Rate limits"
) -> str:
    """Plain-text gauges (terminal IPython, ``%agent status``)."""
    body = rows_text(gauge_rows(snapshots, now), now)
    return f"{title}:\n" + "\n".join("  " + line for line in body.splitlines())


def gauges_markdown(
    snapshots: Mapping[str, RateLimitSnapshot], now: float | None = None, *, title: str = "Rate limits"
) -> str:
    """Markdown gauges: the text rows in a code block so the bars stay aligned."""
    body = rows_text(gauge_rows(snapshots, now), now)
    return f"**{title}**\n\n```text\n{body}\n```"


def gauges_html(
    snapshots: Mapping[str, RateLimitSnapshot], now: float | None = None, *, title: str = "Rate limits"
) -> str:
    """HTML gauges with colored bars (amber from 70 % used, red from 90 %)."""
    rows = gauge_rows(snapshots, now)
    out = [
        f'<div class="jpa-gauges"><div style="font-weight:600;margin-bottom:2px">{html.escape(title)}</div>',
        '<table style="border-collapse:collapse;font-size:12px">',
    ]
    for r in rows:
        label = html.escape(r.label)
        if r.kind == "note":
            out.append(f'<tr><td colspan="3" style="font-style:italic;opacity:0.8">{label}</td></tr>')
        elif r.kind == "heading":
            out.append(f'<tr><td colspan="3" style="font-weight:600;padding-top:2px">{label}</td></tr>')
        elif r.kind == "credits":
            out.append(f'<tr><td style="padding-right:8px">{label}</td><td></td><td>{html.escape(r.detail)}</td></tr>')
        else:
            rem = r.remaining_percent or 0.0
            color = COLORS[r.level]
            gauge = (
                (
                    f'<div title="{r.used_percent:.0f}% used" style="width:120px;height:9px;background:#8884;border-radius:3px;overflow:hidden">'
                    f'<div style="width:{rem:.1f}%;height:100%;background:{color}"></div></div>'
                )
                if r.used_percent is not None
                else ""
            )
            out.append(
                f'<tr class="jpa-gauge jpa-gauge-{r.level}" data-level="{r.level}"><td style="padding-right:8px">{label}</td>'
                f'<td style="padding-right:8px">{gauge}</td><td>{html.escape(_row_figures(r, now))}</td></tr>'
            )
    out.append("</table></div>")
    return "".join(out)


# --- the live widget --------------------------------------------------------------------
