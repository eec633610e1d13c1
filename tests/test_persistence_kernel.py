"""In a real ipykernel: the agent inspects ``df`` and runs code on the kernel's main thread, the
conversation is saved as it happens, and after a kernel restart ``%agent resume`` continues it."""

from __future__ import annotations

import json

import pytest

from jupyter_agent.testing.replies import text_reply

from .tool_support import calls_reply, outputs

pytestmark = pytest.mark.kernel


def _env(tmp_path):
    return {
        "JUPYTER_AGENT_HISTORY_DIR": str(tmp_path / "history"),
        "JPY_SESSION_NAME": str(tmp_path / "analysis.ipynb"),
    }


@pytest.fixture
def _start(start_kernel):
    """A kernel for the notebook ``tmp_path/analysis.ipynb``, connected to the scripted server."""
    return lambda tmp_path, server: start_kernel(server, cwd=tmp_path, env=_env(tmp_path))


def test_tools_in_the_kernel_and_resume_after_restart(tmp_path, server, _start):
    kernel = _start(tmp_path, server)
    try:
        assert kernel.run("import pandas as pd\ndf = pd.DataFrame({'x': [1.0, 2.0, 6.0]})").status == "ok"
        server.add_response(calls_reply(("describe_variable", {"name": "df"}, "c1"), preamble="Looking at df."))
        server.add_response(
            calls_reply(
                (
                    "run_python",
                    {"code": "import threading\nm = df['x'].mean()\nprint(threading.current_thread().name)\nm"},
                    "c2",
                )
            )
        )
        server.add_response(text_reply("The mean of x is 3.0.", phase="final_answer"))
        approve = kernel.run("%agent approve auto run_python")
        assert "Approval policy auto for: run_python" in approve.text
        cell = kernel.run("%%agent\nwhat is the mean of column x in df?", timeout=60)
        assert cell.status == "ok", cell.text
        assert "The mean of x is 3.0." in cell.text
        assert "x    float64" in outputs(server.api_requests[1].json)["c1"]
        assert outputs(server.api_requests[2].json)["c2"] == "[stdout]\nMainThread\n[result]\nnp.float64(3.0)"
        assert "3.0" in kernel.run("print(m)").text  # the code ran in the user's namespace
        first_input = server.api_requests[2].json["input"]
        conv_id = kernel.run("print(a.conversation_id)").text.strip()
    finally:
        kernel.shutdown()

    kernel = _start(tmp_path, server)  # a new kernel process for the same notebook
    try:
        assert "(no conversation yet)" in kernel.run("print(M.history_text(a))").text
        resumed = kernel.run("%agent resume")
        assert resumed.status == "ok", resumed.text
        assert "Resumed the conversation started" in resumed.text
        assert "1 user message(s)" in resumed.text
        assert "Last question: what is the mean of column x in df?" in resumed.text
        assert "Last answer: The mean of x is 3.0." in resumed.text
        assert kernel.run("print(a.conversation_id)").text.strip() == conv_id
        transcript = json.loads(kernel.run("import json; print(json.dumps(a.transcript()))").text)
        assert transcript[0] == {"role": "user", "text": "what is the mean of column x in df?", "phase": None}
        assert transcript[-1] == {"role": "assistant", "text": "The mean of x is 3.0.", "phase": "final_answer"}
        server.add_response(text_reply("Yes, still 3.0.", phase="final_answer"))
        again = kernel.run("%%agent\nare you sure?", timeout=60)
        assert again.status == "ok" and "Yes, still 3.0." in again.text
        body = server.api_requests[-1].json
        assert body["input"][: len(first_input)] == first_input
        assert body["prompt_cache_key"] == conv_id
        assert body["input"][-1]["content"][0]["text"] == "are you sure?"
        reset = kernel.run(f"%agent reset\nprint(len(a.history), a.conversation_id != {conv_id!r})")
        assert "0 True" in reset.text
    finally:
        kernel.shutdown()


