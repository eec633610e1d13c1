"""``%agent`` line commands and ``%%agent`` cells.

A ``%%agent`` cell is rewritten (an IPython cleanup transform) into a top-level
``await run_agent_cell(line, body)``: the cell stays busy until the turn ends, its outputs land
in the cell, and the kernel keeps handling comm messages (Stop, Approve) meanwhile. The turn's
network I/O runs on the agent loop thread; this coroutine only renders events on the kernel
thread. Without autoawait the plain ``%%agent`` magic runs the same turn and blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import threading
from collections.abc import Callable
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets import TraitError

from . import events as ev
from .agent import Agent, TurnRunning
from .instructions import notebook_dir
from .loop import EventBridge
from .magic_commands import (
    HELP,
    UsageError,
    cell_options,
    cell_prompt,
    connect_parser,
    history_text,
    parse_cell_line,
    status_text,
)
from .project_magics import instructions_text, mcp_command
from .ui.text import TextOutput

FRAME_INTERVAL = 1 / 30
_default_agent: Agent | None = None
_lock = threading.Lock()


def get_agent(shell: Any | None = None) -> Agent:
    """The notebook's agent (one per kernel), created on first use."""
    global _default_agent
    with _lock:
        if _default_agent is None:
            if shell is None:
                from IPython import get_ipython

                shell = get_ipython()
            _default_agent = Agent(parent=shell) if shell is not None else Agent()
            if shell is not None and _default_agent not in shell.configurables:
                shell.configurables.append(_default_agent)
            if shell is not None and getattr(shell, "user_ns", None) is not None:
                _setup_kernel(_default_agent, shell)
        return _default_agent


def _setup_kernel(agent: Agent, shell: Any) -> None:
    """Kernel tools on the kernel thread, and conversations saved per notebook."""
    from .store import ConversationStore, notebook_identity
    from .tools.kernel import install_kernel_tools

    try:
        install_kernel_tools(agent, shell)
    except Exception:  # the agent still answers without tools
        import logging

        logging.getLogger("jupyter_agent").exception("kernel tools not installed")
    if getattr(agent, "kernel_tools", True):
        from . import notebook_bridge

        notebook_bridge.install(agent, shell)
    try:
        agent.project_dir = str(notebook_dir(shell.user_ns))  # AGENTS.md discovery starts here
    except OSError:  # the kernel's cwd is gone: discovery then starts at each turn's cwd
        pass
    if agent.persist:
        store = ConversationStore(
            agent.history_dir or None,
            notebook_identity(shell.user_ns),
            secrets=agent.secret_values,
        )
        agent.attach_store(store)
        if agent.auto_resume:
            try:
                agent.resume()
            except Exception:  # an unreadable store must not stop the extension loading
                import logging

                logging.getLogger("jupyter_agent").exception("auto-resume failed")


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


def _nullcontext() -> Any:
    import contextlib

    return contextlib.nullcontext()


def run_agent_cell_blocking(line: str, body: str) -> None:
    """Without autoawait: run the cell's coroutine to completion on a private loop."""
    _run_blocking(lambda: run_agent_cell(line, body))


def _run_blocking(make: Callable[[], Any]) -> None:
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
    with blocked() if blocked is not None else _nullcontext():
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
            f"await __import__('jupyter_agent.magics', fromlist=['run_agent_fix']).run_agent_fix({extra.strip()!r})\n"
        ]
    if not lines or not lines[0].startswith(_MARK):
        return lines
    first = lines[0][len(_MARK) :]
    if first and not first[0].isspace():
        return lines  # e.g. %%agentx: not ours
    line = first.strip()
    body = "".join(lines[1:])
    return [
        f"await __import__('jupyter_agent.magics', fromlist=['run_agent_cell']).run_agent_cell({line!r}, {body!r})\n"
    ]


# --- %agent line commands ------------------------------------------------------------------


