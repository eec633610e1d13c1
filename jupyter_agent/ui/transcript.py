"""The state of one turn as a frontend shows it, built from agent events; plus text renderings.

``TurnViewState.handle(event)`` is cheap (string appends, dict lookups) and records which parts
changed (``version`` counters), so a view can push only what changed. ``markdown()`` and
``plain_text()`` render the whole turn; the per-block functions render one block.

Retry semantics: the agent emits ``Retry`` before re-streaming, and the failed attempt's output
is void. An attempt starts at ``TurnStarted`` and after each tool round; on ``Retry`` every
block created since the attempt started is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import events as ev
from .context_gauge import compacted_text, context_line
from .gauges import exhausted_text, gauges_markdown, gauges_text
from .transcript_blocks import (
    DECISION_TEXT,
    MAX_TOOL_OUTPUT_CHARS,
    MAX_TOOL_OUTPUT_LINES,
    PHASE_LABELS,
    Block,
    Notice,
    ReasoningBlock,
    SearchBlock,
    TextBlock,
    ToolBlock,
    _clip,
    _fence,
    _join_blocks,
    _md_escape,
    _pretty_args,
    _quote,
    block_markdown,
    block_text,
    notice_markdown,
    notice_text,
    usage_text,
)

__all__ = [
    "MAX_TOOL_OUTPUT_CHARS",
    "MAX_TOOL_OUTPUT_LINES",
    "PHASE_LABELS",
    "DECISION_TEXT",
    "Block",
    "TextBlock",
    "ReasoningBlock",
    "SearchBlock",
    "ToolBlock",
    "Notice",
    "usage_text",
    "_md_escape",
    "_fence",
    "_pretty_args",
    "_clip",
    "notice_markdown",
    "notice_text",
    "_quote",
    "block_markdown",
    "block_text",
    "_join_blocks",
    "TurnViewState",
]


@dataclass
class TurnViewState:
    """Everything a renderer needs about one turn."""

    requested_model: str = ""
    server_model: str = ""
    prompt: str = ""
    blocks: list[Block] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: The message of a ``usage_limit_reached`` error (rendered with the exhausted buckets).
    usage_limit_error: str = ""
    #: Transient status line: "Reconnecting... n/max" while a retry is pending.
    status: str = ""
    usage: ev.Usage | None = None
    telemetry_line: str = ""
    rate_limits: dict[str, ev.RateLimitSnapshot] = field(default_factory=dict)
    done: bool = False
    done_status: str = ""
    final_text: str = ""
    rerouted: bool = False
    #: Bumped when the notices/errors/status/footer/gauges change (blocks have their own).
    chrome_version: int = 0
    gauges_version: int = 0
    #: The last context gauge of the turn (issue 14).
    context: ev.ContextGauge | None = None
    structure_version: int = 0
    _next_key: int = 0
    _checkpoint: int = 0
    _by_item: dict[tuple[str, str], Block] = field(default_factory=dict)
    _tools: dict[str, ToolBlock] = field(default_factory=dict)

    # -- events -----------------------------------------------------------------------

    def handle(self, event: ev.AgentEvent) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _new(self, cls: type, **kw: Any) -> Any:
        block = cls(key=self._next_key, **kw)
        self._next_key += 1
        self.blocks.append(block)
        self.structure_version += 1
        return block

    def _content_started(self) -> None:
        if self.status:
            self.status = ""
            self.chrome_version += 1

    def _checkpoint_here(self) -> None:
        self._checkpoint = len(self.blocks)
        self._by_item.clear()

    def _on_turn_started(self, e: ev.TurnStarted) -> None:
        self.prompt = e.prompt
        if e.model and not self.requested_model:
            self.requested_model = e.model
        self._checkpoint_here()
        self.chrome_version += 1

    def _text_block(self, item_id: str, phase: str | None) -> TextBlock:
        block = self._by_item.get(("text", item_id))
        if block is None:
            block = self._new(TextBlock, item_id=item_id, phase=phase)
            self._by_item[("text", item_id)] = block
        assert isinstance(block, TextBlock)
        return block

    def _on_text_delta(self, e: ev.TextDelta) -> None:
        self._content_started()
        block = self._text_block(e.item_id, e.phase)
        if e.phase and block.phase != e.phase:
            block.phase = e.phase
        block.parts.append(e.delta)
        block.version += 1

    def _on_message_done(self, e: ev.MessageDone) -> None:
        self._content_started()
        block = self._text_block(e.item_id, e.phase)
        if e.phase:
            block.phase = e.phase
        if e.text and e.text != block.text:
            block.parts = [e.text]
            block._joined_len = 0
        block.touch()

    def _on_reasoning(self, e: ev.ReasoningDelta) -> None:
        self._content_started()
        key = ("reasoning:" + e.kind, e.item_id)
        block = self._by_item.get(key)
        if block is None:
            block = self._new(ReasoningBlock, item_id=e.item_id, kind=e.kind)
            self._by_item[key] = block
        assert isinstance(block, ReasoningBlock)
        block.sections[e.index] = block.sections.get(e.index, "") + e.delta
        block.touch()

    def _on_web_search(self, e: ev.WebSearch) -> None:
        self._content_started()
        key = ("search", e.item_id)
        block = self._by_item.get(key)
        if block is None:
            block = self._new(SearchBlock, item_id=e.item_id, event=e)
            self._by_item[key] = block
        assert isinstance(block, SearchBlock)
        block.event = e
        block.touch()

    def _tool(self, call_id: str, name: str, arguments: str) -> ToolBlock:
        block = self._tools.get(call_id)
        if block is None:
            block = self._new(ToolBlock, call_id=call_id, name=name, arguments=arguments)
            self._tools[call_id] = block
        if name and not block.name:
            block.name = name
        if arguments and not block.arguments:
            block.arguments = arguments
        return block

    def _on_tool_call(self, e: ev.ToolCall) -> None:
        self._content_started()
        self._tool(e.call_id, e.name, e.arguments).touch()
        self._checkpoint_here()

    def _on_tool_result(self, e: ev.ToolResult) -> None:
        block = self._tool(e.call_id, e.name, "")
        block.output = e.output
        block.is_error = e.is_error
        block.touch()
        self._checkpoint_here()

    def _on_approval_request(self, e: ev.ApprovalRequest) -> None:
        block = self._tool(e.call_id, e.name, e.arguments)
        block.approval = "pending"
        block.preview, block.preview_kind, block.preview_language = e.preview, e.preview_kind, e.preview_language
        block.touch()
        self._checkpoint_here()

    def _on_approval_resolved(self, e: ev.ApprovalResolved) -> None:
        block = self._tool(e.call_id, "", "")
        block.approval = e.decision
        block.touch()
        self._checkpoint_here()

    def _on_retry(self, e: ev.Retry) -> None:
        dropped = self.blocks[self._checkpoint :]
        if dropped:
            del self.blocks[self._checkpoint :]
            for block in dropped:
                if isinstance(block, ToolBlock):
                    self._tools.pop(block.call_id, None)
            self.structure_version += 1
        self._by_item.clear()
        self.status = e.display_text
        self.chrome_version += 1

    def _on_context(self, e: ev.ContextGauge) -> None:
        self.context = e
        self.gauges_version += 1

    def _on_rate_limits(self, e: ev.RateLimits) -> None:
        if e.snapshot is not None:
            self.rate_limits[e.snapshot.limit_id] = e.snapshot
            self.gauges_version += 1

    def _on_server_model(self, e: ev.ServerModel) -> None:
        if e.model != self.server_model:
            self.server_model = e.model
            self.chrome_version += 1

    def _on_reroute(self, e: ev.RerouteWarning) -> None:
        if self.rerouted:
            return
        self.rerouted = True
        message = e.message or (f"The server answered with model {e.to_model} instead of the requested {e.from_model}.")
        if e.from_model and e.to_model and (e.from_model not in message or e.to_model not in message):
            message = f"Model rerouted from {e.from_model} to {e.to_model}. {message}"
        self.notices.append(Notice("warning", message))
        self.chrome_version += 1

    def _on_error(self, e: ev.Error) -> None:
        if e.message and e.message not in self.errors:
            self.errors.append(e.message)
        if e.code == "usage_limit_reached" and e.message:
            self.usage_limit_error = e.message
        self.status = ""
        self.chrome_version += 1

    def _on_notice(self, e: ev.Notice) -> None:
        if e.message and all(n.message != e.message for n in self.notices):
            self.notices.append(Notice(e.level, e.message))
            self.chrome_version += 1

    def _on_compacted(self, e: ev.Compacted) -> None:
        self.notices.append(Notice("info", compacted_text(e)))
        self.chrome_version += 1

    def _on_usage(self, e: ev.UsageEvent) -> None:
        u, a = self.usage, e.usage
        self.usage = (
            a
            if u is None
            else ev.Usage(
                input_tokens=u.input_tokens + a.input_tokens,
                cached_input_tokens=u.cached_input_tokens + a.cached_input_tokens,
                output_tokens=u.output_tokens + a.output_tokens,
                reasoning_output_tokens=u.reasoning_output_tokens + a.reasoning_output_tokens,
                total_tokens=u.total_tokens + a.total_tokens,
            )
        )
        self.chrome_version += 1

    def _on_telemetry(self, e: ev.Telemetry) -> None:
        self.telemetry_line = e.line
        self.chrome_version += 1

    def _on_turn_done(self, e: ev.TurnDone) -> None:
        self.done = True
        self.done_status = e.status
        self.final_text = e.text
        self.status = ""
        for block in self._tools.values():
            if block.approval == "pending":
                block.approval = "cancelled"
                block.touch()
        self.chrome_version += 1

    # -- queries ----------------------------------------------------------------------

    def answer_text(self) -> str:
        """The streamed text of the turn's messages (final answers, or all messages if unphased)."""
        texts = [b.text for b in self.blocks if isinstance(b, TextBlock)]
        finals = [b.text for b in self.blocks if isinstance(b, TextBlock) and b.phase == "final_answer"]
        return "".join(finals) if finals else "".join(texts)

    def error_messages(self, now: float | None = None) -> list[str]:
        """The turn's errors; a usage-limit error also names the exhausted buckets and their reset times."""
        out = []
        for err in self.errors:
            if err == self.usage_limit_error:
                detail = exhausted_text(self.rate_limits, now)
                if detail:
                    err = f"{err} {detail}"
            out.append(err)
        return out

    def warnings(self) -> list[Notice]:
        return [n for n in self.notices if n.level == "warning"]

    # -- renderings -------------------------------------------------------------------

    def footer_text(self) -> str:
        lines = []
        if self.usage is not None:
            lines.append(usage_text(self.usage))
        if self.telemetry_line:
            lines.append(self.telemetry_line)
        return "\n".join(lines)

    def markdown(self, now: float | None = None, *, gauges: bool = True) -> str:
        parts: list[str] = []
        for n in self.notices:
            parts.append(notice_markdown(n))
        parts.extend(_join_blocks(self.blocks, block_markdown))
        if self.status:
            parts.append(f"*{self.status}*")
        for err in self.error_messages(now):
            parts.append(f"**Error:** {_md_escape(err)}")
        if self.done_status == "interrupted":
            parts.append("*[interrupted]*")
        footer = self.footer_text()
        if footer:
            parts.append("---\n" + "  \n".join(_md_escape(x) for x in footer.splitlines()))
        if gauges and self.context is not None:
            parts.append(_md_escape(context_line(self.context)))
        if gauges and self.rate_limits:
            parts.append(gauges_markdown(self.rate_limits, now))
        return "\n\n".join(p for p in parts if p).strip() + "\n"

    def plain_text(self, now: float | None = None, *, gauges: bool = True) -> str:
        parts: list[str] = []
        for n in self.notices:
            parts.append(notice_text(n))
        parts.extend(_join_blocks(self.blocks, block_text))
        if self.status:
            parts.append(self.status)
        for err in self.error_messages(now):
            parts.append(f"Error: {err}")
        if self.done_status == "interrupted":
            parts.append("[interrupted]")
        footer = self.footer_text()
        if footer:
            parts.append(("-" * 40) + "\n" + footer)
        if gauges and self.context is not None:
            parts.append(context_line(self.context))
        if gauges and self.rate_limits:
            parts.append(gauges_text(self.rate_limits, now))
        return "\n\n".join(p for p in parts if p).strip() + "\n"


