"""``%agent mcp add`` and a ``%%agent`` cell using the server's tool, in a real kernel; the server
process ends when the kernel shuts down; ``%agent instructions`` and ``%agent status`` name AGENTS.md."""

from __future__ import annotations

import sys

import pytest

from jupyter_agent.testing.replies import text_reply

from .mcp_support import wait_gone
from .tool_support import calls_reply, outputs

pytestmark = pytest.mark.kernel


def test_mcp_add_and_a_cell_that_uses_the_tool(tmp_path, server, start_kernel):
    (tmp_path / ".git").mkdir()
    (tmp_path / "AGENTS.md").write_text("Always cite the tool you used.")
    pid_file = tmp_path / "mcp.pid"
    driver = start_kernel(server, cwd=tmp_path, env={"JUPYTER_AGENT_HISTORY_DIR": str(tmp_path / "history")})
    try:
        added = driver.run(
            f"%agent mcp add demo --approval auto -- {sys.executable} -m jupyter_agent.testing.mcp_server "
            f"--pid-file {pid_file}"
        )
        assert added.status == "ok", added.text
        assert "demo [stdio] ready" in added.text and "mcp__demo__lookup: auto" in added.text
        assert "mcp__demo__add: auto" in added.text
        listed = driver.run("%agent mcp list")
        assert "demo [stdio] ready" in listed.text
        server.add_response(calls_reply(("mcp__demo__lookup", {"topic": "saturn"}, "c1")))
        server.add_response(text_reply("Saturn has 274 moons (from mcp__demo__lookup).", phase="final_answer"))
        cell = driver.run("%%agent\nHow many moons does Saturn have?", timeout=90)
        assert cell.status == "ok", cell.text
        assert "Saturn has 274 moons (from mcp__demo__lookup)." in cell.text
        assert "mcp__demo__lookup" in cell.text  # the tool call is shown in the cell
        first, second = server.requests[-2].json, server.requests[-1].json
        assert "mcp__demo__lookup" in {t["name"] for t in first["tools"] if t["type"] == "function"}
        assert "Always cite the tool you used." in first["instructions"]
        assert outputs(second)["c1"].startswith("Saturn has 274 known moons")
        instructions = driver.run("%agent instructions")
        assert f"--- {tmp_path / 'AGENTS.md'}" in instructions.text and "Always cite" in instructions.text
        status = driver.run("%agent status")
        assert f"AGENTS.md:  {tmp_path / 'AGENTS.md'}" in status.text and "MCP:        demo (ready)" in status.text
        bad = driver.run("%agent mcp add broken --url ftp://x")
        assert "UsageError" in bad.text and "http://" in bad.text
        usage = driver.run("%agent mcp add nothing")
        assert "UsageError" in usage.text
        pid = int(pid_file.read_text())
    finally:
        # A clean shutdown (shutdown_request), as JupyterLab's "Shut Down Kernel" does.
        driver.kc.stop_channels()
        driver.km.shutdown_kernel(now=False)
    assert wait_gone(pid, 15), "the MCP server outlived the kernel"
