"""Transcript blocks and their per-block markdown and plain-text renderings, apart from the turn state."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .. import events as ev

MAX_TOOL_OUTPUT_LINES = 40
MAX_TOOL_OUTPUT_CHARS = 4000
PHASE_LABELS = {"commentary": "Commentary (interim)", "final_answer": "Final answer"}
DECISION_TEXT = {
    "approve": "approved",
    "approve_always": "approved (always for this tool)",
    "deny": "denied",
    "cancelled": "cancelled",
}


@dataclass(eq=False)
class Block:
    key: int
    version: int = 0

    def touch(self) -> None:
        self.version += 1


@dataclass(eq=False)
class TextBlock(Block):
    item_id: str = ""
    phase: str | None = None
    parts: list[str] = field(default_factory=list)
    _joined: str = ""
    _joined_len: int = 0

    @property
    def text(self) -> str:
        if self._joined_len != len(self.parts):
            self._joined = "".join(self.parts)
            self.parts = [self._joined]
            self._joined_len = 1
        return self._joined


@dataclass(eq=False)
class ReasoningBlock(Block):
    item_id: str = ""
    kind: str = "summary"
    sections: dict[int, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(v.strip() for _, v in sorted(self.sections.items()) if v.strip())


@dataclass(eq=False)
class SearchBlock(Block):
    item_id: str = ""
    event: ev.WebSearch = field(default_factory=ev.WebSearch)

    @property
    def text(self) -> str:
        return self.event.display_text


@dataclass(eq=False)
class ToolBlock(Block):
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    #: None (no approval asked), "pending", or a decision from ``ApprovalResolved``.
    approval: str | None = None
    output: str | None = None
    is_error: bool = False
    #: From ``ApprovalRequest``: the code the call runs or the diff it makes ("" for none).
    preview: str = ""
    preview_kind: str = ""
    preview_language: str = ""


@dataclass
class Notice:
    level: str  # "info" | "warning" | "error"
    message: str


# --- helpers ------------------------------------------------------------------------------


def usage_text(u: ev.Usage) -> str:
    total = u.total_tokens or (u.input_tokens + u.output_tokens)
    return (
        f"Tokens: {total:,} total (input {u.input_tokens:,}, cached {u.cached_input_tokens:,}, "
        f"output {u.output_tokens:,}, reasoning {u.reasoning_output_tokens:,})"
    )


def _md_escape(text: str) -> str:
    """Escape what would turn plain text into markup (HTML tags, emphasis)."""
    return text.replace("\\", "\\\\").replace("<", "&lt;").replace("*", "\\*").replace("_", "\\_").replace("`", "\\`")


def _fence(body: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in body:
        ticks += "`"
    return f"{ticks}{lang}\n{body}\n{ticks}"


def _fence_inline(text: str) -> str:
    """Inline code that survives backticks in ``text``."""
    ticks = "`"
    while ticks in text:
        ticks += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _pretty_args(arguments: str) -> tuple[str, str]:
    """(body, language) for a tool call's arguments: code arguments as Python, else JSON."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments, "text"
    if (
        isinstance(parsed, dict)
        and len(parsed) == 1
        and isinstance(next(iter(parsed.values())), str)
        and next(iter(parsed)) in ("code", "source", "python")
    ):
        return next(iter(parsed.values())), "python"
    return json.dumps(parsed, indent=2, ensure_ascii=False), "json"


PREVIEW_LABELS = {"diff": "Change", "code": "Code"}


