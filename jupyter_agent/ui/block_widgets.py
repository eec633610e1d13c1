"""The widgets of a turn's transcript blocks in the live cell view (``TurnView``): one per block,
made when the block first shows, re-rendered only when its version changes. Text streams in
segments (``_Segments``: finished ones are sent once); a tool block carries its approval buttons."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

from .transcript import Block, ReasoningBlock, SearchBlock, TextBlock, ToolBlock, block_markdown
from .turn_view_parts import _md_output, _Segments, _text_md

__all__ = ["BlockWidgets"]


class BlockWidgets:
    """Widgets of the transcript blocks, keyed by ``Block.key``: ``(block, widget, version pushed)``."""

    def __init__(
        self,
        set_trait: Callable[[Any, str, Any], None],
        count: Callable[[dict[str, Any]], None],
        on_approval: Callable[[str, str], None],
    ) -> None:
        self._set = set_trait  # sets a trait and counts what is sent
        self._count = count
        self._on_approval = on_approval
        self.entries: dict[int, tuple[Block, Any, int]] = {}

    def sync(self, blocks: Sequence[Block]) -> tuple[Any, ...]:
        """Close the widgets of blocks that are gone, make those of new ones; the children in order."""
        alive = {b.key for b in blocks}
        for key in [k for k in self.entries if k not in alive]:
            _block, widget, _v = self.entries.pop(key)
            widget.close()
        children = []
        for block in blocks:
            entry = self.entries.get(block.key)
            if entry is None:
                entry = (block, self._make(block), -1)
                self.entries[block.key] = entry
            children.append(entry[1])
        return tuple(children)

    def render_changed(self, *, done: bool) -> None:
        """Re-render the blocks whose version moved since they were last pushed."""
        for key, (block, widget, pushed) in list(self.entries.items()):
            if block.version != pushed:
                self._render(block, widget, done)
                self.entries[key] = (block, widget, block.version)

    def empty(self) -> None:
        """Blank the big values before closing (nbclient stores closed widgets' last state too)."""
        for _block, widget, _v in self.entries.values():
            target = getattr(widget, "_jpa_out", widget)
            if hasattr(target, "outputs") and target.outputs:
                target.outputs = ()
            elif isinstance(getattr(target, "value", None), str) and target.value:
                target.value = ""

    def close(self) -> None:
        """Close every block widget and its children."""
        for _block, widget, _v in self.entries.values():
            for attr in ("_jpa_out", "_jpa_bar"):
                child = getattr(widget, attr, None)
                if child is not None:
                    for grandchild in getattr(child, "children", ()):
                        grandchild.close()
                    child.close()
            widget.close()
        self.entries.clear()

    def _make(self, block: Block) -> Any:
        import ipywidgets as W

        if isinstance(block, SearchBlock):
            return W.HTML(value="")
        if isinstance(block, ReasoningBlock):
            out = W.Output()
            acc = W.Accordion(
                children=[out],
                titles=("Reasoning summary" if block.kind == "summary" else "Reasoning",),
                selected_index=None,
            )
            acc._jpa_out = out
            return acc
        if isinstance(block, ToolBlock):
            out = W.Output()
            buttons = []
            for decision, label, style in (
                ("approve", "Approve", "success"),
                ("approve_always", "Approve always", "info"),
                ("deny", "Deny", "danger"),
            ):
                b = W.Button(description=label, button_style=style, layout=W.Layout(width="auto"))
                b.on_click(lambda _b, d=decision, c=block.call_id: self._on_approval(c, d))
                buttons.append(b)
            bar = W.HBox(buttons, layout=W.Layout(display="none"))
            box = W.VBox([out, bar])
            box._jpa_out = out
            box._jpa_bar = bar
            return box
        box = W.VBox([])
        box._jpa_seg = _Segments()
        return box

    def _render(self, block: Block, widget: Any, done: bool) -> None:
        if isinstance(block, SearchBlock):
            self._set(
                widget,
                "value",
                f'<div class="jpa-search" data-status="{html.escape(block.event.status)}">'
                f"• {html.escape(block.text, quote=False)}</div>",
            )
            return
        md = block_markdown(block)
        if isinstance(block, ReasoningBlock):
            self._set(widget._jpa_out, "outputs", _md_output(block.text))
            return
        if isinstance(block, ToolBlock):
            self._set(widget._jpa_out, "outputs", _md_output(md))
            want = "flex" if block.approval == "pending" and not done else "none"
            bar = widget._jpa_bar
            if bar.layout.display != want:
                bar.layout.display = want
                self._count({"display": want})
            return
        assert isinstance(block, TextBlock)
        self._render_text(block, widget)

    def _render_text(self, block: TextBlock, box: Any) -> None:
        """Long messages stream as segments split at paragraph breaks outside code fences:
        finished segments are sent once, each frame re-sends only the last one."""
        import ipywidgets as W

        seg: _Segments = box._jpa_seg
        text = block.text
        if seg.phase != block.phase or not text.startswith(seg.frozen_text):
            for w in seg.widgets:
                w.close()
            box._jpa_seg = seg = _Segments(phase=block.phase)
        new_splits = seg.scan(text)
        for i in range(max(0, min(len(seg.widgets) - 1, len(seg.splits) - 1 - new_splits)), len(seg.splits)):
            if i >= len(seg.widgets):
                seg.widgets.append(W.Output())
            body = seg.body(text, i)
            if seg.sent.get(i) != body:
                seg.sent[i] = body
                self._set(seg.widgets[i], "outputs", _md_output(_text_md(block.phase, body, first=i == 0)))
        if len(box.children) != len(seg.widgets):
            self._set(box, "children", tuple(seg.widgets))
