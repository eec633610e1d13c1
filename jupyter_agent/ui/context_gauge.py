"""The context gauge (issue 14): last request's input tokens against the model's window.

Same colours and thresholds as the rate-limit gauges (``gauges.py``: amber from 70 % used, red
from 90 %); an unknown window is shown as unknown, with the tokens used.
"""

from __future__ import annotations

import html

from ..events import Compacted, ContextGauge, Usage
from .gauges import COLORS, bar, level_for


def context_line(e: ContextGauge) -> str:
    """``Context: ███░░ 12% used (15,360 / 128,000 tokens; source)``, or the unknown form."""
    if e.window is None:
        return f"Context: {e.input_tokens:,} tokens used; window unknown ({e.source})"
    used = e.used_percent or 0.0
    # The bar fills as the context fills (as in the panel), unlike the rate-limit bars that show what is left.
    return f"Context: {bar(used)} {used:.0f}% used ({e.input_tokens:,} / {e.window:,} tokens; {e.source})"


def totals_line(u: Usage) -> str:
    """Session token totals (``%agent usage``, ``%agent status``)."""
    return (
        f"Session tokens: input {u.input_tokens:,} (cached {u.cached_input_tokens:,}), "
        f"output {u.output_tokens:,} (reasoning {u.reasoning_output_tokens:,})"
    )


def context_html(e: ContextGauge) -> str:
    """The gauge as an HTML row, coloured like the rate-limit gauges."""
    used = e.used_percent
    level = level_for(used)
    if used is None:
        figures = f"{e.input_tokens:,} tokens; window unknown"
        gauge = ""
    else:
        figures = f"{used:.0f}% used ({e.input_tokens:,} / {e.window:,} tokens)"
        fill = min(100.0, max(0.0, used))
        gauge = (
            f'<div title="{used:.0f}% used" style="width:120px;height:9px;background:#8884;border-radius:3px;'
            f'overflow:hidden;display:inline-block;vertical-align:middle">'
            f'<div style="width:{fill:.1f}%;height:100%;background:{COLORS[level]}"></div></div>'
        )
    return (
        f'<div class="jpa-context jpa-gauge-{level}" data-level="{level}" title="{html.escape(e.source)}" '
        f'style="font-size:12px">Context {gauge} {html.escape(figures)}</div>'
    )


_REASONS = {
    "requested": "on request",
    "threshold": "the context was nearly full",
    "context_length_exceeded": "the model's context window was exceeded; the turn was retried",
}


def compacted_text(e: Compacted) -> str:
    """The compaction marker shown in the cell, the panel's notices and ``%agent compact``."""
    why = _REASONS.get(e.reason, e.reason)
    return (
        f"Conversation compacted ({why}): {e.items_before} history items became {e.items_after} "
        f"({'OpenAI /responses/compact' if e.method == 'responses/compact' else 'a summary written by the model'})."
    )
