"""``%%agent`` in Notebook 7 (``jupyter notebook``, headless Chromium): /tree lists the notebook,
/notebooks/... runs it, the live view renders (ipywidgets), a pinned ``%agent limits`` widget in an
earlier cell follows the turn, and the final rendering is the stable markdown.

The kernel starts the scripted Responses server with a reply that has a commentary message, a web
search, a final answer, rate-limit headers and an ``openai-model`` other than the requested one.

The labextension works in Notebook 7 too (second notebook, connected to this process's scripted
server): a ``%%agent`` cell reads the live document, inserts a cell and runs it after approval, the
cell and its output show in the notebook, and Undo removes it; the Agent panel opens from View →
Right Sidebar and streams an answer, and runs an inserted cell from a panel turn; "Agent: Fix this
error" in a failing cell's context menu proposes an edit shown as a diff; a kernel restart from the
Kernel menu reconnects panel and bridge.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_agent.notebook_bridge import DOCUMENT_PREAMBLE
from jupyter_agent.testing import ScriptedServer
from jupyter_agent.testing.replies import function_call_reply, text_reply

from ..tool_support import outputs
from .lab_server import (
    ARTIFACTS,
    CANARY_ENV,
    agent_errors,
    assert_no_canary,
    browser_page,
    jupyter_server,
    write_notebook,
)

pytestmark = pytest.mark.browser

TOKEN = "notebook7-token"
NOTEBOOK = "nb7_agent.ipynb"
TOOLS_NOTEBOOK = "nb7_tools.ipynb"
PANEL = "#jupyter-agent-panel"

SETUP = r"""
import time
from jupyter_agent.testing import ScriptedServer, Reply, Ev
from jupyter_agent.testing.replies import _message_events, _number, created_event, completed_event

def scripted_reply():
    rid = "resp_nb7_1"
    thought = "The user asks about rain; a forecast page will say."
    reasoning = {"type": "reasoning", "id": "rs_nb7_1", "summary": []}
    reasoned = {**reasoning, "summary": [{"type": "summary_text", "text": thought}]}
    thinking = [{"type": "response.output_item.added", "output_index": 0, "item": reasoning},
                *({"type": "response.reasoning_summary_text.delta", "item_id": "rs_nb7_1", "output_index": 0,
                   "summary_index": 0, "delta": d} for d in (thought[:20], thought[20:])),
                {"type": "response.output_item.done", "output_index": 0, "item": reasoned}]
    commentary, c_done = _message_events("Let me check the web first.", "commentary", 0, 3)
    started = {"type": "web_search_call", "id": "ws_nb7_1", "status": "in_progress"}
    searched = {"type": "web_search_call", "id": "ws_nb7_1", "status": "completed",
                "action": {"type": "find_in_page", "url": "https://example.com/forecast", "pattern": "rain"}}
    answer, a_done = _message_events("No **rain** is expected in Seattle today.", "final_answer", 2, 6)
    events = _number([created_event(rid, "gpt-5.2"), *thinking, *commentary,
                      {"type": "response.output_item.added", "output_index": 1, "item": started},
                      {"type": "response.output_item.done", "output_index": 1, "item": searched},
                      *answer, completed_event(rid, "gpt-5.2", [reasoned, c_done, searched, a_done])])
    now = int(time.time())
    headers = {
        "openai-model": "gpt-5.2",
        "x-codex-primary-used-percent": "72", "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": str(now + 3600),
        "x-codex-secondary-used-percent": "91", "x-codex-secondary-window-minutes": "10080",
        "x-codex-secondary-reset-at": str(now + 3 * 86400),
    }
    # Slow enough to see the live view: the search stays in progress for a while.
    timed = [Ev(e, 0.6 if e.get("type") in ("response.output_item.done", "response.output_text.delta") else 0.05) for e in events]
    return Reply(headers=headers, events=timed)