def pinned_gauges(agent: Agent) -> Any:
    """A gauge widget that follows the agent's rate limits from every later turn (``close()`` stops it)."""
    from .ui.gauges import pinned_gauges as _pinned

    return _pinned(agent)


@magics_class
class AgentMagics(Magics):
    @line_cell_magic
    def agent(self, line: str, cell: str | None = None) -> Any:
        """Talk to the agent: ``%%agent`` cells and ``%agent`` commands (see ``%agent help``)."""
        if cell is not None:
            return run_agent_cell_blocking(line, cell)
        try:
            return self._command(line)
        except (UsageError, TurnRunning, TraitError) as exc:
            print(f"UsageError: {exc}")
            return None

    def _command(self, line: str) -> Any:
        try:
            parts = shlex.split(line)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if not parts:
            raise UsageError("missing command.\n\n" + HELP)
        cmd, args = parts[0], parts[1:]
        agent = get_agent(self.shell)
        handler: Callable[[Agent, list[str]], Any] | None = getattr(self, f"_cmd_{cmd}", None)
        if handler is None:
            raise UsageError(f"unknown command {cmd!r}.\n\n{HELP}")
        return handler(agent, args)

    def _cmd_help(self, agent: Agent, args: list[str]) -> Any:
        return TextOutput(HELP)

    def _cmd_status(self, agent: Agent, args: list[str]) -> Any:
        text = status_text(agent)
        return TextOutput(text, "```\n" + text + "\n```")

    def _cmd_model(self, agent: Agent, args: list[str]) -> Any:
        if len(args) != 1:
            raise UsageError("usage: %agent model NAME")
        agent.model = args[0]
        return TextOutput(f"Model set to {args[0]}")

    def _cmd_transport(self, agent: Agent, args: list[str]) -> Any:
        if len(args) != 1 or args[0] not in ("auto", "sse", "websocket"):
            raise UsageError("usage: %agent transport auto|sse|websocket")
        agent.transport = args[0]
        return TextOutput(f"Transport set to {args[0]}")

    def _cmd_reset(self, agent: Agent, args: list[str]) -> Any:
        agent.reset()
        agent.publish(ev.Notice(level="info", message="Started a new conversation."))
        return TextOutput("Started a new conversation.")

    def _cmd_resume(self, agent: Agent, args: list[str]) -> Any:
        from .store import resume_summary

        if len(args) > 1:
            raise UsageError("usage: %agent resume [CONVERSATION_ID]")
        try:
            conv = agent.resume(args[0] if args else None)
        except (RuntimeError, ValueError, FileNotFoundError) as exc:
            raise UsageError(f"cannot resume: {exc}") from None
        if conv is None:
            return TextOutput("No saved conversation to resume for this notebook.")
        agent.publish(ev.Notice(level="info", message=f"Resumed a saved conversation ({len(conv.items)} items)."))
        text = resume_summary(conv)
        return TextOutput(text)

    def _cmd_conversations(self, agent: Agent, args: list[str]) -> Any:
        from .store import read_conversation, resume_summary

        if agent.store is None:
            return TextOutput("Conversations are not saved (Agent.persist is off).")
        rows = []
        for path in agent.store.conversations()[:20]:
            conv = read_conversation(path)
            mark = " (current)" if conv.id == agent.conversation_id else ""
            first = resume_summary(conv).splitlines()
            rows.append(f"{conv.id}{mark}\n  " + "\n  ".join(first))
        return TextOutput("\n".join(rows) or "No saved conversations for this notebook.")

    def _cmd_tools(self, agent: Agent, args: list[str]) -> Any:
        rows = [
            f"{name}: {agent.approval_policy(name)} - {tool.description.split('. ')[0]}"
            for name, tool in agent.tools.items()
        ]
        provider = agent.resolved_provider()
        rows.append(f"web_search: {agent.web_search_mode(provider)} (hosted by the provider)")
        from .notebook_bridge import current_kind
        from .tools.notebook import cell_tools_note

        rows.append(cell_tools_note(current_kind()))
        return TextOutput("\n".join(rows))

    def _cmd_approve(self, agent: Agent, args: list[str]) -> Any:
        if not args or args[0] not in ("ask", "auto", "never") or len(args) > 2:
            raise UsageError("usage: %agent approve ask|auto|never [TOOL]")
        try:
            agent.set_approval(args[1] if len(args) == 2 else None, args[0])
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
        names = [args[1]] if len(args) == 2 else sorted(agent.tool_approval)
        return TextOutput(f"Approval policy {args[0]} for: {', '.join(names) or '(no tools)'}")

    def _cmd_websearch(self, agent: Agent, args: list[str]) -> Any:
        if len(args) != 1 or args[0] not in ("live", "cached", "disabled", "default"):
            raise UsageError("usage: %agent websearch live|cached|disabled|default")
        agent.web_search = args[0]
        return TextOutput(f"Web search: {agent.web_search_mode(agent.resolved_provider())}")

    def _cmd_mcp(self, agent: Agent, args: list[str]) -> Any:
        return mcp_command(agent, args)

    def _cmd_instructions(self, agent: Agent, args: list[str]) -> Any:
        return TextOutput(instructions_text(agent))

    def _cmd_compact(self, agent: Agent, args: list[str]) -> Any:
        from .agent.compaction import CompactionFailed
        from .ui.context_gauge import compacted_text

        try:
            done = agent.compact()
        except CompactionFailed as exc:
            return TextOutput(f"Not compacted: {exc}. The conversation is unchanged.")
        return TextOutput(compacted_text(done))

    def _cmd_fix(self, agent: Agent, args: list[str]) -> Any:
        # A cell holding only ``%agent fix`` is rewritten to await run_agent_fix (see the transform);
        # this path is ``%agent fix`` among other code, or without autoawait: the same turn, blocking.
        _run_blocking(lambda: run_agent_fix(" ".join(args), agent=agent))

    def _cmd_history(self, agent: Agent, args: list[str]) -> Any:
        return TextOutput(history_text(agent))

    def _cmd_connect(self, agent: Agent, args: list[str]) -> Any:
        import os

        opts = connect_parser().parse_args(args)
        if opts.api_key_env:
            key = os.environ.get(opts.api_key_env)
            if not key:
                raise UsageError(f"environment variable {opts.api_key_env} is not set")
            agent.set_api_key(key)
        if opts.provider:
            agent.provider = opts.provider
        if opts.base_url:
            agent.base_url = opts.base_url
        if opts.model:
            agent.model = opts.model
        if opts.transport:
            agent.transport = opts.transport
        return TextOutput(f"Connected: {agent.resolved_provider().describe()}, model {agent.model_name}")

    def _cmd_limits(self, agent: Agent, args: list[str]) -> Any:
        return pinned_gauges(agent)

    def _cmd_usage(self, agent: Agent, args: list[str]) -> Any:
        from .ui.context_gauge import context_line, totals_line
        from .usage import fetch_usage_sync

        # This session's own figures first (issue 14), then what the provider's usage endpoint says.
        print(totals_line(agent.session_usage))
        print(context_line(agent.context_event(agent.window_for(agent.resolved_provider(), agent.model_name))))
        return fetch_usage_sync(agent)

    def _cmd_voice(self, agent: Agent, args: list[str]) -> Any:
        from .realtime import show_voice

        return show_voice(agent)


def register(shell: Any) -> None:
    """Register the magics and the ``%%agent`` rewrite on ``shell``."""
    shell.register_magics(AgentMagics)
    transforms = shell.input_transformers_cleanup
    if agent_cell_transform not in transforms:
        transforms.append(agent_cell_transform)
    get_agent(shell)


def unregister(shell: Any) -> None:
    transforms = shell.input_transformers_cleanup
    if agent_cell_transform in transforms:
        transforms.remove(agent_cell_transform)
