"""The ``%agent`` / ``%%agent`` magic: line commands dispatched here, cells run by ``cell_turns``
(rewritten into an awaited turn; the plain magic is the no-autoawait path), the kernel's agent
from ``kernel_agent``. ``register``/``unregister`` install the magic and the cell transform."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets import TraitError

from . import events as ev
from .agent import Agent, TurnRunning
from .cell_turns import agent_cell_transform, run_agent_cell, run_agent_cell_blocking, run_agent_fix, run_blocking
from .kernel_agent import get_agent
from .magic_commands import (
    HELP,
    UsageError,
    connect_parser,
    history_text,
    status_text,
)
from .project_magics import instructions_text, mcp_command
from .ui.text import TextOutput

__all__ = [
    "AgentMagics",
    "agent_cell_transform",
    "get_agent",
    "history_text",
    "pinned_gauges",
    "register",
    "run_agent_cell",
    "run_agent_fix",
    "status_text",
    "unregister",
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
        run_blocking(lambda: run_agent_fix(" ".join(args), agent=agent))

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