_HANDLERS: dict[type, Any] = {
    ev.TurnStarted: TurnViewState._on_turn_started,
    ev.TextDelta: TurnViewState._on_text_delta,
    ev.MessageDone: TurnViewState._on_message_done,
    ev.ReasoningDelta: TurnViewState._on_reasoning,
    ev.WebSearch: TurnViewState._on_web_search,
    ev.ToolCall: TurnViewState._on_tool_call,
    ev.ToolResult: TurnViewState._on_tool_result,
    ev.ApprovalRequest: TurnViewState._on_approval_request,
    ev.ApprovalResolved: TurnViewState._on_approval_resolved,
    ev.Retry: TurnViewState._on_retry,
    ev.RateLimits: TurnViewState._on_rate_limits,
    ev.ContextGauge: TurnViewState._on_context,
    ev.Compacted: TurnViewState._on_compacted,
    ev.ServerModel: TurnViewState._on_server_model,
    ev.RerouteWarning: TurnViewState._on_reroute,
    ev.Error: TurnViewState._on_error,
    ev.Notice: TurnViewState._on_notice,
    ev.UsageEvent: TurnViewState._on_usage,
    ev.Telemetry: TurnViewState._on_telemetry,
    ev.TurnDone: TurnViewState._on_turn_done,
    # RealtimeEvent: rendered by the voice widget, not by cells.
}