server = ScriptedServer().start()
server.add_response(scripted_reply())
%load_ext jupyter_agent
%agent connect --base-url $server.base_url --provider compatible --model gpt-5.3-codex --transport sse --api-key-env CANARY_ENV_NAME
"""


def _notebook(path: Path) -> None:
    write_notebook(
        path,
        SETUP.replace("CANARY_ENV_NAME", CANARY_ENV).strip(),
        "limits = %agent limits\nlimits",
        "%%agent\nWill it rain in Seattle today?",
    )


def _tools_notebook(path: Path, base_url: str) -> None:
    write_notebook(
        path,
        f"%load_ext jupyter_agent\n%agent connect --base-url {base_url} --provider compatible --model gpt-5.2"
        f" --transport sse --api-key-env {CANARY_ENV}",
        'import pandas as pd\ndf = pd.DataFrame({"x": [3, 4, 5], "y": [1.0, 2.0, 4.0]})',
        "%%agent\nadd a cell that computes the mean of x in df and run it",
    )


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory: pytest.TempPathFactory, module_server: ScriptedServer) -> Iterator[str]:
    root = tmp_path_factory.mktemp("nb7")
    _notebook(root / NOTEBOOK)
    _tools_notebook(root / TOOLS_NOTEBOOK, module_server.base_url)
    env = {"JUPYTER_AGENT_HISTORY_DIR": str(root / "_history")}
    with jupyter_server(root, token=TOKEN, app="notebook", env=env) as server:
        yield server.base


def open_notebook(page: Any, base: str, name: str) -> Any:
    """Open /notebooks/<name> and wait until its kernel is idle; returns the code cells' locator."""
    from playwright.sync_api import expect

    page.goto(f"{base}/notebooks/{name}?token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
    # Notebook 7's own toolbar: kernel logo, and an execution indicator that says when the kernel is
    # idle (it must be before running: a run sent earlier is lost).
    expect(page.locator(".jp-NotebookKernelLogo")).to_be_attached()
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', state="attached", timeout=60_000)
    page.wait_for_timeout(500)
    return page.locator(".jp-Notebook .jp-CodeCell")


def run_first_cell(page: Any, cells: Any) -> None:
    """Run the first cell (Shift+Enter, so the next one is selected) and wait for its count."""
    from playwright.sync_api import expect

    # A run requested before the page's kernel connection is up is dropped (no "[*]"): ask again.
    first_prompt = cells.nth(0).locator(".jp-InputPrompt")
    for _attempt in range(5):
        cells.nth(0).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            expect(first_prompt).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=5_000)
            break
        except AssertionError:
            continue
    expect(first_prompt).to_contain_text("[1]", timeout=30_000)


def test_agent_cell_live_view_in_notebook7(notebook7):
    from playwright.sync_api import expect

    with browser_page(viewport=(1300, 1100)) as (page, _errors):
        try:
            # The Notebook 7 file browser lists the notebook.
            page.goto(f"{notebook7}/tree?token={TOKEN}")
            expect(page.get_by_text(NOTEBOOK)).to_be_visible(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "notebook7_tree.png"))

            cells = open_notebook(page, notebook7, NOTEBOOK)
            pinned = cells.nth(1).locator(".jp-OutputArea")
            out = cells.nth(2).locator(".jp-OutputArea")
            # Run the set-up cell and the %agent limits cell first: the pinned widget has no data yet.
            run_first_cell(page, cells)
            page.keyboard.press("Shift+Enter")
            expect(pinned.locator(".jupyter-agent-gauges")).to_contain_text("data not available yet", timeout=30_000)
            # Now the %%agent cell.
            page.keyboard.press("Shift+Enter")
            expect(out.locator(".jupyter-agent-turn")).to_be_visible(timeout=30_000)
            expect(out.get_by_role("button", name="Stop")).to_be_visible()
            expect(out.get_by_text("Searching the web")).to_be_visible(timeout=15_000)
            expect(out.get_by_text("Commentary (interim)")).to_be_visible()
            # The reasoning summary is there, collapsed by default.
            expect(out.get_by_text("Reasoning summary")).to_be_visible()
            expect(out.get_by_text("The user asks about rain")).to_be_hidden()
            expect(out.locator(".jpa-warn")).to_contain_text("gpt-5.2")
            expect(out.locator(".jpa-warn")).to_contain_text("gpt-5.3-codex")
            expect(out.locator(".jpa-gauges")).to_contain_text("5h limit")
            # The widget in the earlier cell follows the running turn: amber 5h, red weekly.
            expect(pinned.locator(".jupyter-agent-gauges")).to_contain_text("28% left", timeout=15_000)
            expect(pinned.locator(".jpa-gauge-warn")).to_have_count(1)
            expect(pinned.locator(".jpa-gauge-critical")).to_have_count(1)
            page.screenshot(path=str(ARTIFACTS / "notebook7_live.png"))
            expect(out.get_by_text("Searched 'rain' in https://example.com/forecast")).to_be_visible(timeout=15_000)

            # Final rendering (markdown); the live widget is gone, the pinned one stays.
            expect(out.locator(".jupyter-agent-turn")).to_have_count(0, timeout=30_000)
            final = out.locator(".jp-RenderedMarkdown")
            expect(final).to_have_count(1)
            text = final.inner_text()
            for needle in (
                "Commentary (interim)",
                "Let me check the web first.",
                "Final answer",
                "No rain is expected in Seattle today.",
                "Searched 'rain' in https://example.com/forecast",
                "Warning",
                "gpt-5.3-codex",
                "gpt-5.2",
                "5h limit",
                "Weekly limit",
                "28% left",
                "9% left",
                "Tokens:",
            ):
                assert needle in text, (needle, text)
            assert "Agent turn (live view)" not in out.inner_text()
            # Final rendering: the reasoning summary is a collapsed <details>; a click opens it.
            expect(final.get_by_text("Reasoning summary")).to_be_visible()
            expect(final.get_by_text("The user asks about rain")).to_be_hidden()
            final.get_by_text("Reasoning summary").click()
            expect(final.get_by_text("The user asks about rain")).to_be_visible()
            expect(pinned.locator(".jupyter-agent-gauges")).to_contain_text("Weekly limit")
            cells.nth(2).scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "notebook7_final.png"))
            assert_no_canary(page)  # the key the notebook connected with is nowhere in the page
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "notebook7_failure.png"))
            (ARTIFACTS / "notebook7_failure.html").write_text(page.content())
            raise


