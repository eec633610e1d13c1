"""Pieces of the turn view that hold no widget: traffic stats, CSS, streaming-text segments."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .transcript import TextBlock, block_markdown


@dataclass
class ViewStats:
    """Front-end traffic of one view: trait updates / displays and their JSON bytes."""

    updates_sent: int = 0
    bytes_sent: int = 0
    frames: int = 0
    displays: int = 0

    def count(self, payload: Any) -> None:
        self.updates_sent += 1
        self.bytes_sent += len(json.dumps(payload, default=str, ensure_ascii=False).encode())


def _md_output(markdown: str) -> tuple[dict[str, Any], ...]:
    return ({"output_type": "display_data", "data": {"text/markdown": markdown}, "metadata": {}},)


_CSS = """<style>
.jpa-turn{border-left:3px solid var(--jp-brand-color1,#1976d2);padding:2px 0 2px 8px}
.jpa-head{font-size:12px;color:var(--jp-ui-font-color2,#555)}
.jpa-warn{background:#fff4e5;color:#663c00;border:1px solid #f59e0b;border-radius:4px;padding:4px 8px;margin:2px 0}
.jpa-info{background:#e8f1fb;color:#0b3c6b;border:1px solid #90caf9;border-radius:4px;padding:4px 8px;margin:2px 0}
.jpa-error{background:#fdecea;color:#611a15;border:1px solid #d32f2f;border-radius:4px;padding:4px 8px;margin:2px 0}
.jpa-status{font-style:italic;color:#b26a00}
.jpa-search{font-size:13px;margin:0}
.jpa-search[data-status="in_progress"]{animation:jpa-pulse 1.2s ease-in-out infinite}
@keyframes jpa-pulse{50%{opacity:.45}}
.jpa-footer{font-size:12px;color:var(--jp-ui-font-color2,#555);border-top:1px solid #8884;padding-top:2px}
</style>"""


SEGMENT_CHARS = 4000


def _text_md(phase: str | None, body: str, *, first: bool) -> str:
    block = TextBlock(key=-1, phase=phase, parts=[body])
    md = block_markdown(block)
    if not first and phase in ("commentary", "final_answer"):
        md = md.split("\n\n", 1)[1]  # the phase label only heads the first segment
    return md


class _Segments:
    """Split offsets of one streaming message (see ``TurnView._render_text``)."""

    def __init__(self, phase: str | None = None) -> None:
        self.phase = phase
        self.splits = [0]
        self.scan_pos = 0
        self.in_fence = False
        self.widgets: list[Any] = []
        self.sent: dict[int, str] = {}
        self._frozen = ""

    @property
    def frozen_text(self) -> str:
        return self._frozen

    def body(self, text: str, i: int) -> str:
        end = self.splits[i + 1] if i + 1 < len(self.splits) else len(text)
        return text[self.splits[i] : end]

    def scan(self, text: str) -> int:
        """Scan complete new lines; split at most once (at the last paragraph break that leaves
        a segment of ``SEGMENT_CHARS`` or more). Returns the number of splits added (0 or 1)."""
        end = text.rfind("\n") + 1
        pos = self.scan_pos
        cut = 0
        while pos < end:
            nl = text.index("\n", pos)
            line = text[pos:nl].strip()
            if line.startswith(("```", "~~~")):
                self.in_fence = not self.in_fence
            elif not line and not self.in_fence and nl + 1 - self.splits[-1] >= SEGMENT_CHARS:
                cut = nl + 1
            pos = nl + 1
        self.scan_pos = max(self.scan_pos, end)
        if not cut:
            return 0
        self.splits.append(cut)
        self._frozen = text[:cut]
        return 1
