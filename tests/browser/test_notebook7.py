"""``%%agent`` in Notebook 7 (``jupyter notebook``, headless Chromium): /tree lists the notebook,
/notebooks/... runs it, the live view renders (ipywidgets), a pinned ``%agent limits`` widget in an
earlier cell follows the turn, and the final rendering is the stable markdown.

The kernel starts the scripted Responses server with a reply that has a commentary message, a web
search, a final answer, rate-limit headers and an ``openai-model`` other than the requested one.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .lab_server import (
    ARTIFACTS,
    CANARY_ENV,
    CHROMIUM,
    assert_no_canary,
    jupyter_server,
    write_notebook,
)
from .lab_server import (
    CHROMIUM_ARGS as ARGS,
)

pytestmark = pytest.mark.browser

TOKEN = "notebook7-token"
NOTEBOOK = "nb7_agent.ipynb"

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


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb7")
    _notebook(root / NOTEBOOK)
    with jupyter_server(root, token=TOKEN, app="notebook") as server:
        yield server.base


def test_agent_cell_live_view_in_notebook7(notebook7):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        try:
            # The Notebook 7 file browser lists the notebook.
            page.goto(f"{notebook7}/tree?token={TOKEN}")
            expect(page.get_by_text(NOTEBOOK)).to_be_visible(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "notebook7_tree.png"))

            page.goto(f"{notebook7}/notebooks/{NOTEBOOK}?token={TOKEN}")
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
            # Notebook 7's own toolbar: kernel logo, and an execution indicator that says when the kernel is
            # idle (it must be before running: a run sent earlier is lost).
            expect(page.locator(".jp-NotebookKernelLogo")).to_be_attached()
            page.wait_for_selector(
                '.jp-Notebook-ExecutionIndicator[data-status="idle"]', state="attached", timeout=60_000
            )
            page.wait_for_timeout(500)
            cells = page.locator(".jp-Notebook .jp-CodeCell")
            pinned = cells.nth(1).locator(".jp-OutputArea")
            out = cells.nth(2).locator(".jp-OutputArea")
            # Run the set-up cell and the %agent limits cell first: the pinned widget has no data yet.
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
        finally:
            browser.close()