# -- the labextension in Notebook 7: document bridge, cell tools, panel, restart ----------------------


@pytest.fixture(scope="module")
def tools_page(notebook7: str) -> Iterator[Any]:
    """The tools notebook open in Notebook 7, its connect and data cells run."""
    with browser_page(viewport=(1400, 1000)) as (page, errors):
        try:
            cells = open_notebook(page, notebook7, TOOLS_NOTEBOOK)
            run_first_cell(page, cells)
            page.keyboard.press("Shift+Enter")  # the DataFrame
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', state="attached")
            yield page
            assert_no_canary(page)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "notebook7_tools_failure.png"))
            raise
        assert not agent_errors(errors), errors


def _doc(page: Any) -> list[dict[str, Any]]:
    """The live document's cells (Notebook 7's shell holds the notebook as its current widget)."""
    return page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells.map(
        c => ({id: c.id, source: c.getSource(), outputs: JSON.stringify(c.toJSON().outputs || [])}))""")


def test_agent_cell_reads_inserts_and_runs_a_cell_in_notebook7(tools_page: Any, module_server: ScriptedServer) -> None:
    from playwright.sync_api import expect

    page = tools_page
    expect(page.locator(PANEL)).to_be_hidden()  # the bridge does not need the panel shown
    before = _doc(page)
    assert len(before) == 3
    df_cell = before[1]["id"]
    module_server.add_response(function_call_reply("read_notebook", "{}", call_id="rd_nb7"))
    module_server.add_response(
        function_call_reply(
            "insert_cell", json.dumps({"source": 'df["x"].mean()', "after": df_cell}), call_id="ins_nb7"
        )
    )
    module_server.add_response(function_call_reply("run_cell", json.dumps({"cell": "2"}), call_id="run_nb7"))
    module_server.add_response(text_reply("The mean of x in df is 4.0.", phase="final_answer"))
    n_requests = len(module_server.requests)
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    agent_cell = cells.filter(has_text="%%agent")  # moves down when the agent inserts above it
    agent_cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    out = agent_cell.locator(".jp-Cell-outputArea")
    approve = out.get_by_role("button", name="Approve", exact=True)
    approve.wait_for(timeout=45_000)  # run_cell asks, in the cell's card
    # read_notebook got the live document over the comm (not the kernel's history).
    read = outputs(module_server.requests[n_requests + 1].json)["rd_nb7"]
    assert read.startswith(DOCUMENT_PREAMBLE), read[:300]
    assert "%%agent\nadd a cell that computes the mean of x in df and run it" in read
    assert 'df = pd.DataFrame({"x": [3, 4, 5]' in read
    inserted = _doc(page)
    assert [c["source"] for c in inserted][1:3] == [before[1]["source"], 'df["x"].mean()']
    assert inserted[2]["outputs"] == "[]"  # not run before the approval
    expect(cells.nth(2)).to_have_class(re.compile(r"\bjp-AgentCell\b"))  # the visible badge
    approve.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "notebook7_tools_approval.png"))
    approve.click()
    out.get_by_text("The mean of x in df is 4.0.").wait_for(timeout=45_000)
    # The new cell shows its result in the notebook, and the model got that output.
    shown = cells.nth(2).locator(".jp-OutputArea-output")
    expect(shown).to_contain_text("4.0")
    ran = outputs(module_server.requests[-1].json)["run_nb7"]
    assert "on the kernel thread: a cell holds the shell" in ran, ran
    assert shown.inner_text().strip() in ran, ran  # what the notebook shows, e.g. np.float64(4.0)
    cells.nth(2).scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "notebook7_tools_ran.png"))
    # Edit → Undo Cell Operation (Z in command mode) removes the inserted cell: one step.
    page.click(".lm-MenuBar-itemLabel:text-is('Edit')")
    page.click(".lm-Menu-itemLabel:text-is('Undo Cell Operation')")
    expect(cells).to_have_count(3)
    assert [c["id"] for c in _doc(page)] == [c["id"] for c in before]
    page.screenshot(path=str(ARTIFACTS / "notebook7_tools_undone.png"))


def test_agent_panel_in_notebook7_streams_an_answer(tools_page: Any, module_server: ScriptedServer) -> None:
    from playwright.sync_api import expect

    page = tools_page
    panel = page.locator(PANEL)
    expect(panel).to_be_hidden()
    # Notebook 7 lists side panels under View → Right Sidebar.
    page.click(".lm-MenuBar-itemLabel:text-is('View')")
    page.click(".lm-Menu-itemLabel:text-is('Right Sidebar')")
    page.click(".lm-Menu-itemLabel:text-is('Show Agent')")
    expect(panel).to_be_visible()
    expect(panel.locator(".jp-AgentPanel-title")).to_contain_text(TOOLS_NOTEBOOK)
    page.wait_for_selector(f"{PANEL}[data-status='connected']")
    module_server.add_response(
        text_reply("**Notebook 7** has the Agent panel as well.", phase="final_answer", chunks=6, delay=0.1)
    )
    page.fill(f"{PANEL} .jp-AgentPanel-input", "Do you work in Notebook 7?")
    page.press(f"{PANEL} .jp-AgentPanel-input", "Enter")
    answer = panel.locator(".jp-AgentPanel-assistant").filter(has_text="has the Agent panel as well.")
    answer.wait_for()
    # Notebook 7 provides the rendermime registry too: the answer is rendered Markdown.
    expect(answer.locator(".jp-RenderedMarkdown strong")).to_have_text("Notebook 7")
    page.screenshot(path=str(ARTIFACTS / "notebook7_panel.png"))


def test_panel_turn_runs_an_inserted_cell_in_notebook7(tools_page: Any, module_server: ScriptedServer) -> None:
    """From the panel the cell runs on the main shell, as the user's Run would (an execute_result)."""
    from playwright.sync_api import expect

    page = tools_page
    before = _doc(page)
    module_server.add_response(
        function_call_reply("insert_cell", json.dumps({"source": 'df["y"].sum()', "after": before[1]["id"]}), "ins_p7")
    )
    module_server.add_response(function_call_reply("run_cell", json.dumps({"cell": "2"}), call_id="run_p7"))
    module_server.add_response(text_reply("The sum of y is 7.0.", phase="final_answer"))
    page.fill(f"{PANEL} .jp-AgentPanel-input", "add a cell with the sum of y in df and run it")
    page.press(f"{PANEL} .jp-AgentPanel-input", "Enter")
    card = page.locator(f"{PANEL} .jp-AgentPanel-entry[data-kind='approval']:has-text('run_cell')").last
    card.locator(".jp-AgentPanel-approve").click()
    page.locator(PANEL).get_by_text("The sum of y is 7.0.").wait_for(timeout=45_000)
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    expect(cells.nth(2).locator(".jp-OutputArea-output")).to_contain_text("7.0")
    ran = outputs(module_server.requests[-1].json)["run_p7"]
    assert "(in the notebook): ok" in ran and "[result] " in ran and "7.0" in ran, ran
    page.screenshot(path=str(ARTIFACTS / "notebook7_panel_ran.png"))
    # Z in command mode (Notebook 7's shortcut for Undo Cell Operation) removes the cell.
    cells.nth(2).locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("z")
    expect(cells).to_have_count(3)
    assert [c["id"] for c in _doc(page)] == [c["id"] for c in before]


