"""``%agent mcp ...`` and ``%agent instructions``: MCP tool servers and AGENTS.md, apart from IPython.

Kept out of ``magics.py``, which only dispatches ``_cmd_mcp`` / ``_cmd_instructions`` here; the
status lines (``project_status``) are with the other status text in ``magic_commands.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .magic_commands import Parser, UsageError
from .ui.text import TextOutput

if TYPE_CHECKING:
    from .agent import Agent


def _mcp_add_parser() -> Parser:
    p = Parser(prog="%agent mcp add", add_help=False)
    p.add_argument("name")
    p.add_argument("--url")
    p.add_argument("--header", action="append", default=[], metavar="K=V")
    p.add_argument("--bearer-token-env", metavar="VAR")
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--env-var", action="append", default=[], metavar="NAME")
    p.add_argument("--cwd")
    p.add_argument("--approval", choices=["ask", "auto", "never"])
    p.add_argument("--startup-timeout", type=float)
    p.add_argument("--tool-timeout", type=float)
    return p


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} must be KEY=VALUE")
        out[key] = val
    return out


def mcp_command(agent: Agent, args: list[str]) -> Any:
    """``%agent mcp add|list|remove|restart``."""
    usage = "usage: %agent mcp add NAME -- CMD ARGS... | add NAME --url URL | list | remove NAME | restart NAME"
    if not args or args[0] == "list":
        return TextOutput(agent.mcp.describe(agent.tool_approval.get))
    sub, rest = args[0], args[1:]
    if sub == "add":
        command: list[str] = []
        if "--" in rest:
            cut = rest.index("--")
            rest, command = rest[:cut], rest[cut + 1 :]
        opts = _mcp_add_parser().parse_args(rest)
        if bool(command) == bool(opts.url):
            raise UsageError("give a command after -- (stdio) or --url URL (streamable HTTP)\n" + usage)
        entry: dict[str, Any] = {}
        if command:
            entry.update(command=command[0], args=command[1:], env=_pairs(opts.env, "--env"), env_vars=opts.env_var)
            if opts.cwd:
                entry["cwd"] = opts.cwd
        else:
            entry.update(url=opts.url, headers=_pairs(opts.header, "--header"))
            if opts.bearer_token_env:
                entry["bearer_token_env_var"] = opts.bearer_token_env
        for key, value in (
            ("approval", opts.approval),
            ("startup_timeout", opts.startup_timeout),
            ("tool_timeout", opts.tool_timeout),
        ):
            if value is not None:
                entry[key] = value
        try:
            agent.add_mcp_server(opts.name, **entry)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return TextOutput(agent.mcp.describe(agent.tool_approval.get, only=opts.name))
    if sub in ("remove", "restart") and len(rest) == 1:
        try:
            if sub == "remove":
                agent.remove_mcp_server(rest[0])
                return TextOutput(f"Removed MCP server {rest[0]}.")
            agent.mcp.restart(rest[0], wait=60.0)
        except KeyError:
            raise UsageError(f"no MCP server named {rest[0]!r}") from None
        return TextOutput(agent.mcp.describe(agent.tool_approval.get, only=rest[0]))
    raise UsageError(usage)


def instructions_text(agent: Agent) -> str:
    """``%agent instructions``: each part with its source, then what is sent."""
    rows = []
    for part in agent.instruction_parts():
        size = len(part.text.encode("utf-8"))
        note = " (truncated: over Agent.agents_md_max_bytes)" if part.truncated else ""
        rows.append(f"--- {part.source} ({size} bytes){note}\n{part.text}")
    if len(rows) == 1:
        rows.append("(no AGENTS.md between the notebook's directory and the repository root or home)")
    return "\n\n".join(rows)
