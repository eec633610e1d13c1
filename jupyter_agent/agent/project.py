"""What the agent takes from the user's setup: MCP tool servers and AGENTS.md project instructions.

A part of ``Agent`` (its traitlets show up as ``Agent.mcp_servers`` etc.), kept apart from the turn
loop so the other parts only call four hooks: ``_init_project()`` in ``__init__``, ``await _mcp_tools()``
at turn start, ``effective_instructions()`` in the request body and ``mcp.secret_values()`` for
redaction. It expects the host class to provide ``_loop`` (``AgentLoop``), ``tools`` (name ->
``FunctionTool``) and ``instructions``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from traitlets import Bool, Dict, HasTraits, Int, Unicode, observe

from .. import events as ev
from ..instructions import InstructionPart, project_parts
from ..instructions import assemble as assemble_instructions
from ..tools.mcp import McpManager
from ..tools.mcp_config import McpServerConfig, read_codex_servers
from ..tools.mcp_tools import McpTool


class ProjectMixin(HasTraits):
    """MCP servers (``tools/mcp.py``, ``tools/mcp_tools.py``) and AGENTS.md (``instructions.py``) for the ``Agent``."""

    mcp_servers = Dict(
        key_trait=Unicode(),
        help=(
            "MCP tool servers by name: {'NAME': {'command': 'CMD', 'args': [...], 'env': {...}, 'cwd': DIR} or "
            "{'url': 'http://...', 'headers': {...}}}; also approval, tool_approval, enabled_tools, "
            "disabled_tools, startup_timeout, tool_timeout, env_vars, env_headers, bearer_token_env_var."
        ),
    ).tag(config=True)
    mcp_codex_config = Bool(
        False, help="Also start the [mcp_servers.*] of ~/.codex/config.toml ($CODEX_HOME/config.toml)."
    ).tag(config=True)
    project_instructions = Bool(
        True, help="Add AGENTS.md files (notebook directory up to the repository root) to the instructions."
    ).tag(config=True)
    agents_md_max_bytes = Int(32 * 1024, help="Cap on the AGENTS.md text added to the instructions.").tag(config=True)

    # provided by the host class
    _loop: Any
    tools: dict[str, Any]
    instructions: str

    def _init_project(self) -> None:
        #: MCP tool servers: configured by ``mcp_servers`` and ``%agent mcp add``.
        self.mcp = McpManager(self._loop)
        self._mcp_added: dict[str, McpServerConfig] = {}
        self._mcp_removed: set[str] = set()
        #: Where AGENTS.md discovery starts (the notebook's directory); None = the current directory.
        self.project_dir: str | None = None
        if self.mcp_servers or self.mcp_codex_config:
            self._mcp_apply(wait=False)  # e.g. from ipython_config.py: start in the background

    # -- MCP ------------------------------------------------------------------------------------

    @observe("mcp_servers", "mcp_codex_config")
    def _mcp_config_changed(self, change: dict[str, Any]) -> None:
        if getattr(self, "mcp", None) is not None:  # not during __init__
            self._mcp_apply(wait=not self._loop.in_loop())

    def mcp_configs(self) -> list[McpServerConfig]:
        """The effective MCP servers: codex's (opt-in), then ``mcp_servers``, then ``%agent mcp add`` (last wins)."""
        configs: dict[str, McpServerConfig] = {}
        problems: list[str] = []
        if self.mcp_codex_config:
            found, problems = read_codex_servers()
            configs.update((c.name, c) for c in found)
        for name, entry in self.mcp_servers.items():
            try:
                configs[name] = McpServerConfig.from_dict(name, entry)
            except ValueError as exc:
                problems.append(str(exc))
        configs.update(self._mcp_added)
        self.mcp.problems = problems
        return [c for name, c in configs.items() if name not in self._mcp_removed]

    def _mcp_apply(self, wait: bool) -> None:
        """Make the servers match the configuration. Waiting (bounded by the startup timeouts), their
        tools are registered at once, so ``%agent approve ... mcp__S__T`` works before the first turn."""
        configs = self.mcp_configs()
        if not wait:
            self.mcp.configure(configs)
            return
        self.mcp.configure(configs, wait=max((c.startup_timeout for c in configs), default=0) + 15)
        self._loop.run_sync(self._refresh_mcp_tools(), timeout=10)

    async def _refresh_mcp_tools(self) -> None:
        self._set_mcp_tools(self.mcp.current_tools())  # on the agent loop: turns read self.tools there

    def add_mcp_server(self, name: str, *, wait: bool = True, **entry: Any) -> McpServerConfig:
        """Add (or replace) an MCP server, e.g. ``add_mcp_server("fs", command="npx", args=[...])``;
        waits until it is ready or failed (``%agent mcp list`` tells which). Raises ``ValueError`` on bad entries."""
        config = McpServerConfig.from_dict(name, entry, source="%agent mcp add")
        self._mcp_added[name] = config
        self._mcp_removed.discard(name)
        self._mcp_apply(wait)
        return config

    def remove_mcp_server(self, name: str, *, wait: bool = True) -> None:
        """Stop and forget MCP server ``name`` (from every source); raises ``KeyError`` when unknown."""
        known = name in self._mcp_added or name in self.mcp_servers or name in self.mcp.servers
        if not known:
            raise KeyError(f"no MCP server named {name!r}")
        self._mcp_added.pop(name, None)
        self._mcp_removed.add(name)  # also hides a server from codex's config
        if name in self.mcp_servers:
            self.mcp_servers = {k: v for k, v in self.mcp_servers.items() if k != name}
        self._mcp_apply(wait)

    async def _mcp_tools(self, emit: Callable[[ev.AgentEvent], None], turn_id: str) -> None:
        """Before a turn: the ready servers' tools replace the previous MCP tools; failures become notices."""
        tools, notices = await self.mcp.ready_tools()
        self._set_mcp_tools(tools)
        for message in notices:
            emit(ev.Notice(level="warning", message=message, turn_id=turn_id))

    def _set_mcp_tools(self, tools: list[McpTool]) -> None:
        for name in [n for n, t in self.tools.items() if isinstance(t, McpTool)]:
            del self.tools[name]
        for tool in tools:
            self.tools.setdefault(tool.name, tool)  # a user tool of the same name wins

    # -- AGENTS.md ------------------------------------------------------------------------------

    def instruction_parts(self) -> list[InstructionPart]:
        """The effective instructions, part by part: ``Agent.instructions`` then AGENTS.md files (nearest last)."""
        parts = [InstructionPart("Agent.instructions", self.instructions)]
        if self.project_instructions:
            start = Path(self.project_dir) if self.project_dir else Path.cwd()
            parts += project_parts(start, self.agents_md_max_bytes)
        return parts

    def effective_instructions(self) -> str:
        return assemble_instructions(self.instruction_parts())
