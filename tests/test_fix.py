"""``%agent fix`` and the panel's fix action (issue 13, item 5): the prompt carries the failing cell's
source, its error and the traceback tail (ANSI stripped, bounded); with the notebook bridge the model
is asked for an ``edit_cell`` on the document's cell, without it for a code block (and the edit tools
are not offered); no exception, no turn."""

from __future__ import annotations

import sys
import threading
from typing import Any, ClassVar

import pytest

from jupyter_agent import comm as C
from jupyter_agent import fix, notebook_bridge
from jupyter_agent.magics import agent_cell_transform, run_agent_fix
from jupyter_agent.testing.replies import text_reply
from jupyter_agent.tools.notebook import CELL_TOOLS, Cell

from .test_comm import FakeComm
from .test_notebook_bridge import Shell, answer_requests


def _failure(**kw: Any) -> fix.Failure:
    base = {
        "source": "x = 1\ny = x / 0",
        "ename": "ZeroDivisionError",
        "evalue": "division by zero",
        "traceback": ["\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"],
    }
    return fix.Failure(**{**base, **kw})


def test_the_prompt_asks_for_an_edit_of_the_document_cell():
    prompt = fix.fix_prompt(_failure(cell_id="abc", label="cell 2 (id abc)"), can_edit=True, extra="keep y")
    assert prompt.startswith("Fix the error in cell 2 (id abc) of my notebook.")
    assert "```python\nx = 1\ny = x / 0\n```" in prompt
    assert "It raised ZeroDivisionError: division by zero" in prompt
    assert "```\nZeroDivisionError: division by zero\n```" in prompt  # ANSI colours stripped
    assert "one edit_cell call on cell abc" in prompt and "code block" not in prompt
    assert prompt.endswith("My instructions: keep y")


def test_without_an_editable_cell_the_prompt_asks_for_a_code_block():
    prompt = fix.fix_prompt(_failure(), can_edit=False)
    assert "You cannot edit the notebook" in prompt and "one Python code block" in prompt
    assert "edit_cell" not in prompt
    assert "My instructions" not in prompt


def test_the_title_names_the_cell_and_the_error_in_one_bounded_line():
    assert fix.fix_title(_failure(label="In[4]")) == "Fix the error in In[4] (ZeroDivisionError: division by zero)"
    long = fix.fix_title(_failure(evalue="\x1b[31m" + "v" * 500, label="cell 0 (id a)"))
    assert "\x1b" not in long and len(long) < 180 and long.endswith("…)")


def test_the_traceback_tail_is_bounded():
    lines = [f"  frame {i}: " + "x" * 200 for i in range(500)] + ["ValueError: bad"]
    tail = fix.traceback_tail(lines)
    assert len(tail) <= fix.MAX_TRACEBACK_CHARS + 100 and tail.endswith("ValueError: bad")
    assert "frame 0:" not in tail


