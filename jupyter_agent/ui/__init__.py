"""Cell renderers and widgets: the live turn view, rate-limit gauges, text fallbacks."""

from .gauges import GaugeRow, RateLimitGauges, gauge_rows, gauges_html, gauges_markdown, gauges_text, pinned_gauges
from .text import TextOutput
from .transcript import TurnViewState
from .turn_view import TurnView, ViewStats

__all__ = [
    "GaugeRow",
    "RateLimitGauges",
    "TextOutput",
    "TurnViewState",
    "TurnView",
    "ViewStats",
    "gauge_rows",
    "gauges_html",
    "gauges_markdown",
    "gauges_text",
    "pinned_gauges",
]
