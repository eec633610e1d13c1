"""What ``%agent`` and ``%%agent`` accept and what their text commands print, apart from IPython.

Parsing (argparse, errors as ``UsageError`` so a bad line shows usage, not a traceback), the
per-cell options, ``HELP``, and the ``status``/``history`` texts. ``magics.py`` dispatches
(``%agent mcp`` and ``%agent instructions`` to ``project_magics.py``).
"""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING, Any

from .ui.context_gauge import context_line, totals_line
from .ui.gauges import gauges_text

if TYPE_CHECKING:
    from .agent import Agent


class UsageError(Exception):
    """A bad ``%agent`` command line; shown as a usage message, not a traceback."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}\n\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise UsageError(message or self.format_help())


def cell_parser() -> Parser:
    p = Parser(prog="%%agent", add_help=False, description="Ask the agent; the cell body is the prompt.")
    p.add_argument("-m", "--model", help="model for this cell")
    p.add_argument("-t", "--transport", choices=["auto", "sse", "websocket"], help="transport for this cell")
    p.add_argument("--reasoning", choices=["minimal", "low", "medium", "high"], help="reasoning effort for this cell")
    p.add_argument("words", nargs="*", help="prompt text (the cell body is appended)")
    return p


def parse_cell_line(line: str) -> argparse.Namespace:
    try:
        parts = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"cannot parse options: {exc}") from None
    return cell_parser().parse_args(parts)


def cell_prompt(opts: argparse.Namespace, body: str) -> str:
    head = " ".join(opts.words).strip()
    body = body.strip("\n")
    return f"{head}\n{body}".strip() if head and body.strip() else (head or body).strip()


def cell_options(opts: argparse.Namespace) -> dict[str, Any]:
    """Per-cell option overrides (``--model``, ``--transport``, ``--reasoning``), restored when the cell ends."""
    pairs = (("model", opts.model), ("transport", opts.transport), ("reasoning_effort", opts.reasoning))
    return {k: v for k, v in pairs if v}


# --- %agent line commands ------------------------------------------------------------------

HELP = """\
%%agent [-m MODEL] [-t auto|sse|websocket] [--reasoning EFFORT] [prompt words]
    Ask the agent. The cell body is the prompt; answers stream into the cell.

%agent help                 this help
%agent status               provider, model, transport, session and rate limits
%agent usage                usage/limits from the provider's usage endpoint, as gauges
%agent limits               a rate-limit gauge widget that keeps updating (pin it)
%agent model NAME           use another model from now on
%agent transport auto|sse|websocket
%agent connect [--base-url URL] [--provider openai|azure|compatible|local]
               [--api-key-env VAR] [--model NAME] [--transport T]
%agent reset                start a new conversation (the old one stays saved)
%agent resume [ID]          continue this notebook's last saved conversation (e.g. after a restart)
%agent conversations        this notebook's saved conversations
%agent history              the conversation so far (compactions marked)
%agent compact              replace older history by a summary now (also automatic at
                            Agent.compact_threshold of the context window)
%agent fix [instructions]   explain the last exception and propose the fix: an edit of the
                            failing cell you approve (diff shown; JupyterLab or Notebook 7
                            with the extension), else the corrected code to paste
%agent tools                tools and their approval policies
%agent approve ask|auto|never [TOOL]
                            approval policy (default: every code-running tool)
%agent websearch live|cached|disabled|default
%agent mcp add NAME [--approval ask|auto|never] [--env K=V] [--env-var NAME] [--cwd DIR] -- CMD ARGS...
%agent mcp add NAME --url URL [--header K=V] [--bearer-token-env VAR] [--approval P]
%agent mcp list | remove NAME | restart NAME
                            MCP tool servers (tools appear as mcp__NAME__TOOL; approval default ask)
%agent instructions         the effective instructions and where each part comes from (AGENTS.md)
%agent voice                realtime voice conversation widget
Configuration: %config Agent.model = "gpt-5.2" (see %config Agent), ipython_config.py,
environment variables OPENAI_API_KEY / OPENAI_BASE_URL / AZURE_OPENAI_API_KEY /
AZURE_OPENAI_ENDPOINT (a .env file in the working directory is read too)."""


def status_text(agent: Agent) -> str:
    provider = agent.resolved_provider()
    lines = [
        f"Provider:   {provider.describe()}",
        f"Model:      {agent.model_name}",
        f"Transport:  {agent.transport}",
    ]
    info = agent.session_info()
    if info is not None:
        active, reason = info.transport, info.http_fallback_reason
        if active != agent.transport or reason:
            lines[-1] += f" (in use: {'HTTP+SSE' if active == 'sse' else 'WebSocket'}"
            lines[-1] += f"; fell back from WebSocket: {reason})" if reason else ")"
        lines.append(f"Session:    {info.conversation_id}")
        if info.server_model:
            lines.append(f"Server model: {info.server_model}")
    lines.append(f"Turns:      {len(agent.turns)}; history items: {len(agent.history)}")
    lines.append(f"Web search: {agent.web_search_mode(provider)}")
    lines.extend(project_status(agent))
    lines.append(context_line(agent.context_event(agent.window_for(provider, agent.model_name))))
    lines.append(totals_line(agent.session_usage))
    lines.append("")
    lines.append(gauges_text(agent.rate_limits))
    return "\n".join(lines)


def project_status(agent: Agent) -> list[str]:
    """Status lines for AGENTS.md files and MCP servers (only when there are some)."""
    lines = []
    files = [p.source for p in agent.instruction_parts()[1:]]
    if files:
        lines.append(f"AGENTS.md:  {', '.join(files)}")
    if agent.mcp.servers:
        states = ", ".join(f"{s.name} ({s.state})" for s in list(agent.mcp.servers.values()))
        lines.append(f"MCP:        {states}")
    return lines


def history_text(agent: Agent) -> str:
    rows = []
    for msg in agent.transcript():
        label = msg["role"] + (f" ({msg['phase']})" if msg.get("phase") else "")
        rows.append(f"[{label}] {msg['text']}")
    return "\n\n".join(rows) or "(no conversation yet)"


def connect_parser() -> Parser:
    p = Parser(prog="%agent connect", add_help=False)
    p.add_argument("--base-url")
    p.add_argument("--provider", choices=["openai", "azure", "compatible", "local"])
    p.add_argument("--api-key-env", help="name of the environment variable holding the key")
    p.add_argument("--model")
    p.add_argument("--transport", choices=["auto", "sse", "websocket"])
    return p