def test_kernel_interrupt_stops_code_the_agent_runs(tmp_path, server, _start):
    kernel = _start(tmp_path, server)
    marker = tmp_path / "tool-started"
    try:
        code = f"import time\nopen({str(marker)!r}, 'w').close()\ntime.sleep(30)\nfinished = True"
        server.add_response(calls_reply(("run_python", {"code": code}, "c1")))
        assert kernel.run("%agent approve auto").status == "ok"
        cell = kernel.run("%%agent\nsleep a while", timeout=30, interrupt_when=marker.exists)
        assert cell.interrupt_to_reply is not None and cell.interrupt_to_reply < 2.0, cell.interrupt_to_reply
        assert "interrupted" in cell.text.lower()
        state = kernel.run("print('finished' in globals(), [i['type'] for i in a.history])")
        assert "False ['message', 'function_call', 'function_call_output']" in state.text, state.text
        assert len(server.api_requests) == 1  # no follow-up request after the cancel
        server.add_response(text_reply("ok", phase="final_answer"))
        assert "ok" in kernel.run("%%agent\nnext").text  # the history is valid for the next turn
    finally:
        kernel.shutdown()


def test_tool_runs_on_the_idle_kernel_thread(tmp_path, server, _start):
    """A panel turn runs while no cell executes: the kernel's idle loop still runs the tool."""
    kernel = _start(tmp_path, server)
    try:
        server.add_response(
            calls_reply(("run_python", {"code": "import threading\nthreading.current_thread().name"}, "c1"))
        )
        server.add_response(text_reply("done", phase="final_answer"))
        started = kernel.run("a.set_approval('run_python', 'auto')\nh = a.start('which thread?', source='panel')")
        assert started.status == "ok", started.text
        assert server.wait_for(lambda: len(server.api_requests) >= 2, 20)  # the kernel is idle; nothing else executes
        assert outputs(server.api_requests[1].json) == {"c1": "[result]\n'MainThread'"}
        assert "0" in kernel.run("print(a.kernel_runner.fallbacks)").text
    finally:
        kernel.shutdown()


def test_tool_and_conversation_commands(tmp_path, server, _start):
    kernel = _start(tmp_path, server)
    try:
        tools = kernel.run("%agent tools").text
        assert "run_python: ask" in tools and "list_variables: auto" in tools and "web_search: disabled" in tools
        assert "UsageError: usage: %agent approve ask|auto|never [TOOL]" in kernel.run("%agent approve maybe").text
        assert "UsageError: no tool named 'nope'" in kernel.run("%agent approve auto nope").text
        assert "Approval policy never for: run_python" in kernel.run("%agent approve never").text
        assert "Web search: live" in kernel.run("%agent websearch live").text
        assert "UsageError" in kernel.run("%agent websearch sometimes").text
        assert "No saved conversation to resume" in kernel.run("%agent resume").text
        assert "No saved conversations" in kernel.run("%agent conversations").text
        assert "cannot resume" in kernel.run("%agent resume ../../etc").text
        server.add_response(text_reply("hi", phase="final_answer"))
        kernel.run("%%agent\nhello")
        listing = kernel.run("%agent conversations").text
        assert "(current)" in listing and "1 user message(s)" in listing
        assert "%agent resume [ID]" in kernel.run("%agent help").text
    finally:
        kernel.shutdown()


def test_auto_resume_from_config(tmp_path, server, start_kernel):
    """``c.Agent.auto_resume = True`` (ipython_config.py): the restarted kernel continues by itself."""
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text("c.Agent.auto_resume = True\n")
    env = {
        "JUPYTER_AGENT_HISTORY_DIR": str(tmp_path / "history"),
        "JPY_SESSION_NAME": str(tmp_path / "nb.ipynb"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    for attempt in range(2):
        kernel = start_kernel(server, cwd=tmp_path, env=env)
        try:
            if attempt == 0:
                assert "(no conversation yet)" in kernel.run("print(M.history_text(a))").text
                server.add_response(text_reply("First answer.", phase="final_answer"))
                assert "First answer." in kernel.run("%%agent\nfirst question").text
            else:
                history = kernel.run("print(M.history_text(a))").text
                assert "[user] first question" in history and "First answer." in history
        finally:
            kernel.shutdown()
