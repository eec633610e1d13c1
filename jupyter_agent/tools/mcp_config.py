"""MCP server configuration: one validated, immutable entry per server.

Entries come from ``Agent.mcp_servers`` (traitlet), ``%agent mcp add`` and, when
``Agent.mcp_codex_config`` is on, the ``[mcp_servers.*]`` tables of ``~/.codex/config.toml``. The
keys follow codex's so one dict works in both places. Secret values (env values, header values,
tokens read from the environment) are resolved here and never rendered: ``describe()`` names keys only.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit, urlunsplit

Approval = Literal["ask", "auto", "never"]
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_APPROVALS = ("ask", "auto", "never")
REDACTED = "[REDACTED]"
#: Shorter values (``"1"``, ``"true"``) are too common to redact without mangling output.
MIN_SECRET_LEN = 6


@dataclass(frozen=True)
class McpServerConfig:
    """How to reach one MCP server (stdio command or streamable-HTTP URL) and how to treat its tools."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # secret values: never in a repr
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    approval: Approval = "ask"
    tool_approval: Mapping[str, Approval] = field(default_factory=dict)
    enabled_tools: tuple[str, ...] | None = None
    disabled_tools: tuple[str, ...] = ()
    startup_timeout: float = 10.0
    tool_timeout: float = 60.0
    enabled: bool = True
    source: str = "Agent.mcp_servers"

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "http"

    def secrets(self) -> list[str]:
        """Values to keep out of every output, log and history item."""
        values = list(self.env.values()) + list(self.headers.values())
        for value in self.headers.values():  # "Bearer TOKEN": the token alone is a secret too
            head, _, tail = value.partition(" ")
            if tail and head.lower() in ("bearer", "basic", "token"):
                values.append(tail)
        return [v for v in values if len(v) >= MIN_SECRET_LEN]

    def describe(self) -> str:
        """A one-line, secret-free description (env and header names only)."""
        if self.command:
            text = " ".join([self.command, *self.args])
            if self.env:
                text += f"  (env: {', '.join(sorted(self.env))})"
            if self.cwd:
                text += f"  (cwd: {self.cwd})"
        else:
            text = safe_url(self.url or "")
            if self.headers:
                text += f"  (headers: {', '.join(sorted(self.headers))})"
        return redact(text, self.secrets())

    def tool_enabled(self, tool: str) -> bool:
        if self.enabled_tools is not None and tool not in self.enabled_tools:
            return False
        return tool not in self.disabled_tools

    def approval_for(self, tool: str) -> Approval:
        return self.tool_approval.get(tool, self.approval)

    def fingerprint(self) -> tuple[Any, ...]:
        """What a running server depends on: a change restarts it."""
        return (
            self.command,
            self.args,
            tuple(sorted(self.env.items())),
            self.cwd,
            self.url,
            tuple(sorted(self.headers.items())),
            self.startup_timeout,
        )

    @classmethod
    def from_dict(
        cls,
        name: str,
        data: Mapping[str, Any],
        *,
        source: str = "Agent.mcp_servers",
        environ: Mapping[str, str] | None = None,
    ) -> McpServerConfig:
        """Validate one entry (codex keys accepted); raises ``ValueError`` naming the problem, never a value."""
        environ = os.environ if environ is None else environ
        if not _NAME.match(name):
            raise ValueError(f"MCP server name {name!r}: use letters, digits, '_' or '-' (at most 40)")
        if not isinstance(data, Mapping):
            raise ValueError(f"MCP server {name}: the entry must be a dict")
        command, url = data.get("command"), data.get("url")
        if bool(command) == bool(url):
            raise ValueError(f"MCP server {name}: give either 'command' (stdio) or 'url' (streamable HTTP)")
        env = _str_map(name, "env", data.get("env"))
        for var in _str_list(name, "env_vars", data.get("env_vars")):
            if var in environ:
                env.setdefault(var, environ[var])
        headers = _str_map(name, "headers", data.get("headers", data.get("http_headers")))
        env_headers = _str_map(name, "env_headers", data.get("env_headers", data.get("env_http_headers")))
        for header, var in env_headers.items():
            if var not in environ:
                raise ValueError(f"MCP server {name}: environment variable {var} (header {header}) is not set")
            headers[header] = environ[var]
        token_var = data.get("bearer_token_env_var")
        if token_var:
            if token_var not in environ:
                raise ValueError(f"MCP server {name}: environment variable {token_var} is not set")
            headers["Authorization"] = f"Bearer {environ[token_var]}"
        approval = data.get("approval", "ask")
        if approval not in _APPROVALS:
            raise ValueError(f"MCP server {name}: approval must be ask, auto or never")
        tool_approval = _str_map(name, "tool_approval", data.get("tool_approval"))
        if any(v not in _APPROVALS for v in tool_approval.values()):
            raise ValueError(f"MCP server {name}: tool_approval values must be ask, auto or never")
        enabled_tools = data.get("enabled_tools")
        if url is not None:
            scheme = urlsplit(str(url)).scheme
            if scheme not in ("http", "https"):
                raise ValueError(f"MCP server {name}: url must be http:// or https://")
        return cls(
            name=name,
            command=str(command) if command else None,
            args=tuple(_str_list(name, "args", data.get("args"))),
            env=env,
            cwd=str(Path(str(data["cwd"])).expanduser()) if data.get("cwd") else None,
            url=str(url) if url else None,
            headers=headers,
            approval=approval,
            tool_approval=cast("dict[str, Approval]", tool_approval),  # values checked above
            enabled_tools=tuple(_str_list(name, "enabled_tools", enabled_tools)) if enabled_tools is not None else None,
            disabled_tools=tuple(_str_list(name, "disabled_tools", data.get("disabled_tools"))),
            startup_timeout=_seconds(name, data, "startup_timeout", 10.0),
            tool_timeout=_seconds(name, data, "tool_timeout", 60.0),
            enabled=bool(data.get("enabled", True)),
            source=source,
        )


def _seconds(name: str, data: Mapping[str, Any], key: str, default: float) -> float:
    value = data.get(key, data.get(f"{key}_sec", default))
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"MCP server {name}: {key} must be a number of seconds") from None
    if seconds <= 0:
        raise ValueError(f"MCP server {name}: {key} must be positive")
    return seconds


def _str_map(name: str, key: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"MCP server {name}: {key} must be a dict of strings")
    return {k: str(v) for k, v in value.items()}


def _str_list(name: str, key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"MCP server {name}: {key} must be a list of strings")
    return [str(v) for v in value]


def redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LEN:
            text = text.replace(secret, REDACTED)
    return text


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment (where tokens hide)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid url)"
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def codex_config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    home = environ.get("CODEX_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".codex") / "config.toml"


def read_codex_servers(path: Path | None = None) -> tuple[list[McpServerConfig], list[str]]:
    """``[mcp_servers.*]`` from codex's config: (valid entries, problems). A missing file is no problem."""
    path = path or codex_config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], []
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return [], [f"{path}: {type(exc).__name__}"]
    configs, problems = [], []
    for name, entry in (data.get("mcp_servers") or {}).items():
        try:
            configs.append(McpServerConfig.from_dict(name, entry, source=str(path)))
        except ValueError as exc:
            problems.append(str(exc))
    return configs, problems
