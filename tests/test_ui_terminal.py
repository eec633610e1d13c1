"""Terminal IPython (no kernel, no widgets): a ``%%agent`` cell prints a plain-text transcript."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

SETUP = """
import time
from jupyter_agent.testing import ScriptedServer
from jupyter_agent.testing.replies import web_search_reply
server = ScriptedServer().start()
server.add_response(web_search_reply("weather seattle", answer="It is *sunny* <today>.", headers={
    "openai-model": "gpt-5.2", "x-codex-primary-used-percent": "75", "x-codex-primary-window-minutes": "300",
    "x-codex-primary-reset-at": str(int(time.time()) + 3600)}))
%load_ext jupyter_agent
%agent connect --base-url $server.base_url --provider compatible --model gpt-5.3-codex --transport sse
"""


def test_agent_cell_in_terminal_ipython_prints_plain_text(tmp_path: Path) -> None:
    # IPython runs the cells of an .ipynb file given on its command line one by one, like typed input.
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(SETUP),
            nbformat.v4.new_code_cell("%%agent\nWhat is the weather in Seattle?"),
            nbformat.v4.new_code_cell("%%agent --transport pigeon\nhello"),
            nbformat.v4.new_code_cell(
                "print('history:', get_ipython().run_line_magic('agent', 'history'))\nserver.stop()"
            ),
        ]
    )
    path = tmp_path / "terminal.ipynb"
    nbformat.write(nb, path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    proc = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr + out
    assert "Traceback" not in out + proc.stderr
    expected = (
        "Warning: The server answered with model gpt-5.2 instead of the requested gpt-5.3-codex. "
        "Answers in this turn come from gpt-5.2.\n\n"
        "Searched weather seattle\n\n"
        "[Final answer]\n"
        "It is *sunny* <today>.\n\n" + "-" * 40 + "\n"
        "Tokens: 15 total (input 10, cached 0, output 5, reasoning 0)\n"
    )
    assert expected in out, out
    assert "Rate limits:\n  5h limit: [█████░░░░░░░░░░░░░░░] 25% left (resets " in out and "[low]" in out
    assert "UsageError: argument -t/--transport: invalid choice: 'pigeon'" in out
    assert "history: [user] What is the weather in Seattle?" in out
    # No widget placeholder, markup or escapes in a terminal.
    for noise in ("Agent turn (live view)", "<div", "**", "\\*", "&lt;", "\x1b["):
        assert noise not in out, (noise, out)