def test_fix_this_error_from_the_cell_menu_in_notebook7(tools_page: Any, module_server: ScriptedServer) -> None:
    from playwright.sync_api import expect

    page = tools_page
    page.evaluate("""() => {
        const shared = window.jupyterapp.shell.currentWidget.content.model.sharedModel;
        shared.insertCell(shared.cells.length, {cell_type: 'code', source: 'share = sum(df["x"].tolist()) / 0'});
    }""")
    n = len(_doc(page)) - 1
    cell = page.locator(".jp-Notebook .jp-Cell").nth(n)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+Enter")
    cell.locator(".jp-OutputArea-output").get_by_text("ZeroDivisionError").first.wait_for()
    cell_id = _doc(page)[n]["id"]
    fixed = 'share = sum(df["x"].tolist()) / len(df)'
    module_server.add_response(
        function_call_reply("edit_cell", json.dumps({"cell": cell_id, "source": fixed}), call_id="fix_nb7")
    )
    module_server.add_response(text_reply("It divided by 0; it now divides by len(df).", phase="final_answer"))
    cell.locator(".jp-InputPrompt").click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="Agent: Fix this error").click()
    card = page.locator(f"{PANEL} .jp-AgentPanel-entry[data-kind='approval']:has-text('{cell_id}')")
    expect(card.locator(".jp-AgentPanel-preview.jp-mod-diff .jp-mod-add")).to_contain_text("len(df)")
    page.screenshot(path=str(ARTIFACTS / "notebook7_fix_approval.png"))
    card.locator(".jp-AgentPanel-approve").click()
    page.locator(PANEL).get_by_text("It divided by 0; it now divides by len(df).").wait_for()
    assert _doc(page)[n]["source"] == fixed
    assert outputs(module_server.requests[-1].json)["fix_nb7"] == f"Edited cell id={cell_id} index={n}."


