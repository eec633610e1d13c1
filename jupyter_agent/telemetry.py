"""Per-turn runtime metrics (spec §10): counts and durations per kind, plus the summary line.

Besides the summary counters, every measurement is aggregated per metric name and tag set
(``codex.websocket.request`` / ``.duration_ms`` with ``success``, ``codex.websocket.event`` /
``.duration_ms`` with ``kind`` and ``success``, ``codex.responses_api_*.duration_ms`` from
``responsesapi.websocket_timing``, ``codex.transport.fallback_to_http``), readable from Python
with ``count(name, **tags)`` and ``total(name, **tags)``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

#: ``timing_metrics`` field -> histogram name (spec §10).
TIMING_HISTOGRAMS = {
    "responses_duration_excl_engine_and_client_tool_time_ms": "codex.responses_api_overhead.duration_ms",
    "engine_service_total_ms": "codex.responses_api_inference_time.duration_ms",
    "engine_iapi_ttft_total_ms": "codex.responses_api_engine_iapi_ttft.duration_ms",
    "engine_service_ttft_total_ms": "codex.responses_api_engine_service_ttft.duration_ms",
    "engine_iapi_tbt_across_engine_calls_ms": "codex.responses_api_engine_iapi_tbt.duration_ms",
    "engine_service_tbt_across_engine_calls_ms": "codex.responses_api_engine_service_tbt.duration_ms",
}

TIMING_KEYS = (
    "responses_duration_excl_engine_and_client_tool_time_ms",
    "engine_service_total_ms",
    "engine_iapi_ttft_total_ms",
    "engine_service_ttft_total_ms",
    "engine_iapi_tbt_across_engine_calls_ms",
    "engine_service_tbt_across_engine_calls_ms",
)


@dataclass
class Counter:
    count: int = 0
    duration_ms: float = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.duration_ms += seconds * 1000.0


@dataclass(slots=True)
class Series:
    """Aggregate of one named metric with one tag set: a counter (values 1) or a histogram."""

    count: int = 0
    total: float = 0.0
    max: float = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value > self.max:
            self.max = value


TagKey = tuple[tuple[str, str], ...]


def _tag(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


@functools.lru_cache(maxsize=512)
def _event_tags(kind: str, success: bool) -> TagKey:
    return (("kind", kind), ("success", "true" if success else "false"))


@dataclass
class TurnMetrics:
    """What one turn cost; reset at turn start, summarised at turn end."""

    tool_calls: Counter = field(default_factory=Counter)
    api_calls: Counter = field(default_factory=Counter)
    streaming_events: Counter = field(default_factory=Counter)
    websocket_calls: Counter = field(default_factory=Counter)
    websocket_events: Counter = field(default_factory=Counter)
    timing: dict[str, float] = field(default_factory=dict)
    ttft_ms: float | None = None
    failures: int = 0
    #: Named, tagged counters/histograms (e.g. ``codex.websocket.request``), aggregated.
    series: dict[tuple[str, TagKey], Series] = field(default_factory=dict)

    def metric(self, name: str, value: float, **tags: Any) -> None:
        self._add(name, tuple(sorted((k, _tag(v)) for k, v in tags.items())), value)

    def _add(self, name: str, tags: TagKey, value: float) -> None:
        key = (name, tags)
        entry = self.series.get(key)
        if entry is None:
            entry = self.series[key] = Series()
        entry.add(value)

    def _matching(self, name: str, tags: dict[str, Any]) -> list[Series]:
        want = {(k, _tag(v)) for k, v in tags.items()}
        return [s for (n, t), s in self.series.items() if n == name and want <= set(t)]

    def count(self, name: str, **tags: Any) -> int:
        """How many samples of ``name`` were recorded with (at least) these tags."""
        return sum(s.count for s in self._matching(name, tags))

    def total(self, name: str, **tags: Any) -> float:
        """Sum of the samples of ``name`` with (at least) these tags (a histogram's total ms)."""
        return sum(s.total for s in self._matching(name, tags))

    @property
    def metrics(self) -> dict[str, Series]:
        """Every metric name with its samples aggregated over all tag sets."""
        out: dict[str, Series] = {}
        for (name, _tags), s in self.series.items():
            agg = out.setdefault(name, Series())
            agg.count += s.count
            agg.total += s.total
            agg.max = max(agg.max, s.max)
        return out

    def record_ws_request(self, seconds: float, success: bool, *, connection_reused: bool = False) -> None:
        """One request frame sent (spec §10 ``codex.websocket.request``)."""
        self.websocket_calls.add(seconds)
        self.metric("codex.websocket.request", 1, success=success, connection_reused=connection_reused)
        self.metric("codex.websocket.request.duration_ms", seconds * 1000.0, success=success)
        if not success:
            self.failures += 1

    def record_ws_event(self, seconds: float, kind: str, success: bool) -> None:
        """One receive poll: the wait for one frame (``codex.websocket.event``)."""
        self.websocket_events.add(seconds)
        tags = _event_tags(kind, success)
        self._add("codex.websocket.event", tags, 1)
        self._add("codex.websocket.event.duration_ms", tags, seconds * 1000.0)

    def record_http_fallback(self) -> None:
        self.metric("codex.transport.fallback_to_http", 1, from_wire_api="responses_websocket")

    def merge(self, other: TurnMetrics) -> None:
        """Add ``other``'s counts (e.g. a prewarm's) to this turn's."""
        for name in ("tool_calls", "api_calls", "streaming_events", "websocket_calls", "websocket_events"):
            mine, theirs = getattr(self, name), getattr(other, name)
            mine.count += theirs.count
            mine.duration_ms += theirs.duration_ms
        for key, theirs_s in other.series.items():
            entry = self.series.setdefault(key, Series())
            entry.count += theirs_s.count
            entry.total += theirs_s.total
            entry.max = max(entry.max, theirs_s.max)
        self.timing.update(other.timing)
        self.failures += other.failures

    def record_api_call(self, seconds: float, success: bool) -> None:
        self.api_calls.add(seconds)
        self.metric("codex.api_request", 1, success=success)
        self.metric("codex.api_request.duration_ms", seconds * 1000.0, success=success)
        if not success:
            self.failures += 1

    def record_sse_event(self, seconds: float) -> None:
        self.streaming_events.add(seconds)
        self.metric("codex.sse_event", 1)
        self.metric("codex.sse_event.duration_ms", seconds * 1000.0)

    def record_tool_call(self, seconds: float) -> None:
        self.tool_calls.add(seconds)
        self.metric("codex.tool.call.duration_ms", seconds * 1000.0)

    def record_timing(self, metrics: dict[str, Any]) -> None:
        for key in TIMING_KEYS:
            value = metrics.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.metric(TIMING_HISTOGRAMS[key], float(value))
                if value:
                    self.timing[key] = float(value)

    def summary(self) -> dict[str, Any]:
        def c(x: Counter) -> dict[str, float]:
            return {"count": x.count, "duration_ms": round(x.duration_ms, 1)}

        out: dict[str, Any] = {
            "tool_calls": c(self.tool_calls),
            "api_calls": c(self.api_calls),
            "streaming_events": c(self.streaming_events),
            "websocket_calls": c(self.websocket_calls),
            "websocket_events": c(self.websocket_events),
        }
        out.update({k: v for k, v in self.timing.items()})
        if self.ttft_ms is not None:
            out["ttft_ms"] = round(self.ttft_ms, 1)
        return out

    def line(self) -> str:
        parts = []
        if self.tool_calls.count:
            parts.append(f"Local tools: {_n(self.tool_calls.count, 'call')} ({_d(self.tool_calls.duration_ms)})")
        if self.api_calls.count:
            parts.append(f"Inference: {_n(self.api_calls.count, 'call')} ({_d(self.api_calls.duration_ms)})")
        if self.websocket_calls.count:
            parts.append(
                f"WebSocket: {self.websocket_calls.count} events send ({_d(self.websocket_calls.duration_ms)})"
            )
        if self.streaming_events.count:
            parts.append(f"Streams: {self.streaming_events.count} events ({_d(self.streaming_events.duration_ms)})")
        if self.websocket_events.count:
            parts.append(f"{self.websocket_events.count} events received ({_d(self.websocket_events.duration_ms)})")
        t = self.timing
        if "responses_duration_excl_engine_and_client_tool_time_ms" in t:
            parts.append(f"Responses API overhead: {_d(t['responses_duration_excl_engine_and_client_tool_time_ms'])}")
        if "engine_service_total_ms" in t:
            parts.append(f"Responses API inference: {_d(t['engine_service_total_ms'])}")
        if "engine_iapi_ttft_total_ms" in t or "engine_service_ttft_total_ms" in t:
            parts.append(
                f"TTFT: {_d(t.get('engine_iapi_ttft_total_ms', 0))} (iapi) {_d(t.get('engine_service_ttft_total_ms', 0))} (service)"
            )
        elif self.ttft_ms is not None:
            parts.append(f"TTFT: {_d(self.ttft_ms)}")
        if "engine_iapi_tbt_across_engine_calls_ms" in t or "engine_service_tbt_across_engine_calls_ms" in t:
            parts.append(
                f"TBT: {_d(t.get('engine_iapi_tbt_across_engine_calls_ms', 0))} (iapi) {_d(t.get('engine_service_tbt_across_engine_calls_ms', 0))} (service)"
            )
        return " • ".join(parts)


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _d(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:.1f}s"
    return f"{ms:.0f}ms"
