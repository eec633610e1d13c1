"""Helpers for the MCP tests: the demo MCP server (``jupyter_agent.testing.mcp_server``) as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEMO = [sys.executable, "-m", "jupyter_agent.testing.mcp_server"]


def stdio_entry(*extra: str, **kw: object) -> dict[str, object]:
    """An ``Agent.mcp_servers`` entry that starts the demo server over stdio."""
    return {"command": DEMO[0], "args": [*DEMO[1:], *extra], **kw}


@contextmanager
def http_demo(*extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """The demo server over streamable HTTP on 127.0.0.1; yields its URL."""
    proc = subprocess.Popen(
        [*DEMO, "--http", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False