def test_the_document_cell_showing_the_error_is_chosen():
    error = {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": []}
    cells = [
        Cell(0, "old", "code", "1/0", 2, [error]),
        Cell(1, "new", "code", "x = 1\ny = x / 0", 5, [error]),
        Cell(2, "other", "code", "x = 1\ny = x / 0", None, []),
    ]
    assert fix._document_match(cells, _failure(), 2).id == "old"  # the run that raised
    assert fix._document_match(cells, _failure(), None).id == "new"  # else the newest showing it
    assert fix._document_match(cells[2:], _failure(), None).id == "other"  # else the same source
    assert fix._document_match(cells[2:], _failure(source="z"), None) is None


def test_no_exception_no_turn(monkeypatch, capsys):
    for name in ("last_value", "last_exc"):
        monkeypatch.delattr(sys, name, raising=False)
    assert fix.find_failure() is None

    class NoTurns:
        tools: ClassVar[dict[str, Any]] = {}

        def start(self, *a: Any, **kw: Any) -> None:
            raise AssertionError("no turn without an exception")

    import asyncio

    asyncio.run(run_agent_fix(agent=NoTurns()))  # type: ignore[arg-type]
    assert capsys.readouterr().out.strip() == fix.NO_EXCEPTION


def test_a_cell_of_only_agent_fix_becomes_an_awaited_turn():
    (line,) = agent_cell_transform(["# why?\n", "%agent fix  use numpy\n"])
    assert line.startswith("await __import__('jupyter_agent.cell_turns'") and "run_agent_fix('use numpy')" in line
    assert "run_agent_fix('')" in agent_cell_transform(["%agent fix"])[0]
    mixed = ["x = 1\n", "%agent fix\n"]
    assert agent_cell_transform(mixed) == mixed  # among other code: the line magic (blocking)
    assert agent_cell_transform(["%agent fixed\n"]) == ["%agent fixed\n"]


DOCUMENT = [
    {"id": "ok", "cell_type": "code", "source": "x = 1", "execution_count": 1, "outputs": []},
    {
        "id": "bad",
        "cell_type": "code",
        "source": "y = x / 0",
        "execution_count": 2,
        "outputs": [
            {
                "output_type": "error",
                "ename": "ZeroDivisionError",
                "evalue": "division by zero",
                "traceback": ["\x1b[0;31mZeroDivisionError\x1b[0m Traceback", "----> 1 y = x / 0"],
            }
        ],
    },
]


@pytest.fixture
def panel_agent(server):
    from jupyter_agent.agent import Agent

    agent = Agent(model="gpt-test", base_url=server.base_url, provider="compatible", transport="sse", prewarm=False)
    notebook_bridge.install(agent, Shell())
    yield agent
    notebook_bridge._sources = None


def test_the_panel_fix_message_starts_a_turn_on_that_cell(server, panel_agent):
    comm, stop = FakeComm(), threading.Event()
    bridge = C.PanelBridge(comm, lambda: panel_agent)
    answer_requests(comm, stop, DOCUMENT)
    try:
        comm.deliver({"type": "hello", "version": 1, "features": ["notebook"]})
        comm.deliver({"type": "fix", "cell_id": "ok"})
        comm.wait_for(lambda s: any(m["type"] == "error" and m["request_type"] == "fix" for m in s), 10)
        assert "shows no error" in comm.of_type("error")[-1]["message"]
        server.add_response(text_reply("x / 0 divides by zero.", phase="final_answer"))
        comm.deliver({"type": "fix", "cell_id": "bad"})
        comm.wait_for(lambda s: any(m["type"] == "event" and m["event"]["type"] == "turn_done" for m in s), 15)
        body = server.requests[-1].json
        prompt = body["input"][-1]["content"][0]["text"]
        assert "cell 1 (id bad)" in prompt and "y = x / 0" in prompt
        assert "ZeroDivisionError: division by zero" in prompt and "----> 1 y = x / 0" in prompt
        assert "\x1b" not in prompt and "edit_cell call on cell bad" in prompt
        assert "edit_cell" in {t["name"] for t in body["tools"] if t["type"] == "function"}
        # The panel shows a short title for the request, not the generated prompt.
        started = next(m["event"] for m in comm.sent if m["type"] == "event" and m["event"]["type"] == "turn_started")
        assert started["prompt"] == prompt
        assert started["title"] == "Fix the error in cell 1 (id bad) (ZeroDivisionError: division by zero)"
    finally:
        stop.set()
        bridge.close()


def test_a_fix_without_the_notebook_bridge_is_refused():
    comm = FakeComm()
    bridge = C.PanelBridge(comm, lambda: None)  # type: ignore[arg-type, return-value]
    try:
        comm.deliver({"type": "fix", "cell_id": "bad"})
        assert "needs the notebook bridge" in comm.of_type("error")[-1]["message"]
    finally:
        bridge.close()


@pytest.mark.kernel
def test_agent_fix_in_a_kernel_without_a_frontend(tmp_path, server, start_kernel):
    driver = start_kernel(server, cwd=tmp_path, env={"JUPYTER_AGENT_HISTORY_DIR": str(tmp_path / "history")})
    try:
        nothing = driver.run("%agent fix")
        assert nothing.status == "ok" and fix.NO_EXCEPTION in nothing.text
        assert not server.requests
        failed = driver.run("def ratio(a, b):\n    return a / b\n\nratio(10, 0)")
        assert failed.status == "error"
        server.add_response(text_reply("b is 0. Use:\n```python\nratio(10, 2)\n```", phase="final_answer"))
        cell = driver.run("%agent fix keep the function", timeout=90)
        assert cell.status == "ok", cell.text
        assert fix.NO_BRIDGE_NOTE in cell.text and "ratio(10, 2)" in cell.text
        body = server.requests[-1].json
        prompt = body["input"][-1]["content"][0]["text"]
        assert "def ratio(a, b):\n    return a / b\n\nratio(10, 0)" in prompt  # the cell's source
        assert "It raised ZeroDivisionError: division by zero" in prompt
        assert "return a / b" in prompt.split("The end of the traceback:")[1]  # the traceback tail
        assert "\x1b[" not in prompt and "one Python code block" in prompt
        assert prompt.endswith("My instructions: keep the function")
        names = {t["name"] for t in body.get("tools", []) if t["type"] == "function"}
        assert not names & set(CELL_TOOLS)  # no bridge: no edit tools offered
    finally:
        driver.shutdown()
