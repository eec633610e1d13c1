"""Rate-limit gauges: pure row builders (spec §5.6), text/markdown/HTML renderings, a live widget.

``gauge_rows(snapshots, now)`` turns the per-bucket snapshots into display rows with the TUI's
labels (``5h limit``, ``Weekly limit``, ``Credits``, combined ``<label> <window> limit`` rows,
a ``<label> limit`` heading for multi-window buckets, platform ``requests``/``tokens`` rows).
Everything else here only renders those rows.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..events import Credits, RateLimits, RateLimitSnapshot
from .gauge_render import (
    _LEVEL_WORD,
    BAR_SEGMENTS,
    COLORS,
    CRITICAL_USED,
    EMPTY_TEXT,
    STALE_AFTER_S,
    STALE_TEXT,
    WARN_USED,
    GaugeRow,
    Level,
    _absolute_detail,
    _cap,
    _row_figures,
    _windows,
    bar,
    credits_text,
    exhausted_text,
    format_reset,
    gauge_rows,
    gauges_html,
    gauges_markdown,
    gauges_text,
    level_for,
    ordered,
    rows_text,
    window_label,
)


def _html_widget() -> Any:
    import ipywidgets as widgets

    return widgets.HTML(layout=widgets.Layout(margin="2px 0"))


class RateLimitGauges:
    """A gauge widget that keeps updating; display it once and pin it.

    ``update`` may be called from any thread. The front end gets at most one update per
    ``min_interval`` seconds from updates (the last one always lands: a timer flushes it).
    A displayed widget also re-renders by itself when its data turns stale (15 minutes after
    capture), so a pinned widget shows the stale marker without a new turn.
    Its ``text/plain`` is the text rendering at display time.
    """

    def __init__(
        self,
        snapshots: Mapping[str, RateLimitSnapshot] | None = None,
        *,
        title: str = "Rate limits",
        min_interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.title = title
        self._snapshots: dict[str, RateLimitSnapshot] = dict(snapshots or {})
        self._lock = threading.Lock()
        self._min_interval = min_interval
        self._clock = clock
        self._last_push = -math.inf
        self._timer: threading.Timer | None = None
        self._stale_timer: threading.Timer | None = None
        self._widget: Any = None
        self.updates_sent = 0
        self._unsubscribe: Callable[[], None] | None = None

    # state --------------------------------------------------------------------------
    @property
    def snapshots(self) -> dict[str, RateLimitSnapshot]:
        with self._lock:
            return dict(self._snapshots)

    def update(self, snapshots: Mapping[str, RateLimitSnapshot]) -> None:
        """Merge ``{limit_id: snapshot}`` (missing credits inherited, as in spec §5.6) and refresh."""
        with self._lock:
            for lid, snap in snapshots.items():
                prev = self._snapshots.get(lid)
                if snap.credits is None and prev is not None and prev.credits is not None:
                    snap = _with_credits(snap, prev.credits)
                self._snapshots[lid] = snap
        self._schedule()

    def handle(self, event: Any) -> None:
        """Feed agent events; ``RateLimits`` events update the gauges, others are ignored."""
        if isinstance(event, RateLimits) and event.snapshot is not None:
            self.update({event.snapshot.limit_id: event.snapshot})

    def text(self, now: float | None = None) -> str:
        return gauges_text(self.snapshots, now, title=self.title)

    def markdown(self, now: float | None = None) -> str:
        return gauges_markdown(self.snapshots, now, title=self.title)

    def html(self, now: float | None = None) -> str:
        return gauges_html(self.snapshots, now, title=self.title)

    # front end ----------------------------------------------------------------------
    @property
    def widget(self) -> Any:
        if self._widget is None:
            self._widget = _html_widget()
            self._widget.add_class("jupyter-agent-gauges")
            self._widget.value = self.html()
            self._arm_stale_timer()
        return self._widget

    def _schedule(self) -> None:
        if self._widget is None:
            return
        with self._lock:
            now = self._clock()
            wait = self._last_push + self._min_interval - now
            if wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._push)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self._push()

    def _push(self) -> None:
        with self._lock:
            self._timer = None
            self._last_push = self._clock()
        value = self.html()
        if self._widget is not None and self._widget.value != value:
            self._widget.value = value
            self.updates_sent += 1
        self._arm_stale_timer()

    def _arm_stale_timer(self) -> None:
        """Re-render when the next snapshot that is still fresh turns stale."""
        with self._lock:
            if self._stale_timer is not None:
                self._stale_timer.cancel()
                self._stale_timer = None
            if self._widget is None:
                return
            now = time.time()
            pending = [
                s.captured_at + STALE_AFTER_S - now
                for s in self._snapshots.values()
                if s.captured_at + STALE_AFTER_S > now
            ]
            if not pending:
                return
            self._stale_timer = threading.Timer(min(pending) + 0.05, self._push)
            self._stale_timer.daemon = True
            self._stale_timer.start()

    def refresh(self) -> None:
        """Re-render now (e.g. to show the stale marker after a quiet period)."""
        if self._widget is not None:
            self._push()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_() or {})
        bundle["text/plain"] = self.text()
        return bundle

    def __repr__(self) -> str:
        return self.text()

    def subscribe(self, agent: Any) -> None:
        """Follow ``agent``'s events (called on the agent thread) until ``close()``."""
        self.update(getattr(agent, "rate_limits", {}) or {})
        self._unsubscribe = agent.subscribe(self.handle)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._lock:
            for timer in (self._timer, self._stale_timer):
                if timer is not None:
                    timer.cancel()
            self._timer = self._stale_timer = None
            widget, self._widget = self._widget, None
        if widget is not None:
            widget.close()


def _with_credits(snap: RateLimitSnapshot, credits: Credits) -> RateLimitSnapshot:
    import dataclasses

    return dataclasses.replace(snap, credits=credits)


def pinned_gauges(agent: Any) -> RateLimitGauges:
    """``%agent limits``: a gauge widget following ``agent``; it keeps updating as later cells run turns."""
    gauges = RateLimitGauges()
    gauges.subscribe(agent)
    return gauges


__all__ = [
    "BAR_SEGMENTS",
    "COLORS",
    "CRITICAL_USED",
    "EMPTY_TEXT",
    "GaugeRow",
    "Level",
    "STALE_AFTER_S",
    "STALE_TEXT",
    "WARN_USED",
    "_LEVEL_WORD",
    "_absolute_detail",
    "_cap",
    "_row_figures",
    "_windows",
    "bar",
    "credits_text",
    "exhausted_text",
    "format_reset",
    "gauge_rows",
    "gauges_html",
    "gauges_markdown",
    "gauges_text",
    "level_for",
    "ordered",
    "rows_text",
    "window_label",
    "RateLimitGauges",
    "pinned_gauges",
]
