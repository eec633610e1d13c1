"""``%%agent`` cells and ``%agent fix``: a turn streamed into the cell that runs it.

A ``%%agent`` cell (or a cell that is only ``%agent fix``) is rewritten by an IPython cleanup
transform into a top-level ``await run_agent_cell(line, body)``: the cell stays busy until the turn
ends, its outputs land in the cell, and the kernel keeps handling comm messages (Stop, Approve)
meanwhile. The turn's network I/O runs on the agent loop thread; this coroutine only renders events
on the kernel thread. Without autoawait the same turn runs on a private loop and blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Callable
from typing import Any

from traitlets import TraitError

from . import events as ev
from .agent import Agent
from .kernel_agent import get_agent
from .loop import EventBridge
from .magic_commands import UsageError, cell_options, cell_prompt, parse_cell_line

__all__ = ["agent_cell_transform", "run_agent_cell", "run_agent_cell_blocking", "run_agent_fix", "run_blocking"]

FRAME_INTERVAL = 1 / 30


def _make_view(agent: Agent) -> Any:
    from .ui import TurnView

    return TurnView(
        requested_model=agent.model_name,
        on_stop=lambda: agent.cancel(),
        on_approval=agent.resolve_approval,
    )


async def run_agent_cell(line: str, body: str, *, agent: Agent | None = None) -> None:
    """Run one ``%%agent`` cell: start the turn, render its events until it ends."""
    try:
        opts = parse_cell_line(line)
    except UsageError as exc:
        print(f"UsageError: {exc}")
        return
    prompt = cell_prompt(opts, body)
    if not prompt:
        print(
            "UsageError: empty prompt. Write the question in the cell body, e.g.\n%%agent\nWhat does df.describe() show?"
        )
        return
    await _run_turn(agent or get_agent(), prompt, cell_options(opts))


async def run_agent_fix(extra: str = "", *, agent: Agent | None = None) -> None:
    """Run ``%agent fix``: explain the last exception and propose the fix, streamed into this cell."""
    from . import fix

    agent = agent or get_agent()
    # Off the kernel thread: reading the document waits for a comm answer this loop must process.
    failure = await asyncio.to_thread(fix.find_failure)
    if failure is None:
        print(fix.NO_EXCEPTION)
        return
    editable = fix.can_edit(agent) and failure.cell_id is not None
    if not fix.can_edit(agent):
        print(fix.NO_BRIDGE_NOTE)
    await _run_turn(agent, fix.fix_prompt(failure, can_edit=editable, extra=extra), {}, fix.fix_title(failure))


async def _run_turn(agent: Agent, prompt: str, options: dict[str, Any], title: str = "") -> None:
    """Start a cell turn and render its events in this cell until it ends."""
    bridge: EventBridge[ev.AgentEvent] = EventBridge()
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(agent.temporary_options(**options))
        except TraitError as exc:  # e.g. -t websocket while a panel turn runs
            print(f"UsageError: {exc}")
            return
        view = _make_view(agent)
        view.display()
        handle = agent.start(prompt, source="cell", sink=bridge.put, interactive=True, title=title)
        try:
            await _drive(view, bridge)
        except (asyncio.CancelledError, KeyboardInterrupt):
            handle.cancel()
            await _drain_after_cancel(view, bridge, handle)
            view.finish()
            # Show the interrupt the way any interrupted cell shows it.
            raise KeyboardInterrupt("agent turn interrupted") from None
        view.finish()


async def _drive(view: Any, bridge: EventBridge[ev.AgentEvent]) -> None:
    done = False
    while not done:
        batch = await bridge.get_batch(timeout=FRAME_INTERVAL)
        for event in batch:
            view.handle(event)
            if isinstance(event, ev.TurnDone):
                done = True
        view.flush()


async def _drain_after_cancel(view: Any, bridge: EventBridge[ev.AgentEvent], handle: Any, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            batch = await bridge.get_batch(timeout=0.05)
        except BaseException:  # noqa: BLE001 - a second interrupt: stop draining
            return
        for event in batch:
            view.handle(event)
            if isinstance(event, ev.TurnDone):
                return


def run_agent_cell_blocking(line: str, body: str) -> None:
    """Without autoawait: run the cell's coroutine to completion on a private loop."""
    run_blocking(lambda: run_agent_cell(line, body))


def run_blocking(make: Callable[[], Any]) -> None:
    """Run the coroutine ``make()`` to completion on a private loop in a thread (no autoawait)."""
    result: dict[str, BaseException] = {}

    def runner() -> None:
        try:
            asyncio.run(make())
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which re-raises it
            result["error"] = exc

    kernel_runner = getattr(get_agent(), "kernel_runner", None)
    blocked = getattr(kernel_runner, "blocked", None)
    thread = threading.Thread(target=runner, name="jupyter-agent-cell")
    with blocked() if blocked is not None else contextlib.nullcontext():
        thread.start()
        thread.join()
    if "error" in result:
        raise result["error"]


# --- the %%agent rewrite -------------------------------------------------------------------

_MARK = "%%agent"


_FIX = re.compile(r"%agent[ \t]+fix(?:[ \t]+(?P<extra>.*))?$")


def agent_cell_transform(lines: list[str]) -> list[str]:
    """Rewrite a ``%%agent`` cell, or a cell that is only ``%agent fix``, into a top-level await
    (IPython cleanup transform): the turn streams into the cell and approvals keep working."""
    code = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if len(code) == 1 and (m := _FIX.match(code[0].strip())):
        extra = m.group("extra") or ""
        return [
            f"await __import__('jupyter_agent.cell_turns', fromlist=['run_agent_fix']).run_agent_fix({extra.strip()!r})\n"
        ]
    if not lines or not lines[0].startswith(_MARK):
        return lines
    first = lines[0][len(_MARK) :]
    if first and not first[0].isspace():
        return lines  # e.g. %%agentx: not ours
    line = first.strip()
    body = "".join(lines[1:])
    return [
        f"await __import__('jupyter_agent.cell_turns', fromlist=['run_agent_cell']).run_agent_cell({line!r}, {body!r})\n"
    ]
