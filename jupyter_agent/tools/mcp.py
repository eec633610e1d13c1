"""MCP tool servers: connections on the agent loop; their tools as ``FunctionTool``s are in ``mcp_tools.py``.

Each server runs in one long-lived task on the agent loop (``loop.py``): the SDK's transports and
``ClientSession`` are anyio context managers that must be entered and left by the same task. The
task connects, lists the tools (bounded by the server's ``startup_timeout``), then waits until the
server is removed or the kernel exits. Tool calls from turns go through the live session.

Nothing here raises into a turn: a server that does not start, a slow ``list_tools``, a crash in the
middle of a call or an error result all become the call's output text (and a notice), and the
server's state says what happened. Secret values from the configuration are redacted from every
text this module produces.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import importlib
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .mcp_config import McpServerConfig, redact
from .mcp_tools import McpTool, ToolOutput, convert_result, make_tools

log = logging.getLogger("jupyter_agent.mcp")

State = Literal["starting", "ready", "failed", "stopped", "disabled"]
STDERR_TAIL = 2_000


# --- one server -------------------------------------------------------------------------------


@dataclass
class McpServer:
    """One configured server: its state, its tools and the task that owns its connection."""

    config: McpServerConfig
    state: State = "starting"
    error: str | None = None
    tools: list[Any] = field(default_factory=list)  # mcp.types.Tool
    start_seconds: float | None = None
    calls: int = 0
    _session: Any = None
    _task: asyncio.Task[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _stderr: Any = None
    _function_tools: list[McpTool] | None = None

    def function_tools(self) -> list[McpTool]:
        """The tools as ``McpTool``s, kept while the server lives (so "Approve always" sticks)."""
        if self.state != "ready":
            return []
        if self._function_tools is None:
            self._function_tools = make_tools(self)
        return self._function_tools

    @property
    def name(self) -> str:
        return self.config.name

    def secrets(self) -> list[str]:
        return self.config.secrets()

    def start(self) -> None:
        """Start the connection task (on the running agent loop)."""
        if not self.config.enabled:
            self.state = "disabled"
            self._ready.set()
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mcp-{self.name}")

    async def wait_ready(self, timeout: float | None = None) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._ready.wait()), timeout)

    async def _run(self) -> None:
        from mcp import ClientSession

        t0 = time.perf_counter()
        self.state, self.error = "starting", None
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                session = await stack.enter_async_context(ClientSession(read, write))
                async with asyncio.timeout(self.config.startup_timeout):
                    await session.initialize()
                    self.tools = await _list_all_tools(session)
                if any(t.output_schema for t in self.tools):
                    # The SDK validates results with jsonschema, imported on the first call: import it
                    # in a worker thread now, or that call blocks the agent loop for most of a second.
                    await asyncio.to_thread(importlib.import_module, "jsonschema.validators")
                self._session = session
                self.start_seconds = time.perf_counter() - t0
                self.state = "ready"
                self._ready.set()
                await self._stop.wait()
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
        except BaseException as exc:  # noqa: BLE001 - a failed start is a state: anyio BaseExceptionGroups, OSError, MCPError
            if isinstance(_innermost(exc), TimeoutError):
                self._fail(f"no answer to initialize/list_tools within {self.config.startup_timeout:g} s")
            else:
                self._fail(f"did not start: {_describe(exc)}")
        finally:
            self._session = None
            if self._stop.is_set():
                self.state = "stopped"
            elif self.state == "ready":
                self._fail("the connection closed")
            self._ready.set()
            if self._stderr is not None:
                self._stderr.close()

    def _fail(self, message: str) -> None:
        tail = self.stderr_tail()
        self.state = "failed"
        self.error = redact(message + (f"; stderr: {tail}" if tail else ""), self.secrets())
        log.info("MCP server %s failed: %s", self.name, self.error)

    @contextlib.asynccontextmanager
    async def _transport(self) -> Any:
        cfg = self.config
        if cfg.command:
            from mcp import StdioServerParameters, stdio_client

            params = StdioServerParameters(command=cfg.command, args=list(cfg.args), env=dict(cfg.env), cwd=cfg.cwd)
            self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
            async with stdio_client(params, errlog=self._stderr) as streams:
                yield streams
        else:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            timeout = httpx2.Timeout(max(cfg.startup_timeout, 5.0), read=max(cfg.tool_timeout, 30.0))
            async with create_mcp_http_client(headers=dict(cfg.headers), timeout=timeout) as client:
                async with streamable_http_client(cfg.url or "", http_client=client) as streams:
                    yield streams

    def stderr_tail(self) -> str:
        f = self._stderr
        if f is None or f.closed:
            return ""
        try:
            f.flush()
            f.seek(0)
            text = f.read()[-STDERR_TAIL:]
        except (OSError, ValueError):
            return ""
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        return redact(lines[-1].strip() if lines else "", self.secrets())

    async def call(self, tool: str, arguments: dict[str, Any]) -> tuple[ToolOutput, bool]:
        """Call ``tool``; every failure is an output text, never an exception (cancellation aside)."""
        session = self._session
        if session is None or self.state != "ready":
            why = self.error or self.state
            return f"MCP server {self.name} is not available ({why}); the tool was not called.", True
        self.calls += 1
        try:
            result = await asyncio.wait_for(session.call_tool(tool, arguments), self.config.tool_timeout)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return f"MCP server {self.name}: {tool} gave no result within {self.config.tool_timeout:g} s.", True
        except BaseException as exc:  # noqa: BLE001 - any failure is the tool's output (anyio BaseExceptionGroups too)
            text = _describe(exc)
            if "closed" in text.lower() or isinstance(exc, (OSError, EOFError)):
                self._fail(f"the connection closed during a call to {tool}")
                self._function_tools = None
                self._stop_after_crash()
                return redact(f"MCP server {self.name} stopped during the call to {tool}: {text}", self.secrets()), True
            return redact(f"MCP server {self.name}: {tool} failed: {text}", self.secrets()), True
        return convert_result(result, self.secrets())

    async def check(self, timeout: float = 5.0) -> None:
        """Ping a ready server: one that died while idle is marked failed before its tools are offered."""
        session = self._session
        if session is None or self.state != "ready":
            return
        try:
            await asyncio.wait_for(session.send_ping(), timeout)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - however the ping fails, the server is gone
            self._fail(f"no answer to a ping ({_describe(exc)})")
            self._function_tools = None
            self._stop_after_crash()

    def _stop_after_crash(self) -> None:
        """The process or connection is gone: end the connection task (its state stays ``failed``)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        task = self._task
        if task is None or task.done():
            self.state = "stopped" if self.state != "failed" else self.state
            return
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=timeout)