def _other_args(arguments: str) -> str:
    """The arguments besides the previewed source (e.g. the cell id), compact; "" when none."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments
    if not isinstance(parsed, dict):
        return arguments
    rest = {k: v for k, v in parsed.items() if k != "source" and v is not None}
    return json.dumps(rest, ensure_ascii=False) if rest else ""


def _clip(text: str) -> str:
    lines = text.splitlines()
    clipped = False
    if len(lines) > MAX_TOOL_OUTPUT_LINES:
        lines = lines[:MAX_TOOL_OUTPUT_LINES]
        clipped = True
    out = "\n".join(lines)
    if len(out) > MAX_TOOL_OUTPUT_CHARS:
        out = out[:MAX_TOOL_OUTPUT_CHARS]
        clipped = True
    return out + ("\n... (truncated)" if clipped else "")


def notice_markdown(n: Notice) -> str:
    if n.level == "warning":
        return f"> **⚠ Warning:** {_md_escape(n.message)}"
    return f"> ℹ {_md_escape(n.message)}"  # noqa: RUF001 - the information sign is the notice's icon


def notice_text(n: Notice) -> str:
    return ("Warning: " if n.level == "warning" else "Note: ") + n.message


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def block_markdown(block: Block) -> str:
    if isinstance(block, TextBlock):
        text = block.text
        if block.phase == "commentary":
            return f"**{PHASE_LABELS['commentary']}**\n\n{_quote(text)}"
        if block.phase == "final_answer":
            return f"**{PHASE_LABELS['final_answer']}**\n\n{text}"
        return text
    if isinstance(block, ReasoningBlock):
        title = "Reasoning summary" if block.kind == "summary" else "Reasoning"
        return f"<details><summary>{title}</summary>\n\n{block.text}\n\n</details>"
    if isinstance(block, SearchBlock):
        return f"• {_md_escape(block.text)}"
    if isinstance(block, ToolBlock):
        out = [f"**Tool call** `{block.name or '?'}`"]
        if block.preview_kind:
            rest = _other_args(block.arguments)
            if rest:
                out[0] += f" {_fence_inline(rest)}"
            out.append(f"**{PREVIEW_LABELS.get(block.preview_kind, 'Preview')}:**")
            out.append(_fence(block.preview, block.preview_language or block.preview_kind))
        elif block.arguments.strip():
            body, lang = _pretty_args(block.arguments)
            out.append(_fence(body, lang))
        if block.approval == "pending":
            out.append("*Waiting for approval.*")
        elif block.approval:
            out.append(f"*Approval: {DECISION_TEXT.get(block.approval, block.approval)}.*")
        if block.output is not None:
            out.append("**Error:**" if block.is_error else "**Result:**")
            out.append(_fence(_clip(block.output), "text"))
        return "\n\n".join(out)
    return ""


def block_text(block: Block) -> str:
    if isinstance(block, TextBlock):
        if block.phase in PHASE_LABELS:
            return f"[{PHASE_LABELS[block.phase]}]\n{block.text}"
        return block.text
    if isinstance(block, ReasoningBlock):
        title = "Reasoning summary" if block.kind == "summary" else "Reasoning"
        return f"[{title}]\n" + "\n".join("  " + line for line in block.text.splitlines())
    if isinstance(block, SearchBlock):
        return block.text
    if isinstance(block, ToolBlock):
        out = [f"Tool call: {block.name or '?'}"]
        if block.preview_kind:
            rest = _other_args(block.arguments)
            out[0] += f" {rest}" if rest else ""
            out.append(f"  {PREVIEW_LABELS.get(block.preview_kind, 'Preview').lower()}:")
            out.append("\n".join("    " + line for line in block.preview.splitlines()))
        elif block.arguments.strip():
            body, _lang = _pretty_args(block.arguments)
            out.append("\n".join("  " + line for line in body.splitlines()))
        if block.approval == "pending":
            out.append("  (waiting for approval)")
        elif block.approval:
            out.append(f"  approval: {DECISION_TEXT.get(block.approval, block.approval)}")
        if block.output is not None:
            out.append(
                ("  error:\n" if block.is_error else "  result:\n")
                + "\n".join("    " + line for line in _clip(block.output).splitlines())
            )
        return "\n".join(out)
    return ""


def _join_blocks(blocks: list[Block], render: Any) -> list[str]:
    """Render blocks; consecutive web-search lines form one paragraph (one line per call)."""
    out: list[str] = []
    prev_search = False
    for block in blocks:
        text = render(block)
        is_search = isinstance(block, SearchBlock)
        if is_search and prev_search and out:
            sep = "  \n" if render is block_markdown else "\n"
            out[-1] = out[-1] + sep + text
        elif text:
            out.append(text)
        prev_search = is_search
    return out
