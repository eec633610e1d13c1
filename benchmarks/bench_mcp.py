"""MCP figures: server start time (spawn + initialize + list_tools) and per-call overhead, stdio and HTTP.

Run: ``.venv/bin/python -m benchmarks.bench_mcp``. The demo server (``jupyter_agent.testing.mcp_server``)
answers ``add`` at once, so a call's time is the client + transport + server round trip. Calls go
through ``McpTool.invoke`` on the agent loop, as a turn makes them.
"""

from __future__ import annotations

import statistics
import time

from jupyter_agent.loop import get_agent_loop
from jupyter_agent.testing.mcp_server import command, spawn_http
from jupyter_agent.tools.mcp import McpManager
from jupyter_agent.tools.mcp_config import McpServerConfig

STARTS = 5
CALLS = 200


def _measure(entry: dict, label: str) -> None:
    loop = get_agent_loop()
    starts = []
    for _ in range(STARTS):
        manager = McpManager(loop)
        t0 = time.perf_counter()
        manager.configure([McpServerConfig.from_dict("bench", entry)], wait=60)
        starts.append(time.perf_counter() - t0)
        assert manager.servers["bench"].state == "ready", manager.describe()
        manager.close_sync()
    manager = McpManager(loop)
    manager.configure([McpServerConfig.from_dict("bench", entry)], wait=60)
    tool = next(t for t in manager.current_tools() if t.remote_name == "add")

    async def calls() -> list[float]:
        out = []
        for i in range(CALLS):
            t0 = time.perf_counter()
            result, is_error = await tool.invoke(f'{{"a": {i}, "b": 1}}')
            out.append(time.perf_counter() - t0)
            assert result == str(i + 1) and not is_error, result
        return out

    times = loop.run_sync(calls(), timeout=300)
    manager.close_sync()
    ms = sorted(t * 1000 for t in times[10:])  # first calls warm the server's worker threads
    print(
        f"{label}: start median {statistics.median(starts):.3f} s (min {min(starts):.3f}, max {max(starts):.3f}); "
        f"call median {statistics.median(ms):.2f} ms, p95 {ms[int(len(ms) * 0.95)]:.2f} ms, "
        f"first call {times[0] * 1000:.1f} ms ({CALLS} calls)"
    )


def main() -> None:
    cmd = command()
    _measure({"command": cmd[0], "args": cmd[1:]}, "stdio")
    url, proc = spawn_http()
    try:
        _measure({"url": url}, "streamable HTTP (server already running)")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
