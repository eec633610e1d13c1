"""``read_notebook`` in real JupyterLab (headless Chromium) reads the live document through the panel's
notebook bridge: a markdown cell no kernel ever saw, a cell typed but never run, and a PNG output named
with its size reach the model, from a panel turn and from a running ``%%agent`` cell (which holds the
kernel's shell: the comm request must still be answered, no deadlock). Screenshots in test-artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_agent.notebook_bridge import DOCUMENT_PREAMBLE
from jupyter_agent.testing import ScriptedServer
from jupyter_agent.testing.replies import function_call_reply, text_reply

from ..tool_support import outputs
from .lab_server import (
    ARTIFACTS,
    CANARY_ENV,
    PANEL,
    assert_no_canary,
    jupyter_server,
    lab_page,
    open_panel,
    run_all_cells,
)

pytestmark = pytest.mark.browser

TOKEN = "nbtools-token"
#: Draws a 64x32 PNG with the standard library only and displays it.
PLOT = """import struct, zlib
from IPython.display import Image, display
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
raw = b"".join(b"\\x00" + b"\\x10\\x80\\xf0" * 64 for _ in range(32))
png = (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 32, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
display(Image(data=png))"""


def _cell(kind: str, source: str) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, module_server: ScriptedServer) -> Iterator[str]:
    root = tmp_path_factory.mktemp("lab")
    connect = (
        f"%load_ext jupyter_agent\n%agent connect --base-url {module_server.base_url} --provider compatible"
        f" --model gpt-5.2 --transport sse --api-key-env {CANARY_ENV}"
    )
    nb = {
        "cells": [
            _cell("markdown", "# Sales analysis\nOnly the document knows this heading."),
            _cell("code", connect),
            _cell("code", "x = [3, 4, 5]\nsum(x)"),
            _cell("code", PLOT),
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / "sales.ipynb").write_text(json.dumps(nb))
    (root / "data.csv").write_text("x,y\n" + "".join(f"{v},{i}\n" for i, v in enumerate([1, 2, 2, 3, 3, 3, 4, 4, 5])))
    with jupyter_server(root, token=TOKEN, env={"JUPYTER_AGENT_HISTORY_DIR": str(root / "_history")}) as server:
        yield server.base


@pytest.fixture(scope="module")
def page(lab: str) -> Iterator[Any]:
    with lab_page(f"{lab}/lab/tree/sales.ipynb?token={TOKEN}&reset", viewport=(1400, 950)) as (pg, _errors):
        # Every test starts from a connected agent and an open panel, so each can also run alone.
        run_all_cells(pg)
        open_panel(pg)
        pg.wait_for_selector(f"{PANEL}[data-status='connected']")
        yield pg
        assert_no_canary(pg)


def _append_cell(pg: Any, source: str) -> None:
    """Type a new code cell at the end (not run): it exists only in the document."""
    pg.evaluate(
        """(source) => {
        const nb = window.jupyterapp.shell.currentWidget;
        const shared = nb.content.model.sharedModel;
        shared.insertCell(shared.cells.length, {cell_type: 'code', source});
    }""",
        source,
    )


def test_panel_turn_reads_the_live_document(page: Any, module_server: ScriptedServer) -> None:
    _append_cell(page, "# typed, never run\nmean = sum(x) / len(x)")
    module_server.add_response(function_call_reply("read_notebook", "{}", call_id="nb_1"))
    module_server.add_response(text_reply("Your notebook sums x and draws a 64x32 figure.", phase="final_answer"))
    page.fill(f"{PANEL} .jp-AgentPanel-input", "What is in my notebook?")
    page.press(f"{PANEL} .jp-AgentPanel-input", "Enter")
    page.locator(PANEL).get_by_text("Your notebook sums x and draws a 64x32 figure.").wait_for()
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_panel_read.png"))
    read = outputs(module_server.requests[-1].json)["nb_1"]
    assert read.startswith(DOCUMENT_PREAMBLE), read[:300]
    assert "markdown\n# Sales analysis\nOnly the document knows this heading." in read
    assert "x = [3, 4, 5]\nsum(x)\n[result] 12" in read
    assert "[display] [image/png 64x32, " in read
    assert "# typed, never run\nmean = sum(x) / len(x)" in read  # unsaved, never executed
    assert "iVBORw0KGgo" not in read  # the image is described, not sent as base64 text


def test_a_running_agent_cell_reads_the_document_without_deadlock(page: Any, module_server: ScriptedServer) -> None:
    _append_cell(page, "%%agent\nSummarise this notebook")
    module_server.add_response(function_call_reply("read_notebook", "{}", call_id="nb_2"))
    module_server.add_response(text_reply("Summary: sales, x and a figure.", phase="final_answer"))
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    last = cells.nth(cells.count() - 1)
    last.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    last.locator(".jp-Cell-outputArea").get_by_text("Summary: sales, x and a figure.").wait_for(timeout=45_000)
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_cell_read.png"))
    read = outputs(module_server.requests[-1].json)["nb_2"]
    assert read.startswith(DOCUMENT_PREAMBLE)
    assert "%%agent\nSummarise this notebook" in read and "# Sales analysis" in read


def _doc(pg: Any) -> list[dict[str, Any]]:
    return pg.evaluate("""() => window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells.map(
        c => ({id: c.id, source: c.getSource(), meta: c.getMetadata('jupyter_agent') || null}))""")


def _undo(pg: Any) -> None:
    pg.evaluate("() => window.jupyterapp.commands.execute('notebook:undo-cell-action')")


def test_insert_and_approved_edit_are_visible_marked_and_undone_one_step_each(
    page: Any, module_server: ScriptedServer
) -> None:
    before = _doc(page)
    x_cell = next(c["id"] for c in before if c["source"].startswith("x = [3, 4, 5]"))
    module_server.add_response(
        function_call_reply(
            "insert_cell", json.dumps({"source": "mean_x = sum(x) / len(x)", "after": x_cell}), call_id="ins_1"
        )
    )
    module_server.add_response(
        function_call_reply(
            "edit_cell", json.dumps({"cell": "3", "source": "mean_x = sum(x) / len(x)\nmean_x"}), call_id="ed_1"
        )
    )
    module_server.add_response(text_reply("Added a cell computing the mean of x.", phase="final_answer"))
    page.fill(f"{PANEL} .jp-AgentPanel-input", "Add a cell that computes the mean of x")
    page.press(f"{PANEL} .jp-AgentPanel-input", "Enter")
    card = f"{PANEL} .jp-AgentPanel-entry[data-kind='approval']"
    page.wait_for_selector(f"{card}:has-text('edit_cell')")
    inserted = _doc(page)
    assert len(inserted) == len(before) + 1
    new = inserted[3]
    assert new["source"] == "mean_x = sum(x) / len(x)" and new["meta"]["turn_id"]  # inserted (auto), marked
    assert inserted[2]["id"] == x_cell
    page.wait_for_selector(".jp-Notebook .jp-AgentCell")  # the visible badge
    got = outputs(module_server.requests[-1].json)
    assert got["ins_1"] == f"Inserted a code cell: id={new['id']} index=3 (not run)."
    # The card shows the change as a diff against the cell as it is now, lines coloured by kind.
    diff = page.locator(f"{card}:has-text('edit_cell') .jp-AgentPanel-preview.jp-mod-diff")

    def lines(kind: str) -> list[str]:
        return [t.rstrip("\n") for t in diff.locator(f".jp-AgentPanel-diffLine.jp-mod-{kind}").all_text_contents()]

    assert lines("add") == ["+mean_x"]
    assert lines("context") == [" mean_x = sum(x) / len(x)"]
    assert lines("del") == [] and lines("hunk") == ["@@ -1 +1,2 @@"]
    assert page.locator(f"{card}:has-text('edit_cell') code").inner_text() == 'edit_cell(cell="3")'
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_edit_approval.png"))
    page.click(f"{card} .jp-AgentPanel-approve")
    page.locator(PANEL).get_by_text("Added a cell computing the mean of x.").wait_for()
    edited = _doc(page)
    assert edited[3]["source"] == "mean_x = sum(x) / len(x)\nmean_x"
    assert outputs(module_server.requests[-1].json)["ed_1"] == f"Edited cell id={new['id']} index=3."
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_edited.png"))
    _undo(page)  # the edit
    assert _doc(page)[3]["source"] == "mean_x = sum(x) / len(x)"
    _undo(page)  # the insert
    assert [c["id"] for c in _doc(page)] == [c["id"] for c in before]
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_undone.png"))


def test_cell_tool_errors_go_back_to_the_model(page: Any, module_server: ScriptedServer) -> None:
    module_server.add_response(
        function_call_reply("insert_cell", json.dumps({"source": "1", "before": "nope"}), call_id="bad_1")
    )
    module_server.add_response(text_reply("That cell does not exist.", phase="final_answer"))
    page.fill(f"{PANEL} .jp-AgentPanel-input", "Insert before nope")
    page.press(f"{PANEL} .jp-AgentPanel-input", "Enter")
    page.locator(PANEL).get_by_text("That cell does not exist.").wait_for()
    assert 'no cell "nope"' in outputs(module_server.requests[-1].json)["bad_1"]


def _outputs_text(pg: Any, index: int) -> str:
    return pg.evaluate(
        "(i) => JSON.stringify(window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells[i].toJSON().outputs)",
        index,
    )


def test_panel_adds_a_cell_runs_it_visibly_after_approval_and_undo_removes_it(
    page: Any, module_server: ScriptedServer
) -> None:
    before = _doc(page)
    x_cell = next(c["id"] for c in before if c["source"].startswith("x = [3, 4, 5]"))
    module_server.add_response(function_call_reply("read_notebook", "{}", call_id="rd_3"))
    module_server.add_response(
        function_call_reply("insert_cell", json.dumps({"source": "sum(x) / len(x)", "after": x_cell}), call_id="ins_3")
    )
    module_server.add_response(function_call_reply("run_cell", json.dumps({"cell": "3"}), call_id="run_3"))
    module_server.add_response(text_reply("The mean of x is 4.0.", phase="final_answer"))
    page.fill(f"{PANEL} .jp-AgentPanel-input", "add a cell that computes the mean of x and run it")
    page.press(f"{PANEL} .jp-AgentPanel-input", "Enter")
    card = f"{PANEL} .jp-AgentPanel-entry[data-kind='approval']"
    page.wait_for_selector(f"{card}:has-text('run_cell')")
    assert _doc(page)[3]["source"] == "sum(x) / len(x)"
    assert _outputs_text(page, 3) == "[]"  # not run before the approval
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_run_approval.png"))
    page.locator(card).last.locator(".jp-AgentPanel-approve").click()
    page.locator(PANEL).get_by_text("The mean of x is 4.0.").wait_for()
    cells = page.locator(".jp-Notebook .jp-Cell")
    expect_text = cells.nth(3).locator(".jp-OutputArea-output")
    expect_text.get_by_text("4.0").wait_for()  # visible in the notebook
    ran = outputs(module_server.requests[-1].json)["run_3"]
    assert ran.startswith("Ran cell id=") and "(in the notebook): ok" in ran and "[result] 4.0" in ran
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_ran.png"))
    _undo(page)
    assert [c["id"] for c in _doc(page)] == [c["id"] for c in before]


def _run_last_cell_until_approval(pg: Any) -> tuple[Any, Any]:
    """Run the notebook's last code cell (a turn) and wait for the Approve button in its output:
    the output area and the button."""
    cells = pg.locator(".jp-Notebook .jp-CodeCell")
    cell = cells.nth(cells.count() - 1)
    cell.locator(".jp-InputArea-editor").click()
    pg.keyboard.press("Control+Enter")
    out = cell.locator(".jp-Cell-outputArea")
    approve = out.get_by_role("button", name="Approve", exact=True)
    approve.wait_for(timeout=45_000)
    return out, approve


def test_agent_cell_adds_and_runs_a_cell_without_deadlock(page: Any, module_server: ScriptedServer) -> None:
    _append_cell(page, "%%agent\nadd a cell that prints the mean of x and run it")
    n = len(_doc(page))
    module_server.add_response(
        function_call_reply("insert_cell", json.dumps({"source": "print('mean', sum(x) / len(x))"}), call_id="ins_4")
    )
    module_server.add_response(function_call_reply("run_cell", json.dumps({"cell": str(n)}), call_id="run_4"))
    module_server.add_response(text_reply("Printed the mean: 4.0.", phase="final_answer"))
    out, approve = _run_last_cell_until_approval(page)
    approve.click()
    out.get_by_text("Printed the mean: 4.0.").wait_for(timeout=45_000)
    assert "mean 4.0" in _outputs_text(page, n)  # the new cell shows what the kernel thread printed
    ran = outputs(module_server.requests[-1].json)["run_4"]
    assert "on the kernel thread: a cell holds the shell" in ran and "[stdout] mean 4.0" in ran
    page.locator(".jp-Notebook .jp-Cell").nth(n).get_by_text("mean 4.0").wait_for()
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_cell_run.png"))


def test_running_a_plot_cell_sends_the_image_to_the_model(page: Any, module_server: ScriptedServer) -> None:
    plot_index = next(i for i, c in enumerate(_doc(page)) if c["source"].startswith("import struct, zlib"))
    module_server.add_response(function_call_reply("run_cell", json.dumps({"cell": str(plot_index)}), call_id="run_5"))
    module_server.add_response(text_reply("A small teal rectangle.", phase="final_answer"))
    page.fill(f"{PANEL} .jp-AgentPanel-input", "Run the plot cell and describe the figure")
    page.press(f"{PANEL} .jp-AgentPanel-input", "Enter")
    card = f"{PANEL} .jp-AgentPanel-entry[data-kind='approval']"
    page.locator(f"{card}:has-text('run_cell')").last.locator(".jp-AgentPanel-approve").click()
    page.locator(PANEL).get_by_text("A small teal rectangle.").wait_for(timeout=45_000)
    sent = outputs(module_server.requests[-1].json)["run_5"]
    assert isinstance(sent, list) and sent[0]["type"] == "input_text"
    assert "[display] [image/png 64x32, " in sent[0]["text"]
    images = [p for p in sent if p["type"] == "input_image"]
    assert len(images) == 1 and images[0]["image_url"].startswith("data:image/png;base64,iVBORw0KGgo")
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_plot_image.png"))


HISTOGRAM = """import pandas as pd
import matplotlib.pyplot as plt
df = pd.read_csv("data.csv")
df["x"].hist(bins=5)
plt.show()"""


def test_load_data_and_plot_a_histogram_end_to_end(page: Any, module_server: ScriptedServer) -> None:
    """The issue's scenario: the agent reads the notebook, inserts a cell, the user approves running it,
    the plot appears in the notebook, the next request carries it as input_image, the answer streams,
    and Undo removes the inserted cell."""
    before = _doc(page)
    index = len(before)  # insert_cell without an anchor appends
    module_server.add_response(function_call_reply("read_notebook", "{}", call_id="hist_rd"))
    module_server.add_response(function_call_reply("insert_cell", json.dumps({"source": HISTOGRAM}), call_id="hist_in"))
    module_server.add_response(function_call_reply("run_cell", json.dumps({"cell": str(index)}), call_id="hist_run"))
    answer = "The histogram of x peaks at 3: most values are in the middle of the range."
    module_server.add_response(text_reply(answer, phase="final_answer"))
    cards = page.locator(f"{PANEL} .jp-AgentPanel-entry[data-kind='approval']")
    earlier = cards.count()  # cards of earlier tests stay in the panel
    page.fill(f"{PANEL} .jp-AgentPanel-input", "load data.csv and plot a histogram of x")
    page.press(f"{PANEL} .jp-AgentPanel-input", "Enter")
    card = cards.nth(earlier)
    card.wait_for()
    assert "run_cell" in card.inner_text()
    assert 'df["x"].hist(bins=5)' in card.locator(".jp-AgentPanel-preview").inner_text()  # the code to run
    assert _doc(page)[index]["source"] == HISTOGRAM and _doc(page)[index]["meta"] is not None  # visible, marked
    assert _outputs_text(page, index) == "[]"  # not run before the approval
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_histogram_approval.png"))
    card.locator(".jp-AgentPanel-approve").click()
    # The first matplotlib import may build its font cache: allow for it.
    plot = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea-output img")
    plot.wait_for(timeout=120_000)
    page.locator(PANEL).get_by_text(answer).wait_for(timeout=60_000)
    sent = outputs(module_server.requests[-1].json)["hist_run"]
    assert isinstance(sent, list) and sent[0]["type"] == "input_text" and "(in the notebook): ok" in sent[0]["text"]
    images = [part for part in sent if part["type"] == "input_image"]
    assert len(images) == 1 and images[0]["image_url"].startswith("data:image/png;base64,iVBORw0KGgo")
    read = outputs(module_server.requests[-3].json)["hist_rd"]
    assert read.startswith(DOCUMENT_PREAMBLE)
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_histogram.png"))
    _undo(page)
    assert [c["id"] for c in _doc(page)] == [c["id"] for c in before]


def test_agent_cell_plots_a_histogram_into_a_new_cell_and_sends_it_as_an_image(
    page: Any, module_server: ScriptedServer
) -> None:
    """The same scenario from a running %%agent cell: the cell runs on the kernel thread (matplotlib's
    inline figures are flushed into its outputs), the plot lands in the new cell and goes to the model."""
    _append_cell(page, "%%agent\nload data.csv and plot a histogram of y")
    n = len(_doc(page))
    source = HISTOGRAM.replace('df["x"]', 'df["y"]')
    module_server.add_response(function_call_reply("insert_cell", json.dumps({"source": source}), call_id="hist_in2"))
    module_server.add_response(function_call_reply("run_cell", json.dumps({"cell": str(n)}), call_id="hist_run2"))
    module_server.add_response(text_reply("The values of y are spread evenly.", phase="final_answer"))
    out, approve = _run_last_cell_until_approval(page)
    approve.click()
    out.get_by_text("The values of y are spread evenly.").wait_for(timeout=120_000)
    page.locator(".jp-Notebook .jp-Cell").nth(n).locator(".jp-OutputArea-output img").wait_for()
    sent = outputs(module_server.requests[-1].json)["hist_run2"]
    assert isinstance(sent, list) and "on the kernel thread: a cell holds the shell" in sent[0]["text"]
    images = [part for part in sent if part["type"] == "input_image"]
    assert len(images) == 1 and images[0]["image_url"].startswith("data:image/png;base64,iVBORw0KGgo")
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_histogram_cell.png"))


def _failing_cell(pg: Any, source: str) -> tuple[int, Any]:
    """Append a cell that raises ZeroDivisionError and run it; its index and locator."""
    _append_cell(pg, source)
    n = len(_doc(pg)) - 1
    cell = pg.locator(".jp-Notebook .jp-Cell").nth(n)
    cell.locator(".jp-InputArea-editor").click()
    pg.keyboard.press("Control+Enter")
    cell.locator(".jp-OutputArea-output").get_by_text("ZeroDivisionError").first.wait_for()
    return n, cell


def test_fix_this_error_from_the_cell_menu_proposes_an_edit_shown_as_a_diff(
    page: Any, module_server: ScriptedServer
) -> None:
    n, cell = _failing_cell(page, "x = [1, 3, 8]\ntotal = sum(x)\nshare = total / 0")
    cell_id = _doc(page)[n]["id"]
    fixed = "x = [1, 3, 8]\ntotal = sum(x)\nshare = total / len(x)"
    module_server.add_response(
        function_call_reply("edit_cell", json.dumps({"cell": cell_id, "source": fixed}), call_id="fix_1")
    )
    module_server.add_response(text_reply("It divided by 0; it now divides by len(x).", phase="final_answer"))
    asked = len(module_server.requests)
    cell.locator(".jp-InputPrompt").click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="Agent: Fix this error").click()
    card = page.locator(f"{PANEL} .jp-AgentPanel-entry[data-kind='approval']:has-text('{cell_id}')")
    card.wait_for()
    prompt = module_server.requests[asked].json["input"][-1]["content"][0]["text"]
    assert "total = sum(x)\nshare = total / 0" in prompt and "ZeroDivisionError: division by zero" in prompt
    assert f"edit_cell call on cell {cell_id}" in prompt and "\x1b[" not in prompt
    diff = card.locator(".jp-AgentPanel-preview.jp-mod-diff")
    assert [t.rstrip("\n") for t in diff.locator(".jp-mod-del").all_text_contents()] == ["-share = total / 0"]
    assert [t.rstrip("\n") for t in diff.locator(".jp-mod-add").all_text_contents()] == ["+share = total / len(x)"]
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_fix_approval.png"))
    card.locator(".jp-AgentPanel-approve").click()
    page.locator(PANEL).get_by_text("It divided by 0; it now divides by len(x).").wait_for()
    assert _doc(page)[n]["source"] == fixed
    assert outputs(module_server.requests[-1].json)["fix_1"] == f"Edited cell id={cell_id} index={n}."
    _undo(page)  # one Undo reverts the fix
    assert _doc(page)[n]["source"] == "x = [1, 3, 8]\ntotal = sum(x)\nshare = total / 0"


def test_agent_fix_in_a_cell_shows_the_diff_on_its_approval_card(page: Any, module_server: ScriptedServer) -> None:
    failing, _cell = _failing_cell(page, "values = [2, 4]\nmean = sum(values) / 0")
    cell_id = _doc(page)[failing]["id"]
    _append_cell(page, "%agent fix divide by the number of values")
    fixed = "values = [2, 4]\nmean = sum(values) / len(values)"
    module_server.add_response(
        function_call_reply("edit_cell", json.dumps({"cell": cell_id, "source": fixed}), call_id="fix_2")
    )
    module_server.add_response(text_reply("Fixed: it divides by len(x).", phase="final_answer"))
    asked = len(module_server.requests)
    out, approve = _run_last_cell_until_approval(page)
    prompt = module_server.requests[asked].json["input"][-1]["content"][0]["text"]
    assert f"edit_cell call on cell {cell_id}" in prompt and prompt.endswith("divide by the number of values")
    assert "-mean = sum(values) / 0" in out.inner_text() and "+mean = sum(values) / len(values)" in out.inner_text()
    page.screenshot(path=str(ARTIFACTS / "notebook_tools_fix_cell_approval.png"))
    approve.click()
    out.get_by_text("Fixed: it divides by len(x).").wait_for(timeout=45_000)
    assert _doc(page)[failing]["source"] == fixed
