"""``TurnView``: the live rendering of one agent turn in a notebook cell.

Front-end scheme (checked with nbval strict mode and in JupyterLab):

* ``display()`` shows ONE live widget (ipywidgets 8, so it also works in Notebook 7, VS Code
  and Colab) under a display id. It carries no ``text/plain``: exports (nbconvert, GitHub) and
  frontends without widgets skip it and show only the final rendering.
* ``handle(event)`` only updates a ``TurnViewState`` (cheap, no front-end traffic).
* ``flush()`` pushes what changed to the widgets, at most once per ``min_interval``
  (1/30 s): one trait update per changed region, only the changed blocks.
* ``finish()`` pushes the last state, emits a NEW ``display_data`` with the stable
  ``text/markdown`` + ``text/plain`` rendering of the whole turn, then replaces the live
  display with an empty widget reference (``model_id: ""``, which JupyterLab and Notebook 7 hide)
  and closes the widgets. So the stored outputs of a ``%%agent`` cell are ``[hidden widget
  reference, final rendering]`` and nbval, which compares only the first message of a display
  and ignores the widget-view mimetype, sees the same thing.

Without a kernel (terminal IPython, plain Python) there is no live view: ``finish()`` prints
the plain-text rendering, and approval requests are refused at once (no buttons to click).
"""

from __future__ import annotations

import html
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .. import events as ev
from .block_widgets import BlockWidgets
from .context_gauge import context_html
from .gauges import gauges_html
from .transcript import DECISION_TEXT, Block, TurnViewState, usage_text
from .turn_view_parts import (
    _CSS,
    SEGMENT_CHARS,
    ViewStats,
    _md_output,
    _Segments,
    _text_md,
)

FRAME_INTERVAL = 1 / 30
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
Decision = str  # "approve" | "approve_always" | "deny"


