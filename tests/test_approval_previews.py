"""Approval previews (issue 13, items 2 and 6): a cell tool's approval request carries what the call
will do (the code of an inserted or run cell, a unified diff of an edit against the cell as it is
now, the source a delete removes), the cell renderings show it (```diff fence), and a preview that
fails never breaks the turn (the card shows the arguments)."""

from __future__ import annotations

import json
from typing import Any

from jupyter_agent import events as ev
from jupyter_agent.cell_run import run_cell_tool
from jupyter_agent.cell_tools import cell_tools, source_diff
from jupyter_agent.testing.replies import text_reply
from jupyter_agent.tools.base import ApprovalPreview, FunctionTool
from jupyter_agent.tools.notebook import Cell
from jupyter_agent.ui import TurnView

from .tool_support import calls_reply, outputs

CELLS = [
    Cell(0, "intro", "markdown", "# Title"),
    Cell(1, "calc", "code", "x = 1\ny = x / 0\nprint(y)"),
]


class Document:
    """The live document as the cell tools see it (``request`` for reads, ``call`` for edits)."""

    def __init__(self, cells: list[Cell]) -> None:
        self._cells = cells
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def request(self, timeout: float | None = None) -> list[Cell]:
        return list(self._cells)

    def call(self, action: str, args: dict[str, Any], timeout: float | None = None) -> Any:
        raise AssertionError("a preview must not change the document")


def _tools(document: Any) -> dict[str, FunctionTool]:
    tools = {t.name: t for t in cell_tools(document, lambda: None)}
    tools["run_cell"] = run_cell_tool(document, None, None)
    return tools


def _preview(tool: FunctionTool, **args: Any) -> ApprovalPreview | None:
    import asyncio

    return asyncio.run(tool.preview(json.dumps(args)))


def test_source_diff_is_a_unified_diff_of_the_cell():
    diff = source_diff("x = 1\ny = x / 0\n", "x = 1\ny = x / 1\n", "cell 1")
    assert diff.splitlines() == [
        "--- cell 1 (now)",
        "+++ cell 1 (proposed)",
        "@@ -1,2 +1,2 @@",
        " x = 1",
        "-y = x / 0",
        "+y = x / 1",
    ]
    assert source_diff("same", "same") == ""


def test_each_cell_tool_previews_what_it_will_do():
    tools = _tools(Document(CELLS))
    edit = _preview(tools["edit_cell"], cell="calc", source="x = 1\ny = x / 1\nprint(y)")
    assert edit is not None and (edit.kind, edit.language) == ("diff", "diff")
    assert "-y = x / 0\n+y = x / 1" in edit.text and "--- cell 1 (now)" in edit.text
    same = _preview(tools["edit_cell"], cell="1", source=CELLS[1].source)
    assert same is not None and same.text.startswith("(no change")
    assert _preview(tools["run_cell"], cell="calc") == ApprovalPreview("code", CELLS[1].source, "python")
    assert _preview(tools["delete_cell"], cell="0") == ApprovalPreview("code", "# Title", "markdown")
    insert = _preview(tools["insert_cell"], source="## Notes", cell_type="markdown", before=None, after="calc")
    assert insert == ApprovalPreview("code", "## Notes", "markdown")


def test_a_long_preview_is_cut():
    tool = _tools(Document([Cell(0, "big", "code", "a = 1\n" * 10_000)]))["delete_cell"]
    found = _preview(tool, cell="big")
    assert found is not None and len(found.text) < 13_000 and "characters truncated" in found.text


def _answering(agent: Any) -> list[ev.ApprovalRequest]:
    asked: list[ev.ApprovalRequest] = []

    def on_event(event: ev.AgentEvent) -> None:
        if isinstance(event, ev.ApprovalRequest):
            asked.append(event)
            agent.resolve_approval(event.call_id, "approve")

    agent.subscribe(on_event)
    return asked


def test_the_approval_request_carries_the_preview(server, make_agent):
    document = Document(CELLS)
    edit = next(t for t in cell_tools(document, lambda: None) if t.name == "edit_cell")
    edited: list[str] = []
    edit.fn = lambda cell, source: edited.append(source) or "Edited."
    agent = make_agent(tools=[edit])
    asked = _answering(agent)
    server.add_response(calls_reply(("edit_cell", {"cell": "calc", "source": "x = 1\ny = x / 1\nprint(y)"}, "c1")))
    server.add_response(text_reply("Fixed.", phase="final_answer"))
    turn = agent.start("fix it", interactive=True).result(10)
    assert turn.status == "completed" and edited
    assert asked[0].preview_kind == "diff" and "+y = x / 1" in asked[0].preview
    assert asked[0].preview_language == "diff"


def test_a_failing_preview_falls_back_to_the_arguments(server, make_agent):
    def broken(**_: Any) -> ApprovalPreview:
        raise TimeoutError("the notebook did not answer")

    tool = FunctionTool.from_callable(lambda cell: f"ran {cell}", name="run_cell", approval="ask")
    tool.previewer = broken
    agent = make_agent(tools=[tool])
    asked = _answering(agent)
    server.add_response(calls_reply(("run_cell", {"cell": "calc"}, "c1")))
    server.add_response(text_reply("Done.", phase="final_answer"))
    turn = agent.start("run it", interactive=True).result(10)
    assert turn.status == "completed"
    assert (asked[0].preview, asked[0].preview_kind) == ("", "")
    assert outputs(server.requests[1].json) == {"c1": "ran calc"}


def _view_with(request: ev.ApprovalRequest) -> TurnView:
    view = TurnView("gpt-5", widgets=False)
    view.handle(ev.TurnStarted(prompt="fix", model="gpt-5"))
    view.handle(ev.ToolCall(call_id=request.call_id, name=request.name, arguments=request.arguments))
    view.handle(request)
    return view


def test_the_cell_renderings_show_the_diff_and_keep_other_arguments():
    diff = source_diff(CELLS[1].source, "x = 1\ny = x / 1\nprint(y)", "cell 1")
    args = json.dumps({"cell": "calc", "source": "x = 1\ny = x / 1\nprint(y)"})
    view = _view_with(
        ev.ApprovalRequest(
            call_id="c1", name="edit_cell", arguments=args, preview=diff, preview_kind="diff", preview_language="diff"
        )
    )
    md = view.markdown()
    assert '**Tool call** `edit_cell` `{"cell": "calc"}`' in md
    assert f"**Change:**\n\n```diff\n{diff}\n```" in md
    text = view.plain_text()
    assert 'Tool call: edit_cell {"cell": "calc"}\n  change:\n    --- cell 1 (now)' in text
    assert "    -y = x / 0\n    +y = x / 1" in text


def test_other_tools_still_show_their_arguments():
    view = _view_with(ev.ApprovalRequest(call_id="c2", name="run_python", arguments='{"code": "1 + 1"}'))
    assert "```python\n1 + 1\n```" in view.markdown()
    assert "**Change:**" not in view.markdown() and "**Code:**" not in view.markdown()