def test_kernel_restart_in_notebook7_reconnects_panel_and_bridge(
    tools_page: Any, module_server: ScriptedServer
) -> None:
    page = tools_page
    if not page.locator(PANEL).is_visible():
        page.evaluate("() => window.jupyterapp.commands.execute('jupyter-agent:toggle-panel')")
    page.wait_for_selector(f"{PANEL}[data-status='connected']")
    page.click(".lm-MenuBar-itemLabel:text-is('Kernel')")
    page.click(".lm-Menu-item[data-command='kernelmenu:restart']")
    page.click(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    page.wait_for_selector(".jp-Dialog", state="detached")
    page.wait_for_function(f"document.querySelector('{PANEL}').dataset.status !== 'connected'")
    page.wait_for_selector(f"{PANEL}[data-status='connected']", timeout=60_000)
    # The reloaded agent resumed the conversation the panel had.
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-user:has-text('Do you work in Notebook 7?')")
    run_first_cell(page, page.locator(".jp-Notebook .jp-CodeCell"))  # %agent connect in the new kernel
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', state="attached")
    module_server.add_response(function_call_reply("read_notebook", "{}", call_id="rd_nb7_restart"))
    module_server.add_response(text_reply("Still reading your notebook.", phase="final_answer"))
    page.fill(f"{PANEL} .jp-AgentPanel-input", "Still there?")
    page.press(f"{PANEL} .jp-AgentPanel-input", "Enter")
    page.locator(PANEL).get_by_text("Still reading your notebook.").wait_for(timeout=45_000)
    read = outputs(module_server.requests[-1].json)["rd_nb7_restart"]
    assert read.startswith(DOCUMENT_PREAMBLE) and "df = pd.DataFrame(" in read
    page.screenshot(path=str(ARTIFACTS / "notebook7_after_restart.png"))