def _has_kernel() -> bool:
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class TurnView:
    """Live cell view of one turn; see the module doc for the front-end scheme."""

    def __init__(
        self,
        requested_model: str,
        on_stop: Callable[[], None] | None = None,
        on_approval: Callable[[str, str], None] | None = None,
        *,
        rate_limits: Mapping[str, ev.RateLimitSnapshot] | None = None,
        min_interval: float = FRAME_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        widgets: bool | None = None,
    ) -> None:
        self.state = TurnViewState(requested_model=requested_model)
        if rate_limits:
            self.state.rate_limits.update(rate_limits)
        self.on_stop = on_stop
        self.on_approval = on_approval
        self.min_interval = min_interval
        self.clock = clock
        self.use_widgets = _has_kernel() if widgets is None else widgets
        self.stats = ViewStats()
        self.display_id = f"jupyter-agent-{uuid.uuid4().hex}"
        self._last_flush = -float("inf")
        self._displayed = False
        self._finished = False
        self._root: Any = None
        self._w: dict[str, Any] = {}
        self._blocks = BlockWidgets(self._set, self.stats.count, self.approve)
        self._pushed: dict[str, Any] = {}
        self._structure_pushed = -1
        self._stopping = False

    # -- public API -------------------------------------------------------------------

    def display(self) -> None:
        """Show the live view in the running cell (no-op without a kernel)."""
        if self._displayed or not self.use_widgets:
            self._displayed = True
            return
        from IPython.display import display

        self._build()
        bundle = {WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": self._root.model_id}}
        display(bundle, raw=True, display_id=self.display_id)
        self.stats.displays += 1
        self.stats.count(bundle)
        self._displayed = True
        self.flush(force=True)

    def handle(self, event: ev.AgentEvent) -> None:
        """Record one event (cheap; nothing is sent here)."""
        if isinstance(event, ev.ApprovalRequest) and not self.use_widgets:
            self._refuse(event)
            return
        self.state.handle(event)

    def flush(self, force: bool = False) -> bool:
        """Push changes to the front end; at most one frame per ``min_interval`` unless forced."""
        if not self.use_widgets or self._root is None:
            return False
        now = self.clock()
        if not force and now - self._last_flush < self.min_interval:
            return False
        sent_before = self.stats.updates_sent
        self._push()
        if self.stats.updates_sent != sent_before:
            self._last_flush = now
            self.stats.frames += 1
            return True
        return False

    def finish(self) -> None:
        """Final render: the stable markdown/plain output; the live widget is hidden and closed."""
        if self._finished:
            return
        self._finished = True
        md, text = self.markdown(), self.plain_text()
        if not self.use_widgets:
            from IPython.display import display

            display({"text/plain": text.rstrip("\n"), "text/markdown": md}, raw=True)
            return
        from IPython.display import display, update_display

        if self._root is not None:
            self.flush(force=True)
        final = {"text/markdown": md, "text/plain": text.rstrip("\n")}
        display(final, raw=True)
        self.stats.displays += 1
        self.stats.count(final)
        if self._root is not None:
            hidden = {WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": ""}}
            update_display(hidden, raw=True, display_id=self.display_id)
            self.stats.count(hidden)
            self._close_widgets()

    def markdown(self) -> str:
        return self.state.markdown()

    def plain_text(self) -> str:
        return self.state.plain_text()

    # -- approvals and stop -----------------------------------------------------------

    def approve(self, call_id: str, decision: Decision) -> None:
        """What the Approve / Approve always / Deny buttons call."""
        block = self.state._tools.get(call_id)
        if block is not None and block.approval != "pending":
            return
        if block is not None:
            block.approval = decision
            block.touch()
        if self.on_approval is not None:
            self.on_approval(call_id, decision)
        self.flush(force=True)

    def stop(self) -> None:
        """What the Stop button calls."""
        if self._stopping or self.state.done:
            return
        self._stopping = True
        self.state.status = "Stopping..."
        self.state.chrome_version += 1
        if self.on_stop is not None:
            self.on_stop()
        self.flush(force=True)

    def _refuse(self, event: ev.ApprovalRequest) -> None:
        self.state.handle(event)
        self.state.handle(
            ev.Notice(
                level="warning",
                message=(
                    f"Refused {event.name or 'the tool call'}: it needs approval and this frontend has no "
                    "approval buttons. Run the cell in a notebook (JupyterLab, Notebook 7, VS Code) to approve it."
                ),
            )
        )
        block = self.state._tools.get(event.call_id)
        if block is not None:
            block.approval = "deny"
        if self.on_approval is not None:
            self.on_approval(event.call_id, "deny")

    # -- widgets ----------------------------------------------------------------------

    def _set(self, widget: Any, name: str, value: Any) -> None:
        setattr(widget, name, value)
        self.stats.count({name: value})

    def _build(self) -> None:
        import ipywidgets as W

        self._w["head"] = W.HTML(value="")
        self._w["stop"] = W.Button(
            description="Stop",
            icon="stop",
            button_style="warning",
            tooltip="Stop this turn",
            layout=W.Layout(width="auto"),
        )
        self._w["stop"].on_click(lambda _b: self.stop())
        self._w["notices"] = W.HTML(value="")
        self._w["transcript"] = W.VBox([])
        self._w["status"] = W.HTML(value="")
        self._w["errors"] = W.HTML(value="")
        self._w["footer"] = W.HTML(value="")
        self._w["gauges"] = W.HTML(value="")
        head = W.HBox([self._w["stop"], self._w["head"]], layout=W.Layout(align_items="center"))
        css = W.HTML(value=_CSS)
        self._root = W.VBox(
            [
                css,
                head,
                self._w["notices"],
                self._w["transcript"],
                self._w["status"],
                self._w["errors"],
                self._w["footer"],
                self._w["gauges"],
            ]
        )
        self._root.add_class("jpa-turn")
        self._root.add_class("jupyter-agent-turn")

    def _push(self) -> None:
        s = self.state
        self._push_value("head", self._head_html())
        self._push_value(
            "notices",
            "".join(
                f'<div class="jpa-{"warn" if n.level == "warning" else "info"}">'
                f"{'⚠ <b>Warning:</b> ' if n.level == 'warning' else 'ℹ '}{html.escape(n.message)}</div>"  # noqa: RUF001 - the notice's icon
                for n in s.notices
            ),
        )
        if s.structure_version != self._structure_pushed:
            self._sync_structure()
        self._blocks.render_changed(done=s.done)
        self._push_value("status", f'<div class="jpa-status">{html.escape(s.status)}</div>' if s.status else "")
        self._push_value(
            "errors",
            "".join(f'<div class="jpa-error"><b>Error:</b> {html.escape(e)}</div>' for e in s.error_messages()),
        )
        footer = []
        if s.usage is not None:
            footer.append(html.escape(usage_text(s.usage)))
        if s.telemetry_line:
            footer.append(html.escape(s.telemetry_line))
        self._push_value("footer", f'<div class="jpa-footer">{"<br>".join(footer)}</div>' if footer else "")
        gauge_html = context_html(s.context) if s.context is not None else ""
        if s.rate_limits:
            gauge_html += gauges_html(s.rate_limits)
        if gauge_html:
            self._push_value("gauges", gauge_html)
        stop = self._w["stop"]
        disabled = s.done or self._stopping
        if stop.disabled != disabled:
            self._set(stop, "disabled", disabled)

    def _push_value(self, name: str, value: str) -> None:
        if self._pushed.get(name) != value:
            self._pushed[name] = value
            self._set(self._w[name], "value", value)

    def _head_html(self) -> str:
        s = self.state
        model = s.server_model or s.requested_model
        bits = ["<b>Agent</b>"]
        if model:
            bits.append(f"model <code>{html.escape(model)}</code>")
        if s.done:
            bits.append(
                {"completed": "done", "failed": "failed", "interrupted": "interrupted"}.get(
                    s.done_status, s.done_status
                )
            )
        elif self._stopping:
            bits.append("stopping...")
        else:
            bits.append("working...")
        return f'<span class="jpa-head">{" · ".join(bits)}</span>'

    def _sync_structure(self) -> None:
        self._set(self._w["transcript"], "children", self._blocks.sync(self.state.blocks))
        self._structure_pushed = self.state.structure_version

    @property
    def _block_widgets(self) -> dict[int, tuple[Block, Any, int]]:
        return self._blocks.entries

    def _close_widgets(self) -> None:
        # Empty the big values first: nbclient stores the last state of every widget (closed
        # ones too) in the notebook metadata, and the final rendering already has the content.
        self._blocks.empty()
        for name in ("footer", "gauges", "notices", "errors"):
            w = self._w.get(name)
            if w is not None and w.value:
                w.value = ""
        self._blocks.close()
        if self._root is not None:
            for child in self._root.children:
                for c in getattr(child, "children", ()):
                    c.close()
                child.close()
            self._root.close()
        self._w.clear()


__all__ = ["DECISION_TEXT", "SEGMENT_CHARS", "TurnView", "ViewStats", "_CSS", "_Segments", "_md_output", "_text_md"]
