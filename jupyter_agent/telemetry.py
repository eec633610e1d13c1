"""Per-turn runtime metrics (spec §10): counts and durations per kind, plus the summary line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    #: Named counters/histograms (e.g. ``codex.websocket.request``), for inspection from Python.
    metrics: dict[str, list[float]] = field(default_factory=dict)

    def metric(self, name: str, value: float) -> None:
        self.metrics.setdefault(name, []).append(value)

    def record_api_call(self, seconds: float, success: bool) -> None:
        self.api_calls.add(seconds)
        self.metric("codex.api_request.duration_ms", seconds * 1000.0)
        if not success:
            self.failures += 1

    def record_sse_event(self, seconds: float) -> None:
        self.streaming_events.add(seconds)

    def record_tool_call(self, seconds: float) -> None:
        self.tool_calls.add(seconds)
        self.metric("codex.tool.call.duration_ms", seconds * 1000.0)

    def record_timing(self, metrics: dict[str, Any]) -> None:
        for key in TIMING_KEYS:
            value = metrics.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value:
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
            parts.append(f"WebSocket: {self.websocket_calls.count} events send ({_d(self.websocket_calls.duration_ms)})")
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
