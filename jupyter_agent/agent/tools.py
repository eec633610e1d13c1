"""Tool running and approvals: the agent's tools, their approval policy, and one call's life.

A call is announced (``ToolCall``), approved or not (policy ``auto``/``ask``/``never``; ``ask``
waits for ``Agent.resolve_approval`` from a frontend that can ask), run (kernel-thread tools through
``kernel_runner``), and answered (``ToolResult``); whatever happens, the model gets an output.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..protocol.responses import FunctionCallItem
from ..session import TurnContext
from ..tools.base import ApprovalPreview, FunctionTool, as_tool
from ..tools.mcp_tools import output_text
from .context import cap_tool_output

if TYPE_CHECKING:
    from .core import Turn

EventCallback = Callable[[ev.AgentEvent], None]
#: How long the approval card waits for a tool's preview (e.g. the cell's source over the comm).
PREVIEW_TIMEOUT = 5.0
log = logging.getLogger("jupyter_agent")


class ToolsMixin:
    """Part of ``Agent``: tools, approvals and running one round of calls."""

    tools: dict[str, FunctionTool]
    tool_approval: dict[str, str]
    kernel_runner: Callable[[Callable[[], Any]], Any] | None
    _approvals: dict[str, asyncio.Future[str]]

    # Provided by the other parts of ``Agent`` (annotations only: nothing here shadows them).
    _append_history: Callable[..., None]
    tool_output_limit: int  # context.py

    def add_tool(self, tool: Any, *, approval: str | None = None) -> FunctionTool:
        """Register a Python function (schema from its type hints) or a ``FunctionTool``."""
        t = as_tool(tool)
        if approval is not None:
            if approval not in ("ask", "auto", "never"):
                raise ValueError(f"approval must be ask, auto or never, not {approval!r}")
            t.approval = approval  # type: ignore[assignment]
        self.tools[t.name] = t
        return t

    def tool(self, fn: Callable[..., Any] | None = None, *, approval: str = "auto", name: str | None = None) -> Any:
        """Decorator: ``@agent.tool`` or ``@agent.tool(approval="ask")`` registers ``fn`` as a tool."""

        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            self.add_tool(FunctionTool.from_callable(f, name=name, approval=approval))  # type: ignore[arg-type]
            return f

        return register(fn) if fn is not None else register

    def approval_policy(self, name: str) -> str:
        """The effective policy of tool ``name``: ``tool_approval`` config first, then the tool's own."""
        configured = self.tool_approval.get(name)
        if configured:
            return configured
        tool = self.tools.get(name)
        return tool.approval if tool is not None else "never"

    def set_approval(self, name: str | None, policy: str) -> None:
        """Set the policy of one tool (or, with ``None``, of every tool that asks or runs code)."""
        if policy not in ("ask", "auto", "never"):
            raise ValueError(f"approval must be ask, auto or never, not {policy!r}")
        names = [name] if name else [n for n, t in self.tools.items() if t.runs_code or t.approval == "ask"]
        merged = dict(self.tool_approval)
        for n in names:
            if n not in self.tools:
                raise KeyError(f"no tool named {n!r}")
            merged[n] = policy
        self.tool_approval = merged

    async def _run_tools(
        self, calls: list[FunctionCallItem], ctx: TurnContext, turn: Turn, emit: EventCallback
    ) -> None:
        results = await asyncio.gather(*(self._run_tool(call, ctx, emit) for call in calls))
        for call, (output, _is_error) in zip(calls, results, strict=True):
            # History gets a capped copy (issue 14); the ToolResult event had the full output.
            item = {"type": "function_call_output", "call_id": call.call_id, "output": output}
            kept = cap_tool_output(output, self.tool_output_limit)
            self._append_history({**item, "output": kept}, item if kept is not output else None)

    async def _run_tool(self, call: FunctionCallItem, ctx: TurnContext, emit: EventCallback) -> tuple[Any, bool]:
        tid = ctx.turn_id
        emit(ev.ToolCall(call_id=call.call_id, name=call.name, arguments=call.arguments, turn_id=tid))
        tool = self.tools.get(call.name)
        if tool is None:
            output, is_error = f"Unknown tool: {call.name}", True
        else:
            decision = await self._approve(tool, call, ctx, emit)
            if decision in ("approve", "approve_always", "auto"):
                t0 = time.perf_counter()
                try:
                    output, is_error = await tool.invoke(
                        call.arguments, run_sync=self._kernel_run_sync if tool.needs_kernel_thread else None
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - e.g. the kernel runner failed: tell the model
                    output, is_error = f"Error: {type(exc).__name__}: {exc}", True
                ctx.metrics.record_tool_call(time.perf_counter() - t0)
            elif decision == "never":
                output, is_error = f"Not run: the approval policy of {call.name} is 'never'.", True
            elif decision == "cancelled":
                output, is_error = "The user cancelled the turn before approving this call.", True
            elif decision == "unavailable":
                output, is_error = (
                    (
                        f"Denied: {call.name} needs the user's approval and this frontend cannot ask for it. "
                        "The user can allow it with `%agent approve auto` or approve it in a notebook cell."
                    ),
                    True,
                )
            else:
                output, is_error = f"The user denied the call to {call.name}.", True
        text = output_text(output)  # MCP outputs may be input_text/input_image parts
        emit(ev.ToolResult(call_id=call.call_id, name=call.name, output=text, is_error=is_error, turn_id=tid))
        return output, is_error

    async def _approve(self, tool: FunctionTool, call: FunctionCallItem, ctx: TurnContext, emit: EventCallback) -> str:
        policy = self.approval_policy(tool.name)
        if policy == "auto":
            return "auto"
        if policy == "never":
            return "never"
        if not ctx.interactive:
            return "unavailable"
        preview = await _preview(tool, call.arguments)  # before the wait is registered: a cancel here leaves nothing
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._approvals[call.call_id] = fut
        emit(
            ev.ApprovalRequest(
                call_id=call.call_id,
                name=call.name,
                arguments=call.arguments,
                preview=preview.text if preview else "",
                preview_kind=preview.kind if preview else "",
                preview_language=preview.language if preview else "",
                turn_id=ctx.turn_id,
            )
        )
        try:
            decision = await fut
        finally:
            self._approvals.pop(call.call_id, None)
        if decision == "approve_always":
            tool.approval = "auto"
            if self.tool_approval.get(tool.name) == "ask":
                self.tool_approval = {**self.tool_approval, tool.name: "auto"}
        emit(ev.ApprovalResolved(call_id=call.call_id, decision=decision, turn_id=ctx.turn_id))
        return decision

    def _reject_approvals(self, ctx: TurnContext) -> None:
        for fut in self._approvals.values():
            if not fut.done():
                fut.set_result("cancelled")

    async def _kernel_run_sync(self, fn: Callable[[], Any]) -> Any:
        runner = self.kernel_runner
        if runner is None:
            return await asyncio.to_thread(fn)
        return await asyncio.wrap_future(runner(fn))


async def _preview(tool: FunctionTool, arguments: str) -> ApprovalPreview | None:
    """The tool's preview of a call, or ``None`` (the card shows the arguments) when it has none or fails."""
    try:
        return await asyncio.wait_for(tool.preview(arguments), PREVIEW_TIMEOUT)
    except asyncio.CancelledError:
        raise
    except Exception:  # a preview is a courtesy: bad arguments, no document, a timeout
        log.debug("no approval preview for %s", tool.name, exc_info=True)
        return None