async def _list_all_tools(session: Any) -> list[Any]:
    from mcp.types import PaginatedRequestParams

    tools: list[Any] = []
    cursor: str | None = None
    for _page in range(100):
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        result = await session.list_tools(params=params)
        tools.extend(result.tools)
        cursor = result.next_cursor
        if not cursor:
            break
    return tools


def _innermost(exc: BaseException) -> BaseException:
    """anyio wraps failures in exception groups: the first leaf."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    """The innermost useful message of ``exc``."""
    exc = _innermost(exc)
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not text.startswith(type(exc).__name__) else text


# --- the manager --------------------------------------------------------------------------------


class McpManager:
    """The agent's MCP servers: reconciles configuration with running connections, on the agent loop.

    ``configure`` and ``add``/``remove`` may be called from any thread; the work happens on the
    agent loop. Servers close on ``remove``, on reconfiguration and at interpreter exit.
    """

    def __init__(self, agent_loop: Any) -> None:
        self._loop = agent_loop
        self.servers: dict[str, McpServer] = {}
        self.problems: list[str] = []
        self._atexit = False
        self._reported: dict[str, tuple[State, str | None]] = {}

    # thread-safe entry points
    def configure(self, configs: list[McpServerConfig], wait: float | None = None) -> None:
        """Make the running servers match ``configs`` (unchanged ones keep running)."""
        future = self._loop.submit(self._reconcile(configs))
        if wait is not None:
            try:
                future.result(wait)
            except concurrent.futures.TimeoutError:  # still starting: %agent mcp list says so
                log.info("MCP servers still starting after %.0f s", wait)

    def restart(self, name: str, wait: float | None = None) -> None:
        future = self._loop.submit(self._restart(name))
        if wait is not None:
            future.result(wait)

    def close_sync(self, timeout: float = 5.0) -> None:
        """Stop every server (interpreter exit, kernel shutdown)."""
        if not self.servers:
            return
        try:
            self._loop.run_sync(self.aclose(), timeout=timeout)
        except Exception:  # at interpreter exit: best effort, logged
            log.debug("closing MCP servers failed", exc_info=True)

    # on the agent loop
    async def _reconcile(self, configs: list[McpServerConfig]) -> None:
        wanted = {c.name: c for c in configs}
        for name in list(self.servers):
            cfg = wanted.get(name)
            server = self.servers[name]
            if cfg is None or cfg.fingerprint() != server.config.fingerprint() or cfg.enabled != server.config.enabled:
                del self.servers[name]
                self._reported.pop(name, None)
                await server.stop()
            else:
                server.config = cfg  # approvals, tool filters, timeouts: no restart needed
                server._function_tools = None
        for name, cfg in wanted.items():
            if name not in self.servers:
                self._start(cfg)
        deadline = max((c.startup_timeout for c in configs), default=0) + 5
        await asyncio.gather(*(s.wait_ready(deadline) for s in self.servers.values()))

    async def _restart(self, name: str) -> None:
        server = self.servers.pop(name, None)
        if server is None:
            raise KeyError(name)
        await server.stop()
        self._reported.pop(name, None)
        self._start(server.config)
        await self.servers[name].wait_ready(server.config.startup_timeout + 5)

    def _start(self, cfg: McpServerConfig) -> None:
        server = McpServer(cfg)
        self.servers[cfg.name] = server
        server.start()
        if not self._atexit:
            self._atexit = True
            atexit.register(self.close_sync)

    async def aclose(self) -> None:
        servers, self.servers = list(self.servers.values()), {}
        await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)

    async def ready_tools(self) -> tuple[list[McpTool], list[str]]:
        """Tools of the ready servers (waiting for those still starting) and notices of state changes."""
        servers = list(self.servers.values())
        await asyncio.gather(*(s.wait_ready(s.config.startup_timeout + 5) for s in servers))
        await asyncio.gather(*(s.check() for s in servers))
        tools: list[McpTool] = []
        notices: list[str] = []
        for server in servers:
            if server.state == "ready":
                tools.extend(server.function_tools())
            key = (server.state, server.error)
            if self._reported.get(server.name) != key:
                self._reported[server.name] = key
                if server.state == "failed":
                    notices.append(
                        f"MCP server {server.name} is unavailable: {server.error}. "
                        f"Its tools are left out; %agent mcp list shows its state, %agent mcp restart {server.name} retries."
                    )
        return tools, notices

    def secret_values(self) -> list[str]:
        return [s for server in list(self.servers.values()) for s in server.secrets()]

    def current_tools(self) -> list[McpTool]:
        """Tools of the servers that are ready now (no waiting)."""
        return [t for server in list(self.servers.values()) for t in server.function_tools()]

    def describe(self, policy: Callable[[str], str | None] | None = None, only: str | None = None) -> str:
        """``%agent mcp list``: servers, state, tools and their approval policy (secret-free)."""
        if not self.servers and not self.problems:
            return (
                "No MCP servers. Add one with %agent mcp add NAME -- COMMAND ARGS... or %agent mcp add NAME --url URL"
            )
        rows = []
        for server in list(self.servers.values()):
            if only is not None and server.name != only:
                continue
            cfg = server.config
            head = f"{server.name} [{cfg.transport}] {server.state}"
            if server.state == "ready" and server.start_seconds is not None:
                head += f" (started in {server.start_seconds:.2f}s, {server.calls} call(s))"
            rows.append(head)
            rows.append(f"  {cfg.describe()}")
            if cfg.source != "Agent.mcp_servers":
                rows.append(f"  from {cfg.source}")
            if server.error:
                rows.append(f"  error: {server.error}")
            for tool in server.function_tools():
                approval = (policy(tool.name) if policy else None) or tool.approval
                rows.append(f"  - {tool.name}: {approval}, {tool.description.splitlines()[0][:80]}")
        rows.extend(f"config problem: {p}" for p in self.problems)
        return "\n".join(rows)
