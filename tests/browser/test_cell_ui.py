"""A ``%%agent`` cell in real JupyterLab (headless Chromium): the live view and the final rendering.

The notebook starts the scripted Responses server in the kernel with a reply that has a
commentary message, a web search, a final answer, rate-limit headers (codex windows and OpenAI
``x-ratelimit-*``) and an ``openai-model`` other than the requested one. Screenshots go to
``test-artifacts/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .lab_server import (
    ARTIFACTS,
    CANARY_ENV,
    assert_no_canary,
    browser_page,
    jupyter_server,
    write_notebook,
)

pytestmark = pytest.mark.browser

TOKEN = "cell-ui-token"

SETUP = r"""
import time
from jupyter_agent.testing import ScriptedServer, Reply, Ev
from jupyter_agent.testing.replies import _message_events, _number, created_event, completed_event

def scripted_reply():
    rid = "resp_ui_1"
    commentary, c_done = _message_events("Let me look that up on the web first.", "commentary", 0, 3)
    started = {"type": "web_search_call", "id": "ws_ui_1", "status": "in_progress"}
    searched = {"type": "web_search_call", "id": "ws_ui_1", "status": "completed",
                "action": {"type": "search", "query": "weather seattle"}}
    answer, a_done = _message_events("It is **sunny** in Seattle today, around 21 °C.", "final_answer", 2, 6)
    events = _number([created_event(rid, "gpt-5.2"), *commentary,
                      {"type": "response.output_item.added", "output_index": 1, "item": started},
                      {"type": "response.output_item.done", "output_index": 1, "item": searched},
                      *answer, completed_event(rid, "gpt-5.2", [c_done, searched, a_done])])
    now = int(time.time())
    headers = {
        "openai-model": "gpt-5.2",
        "x-codex-primary-used-percent": "75", "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": str(now + 3600),
        "x-codex-secondary-used-percent": "93", "x-codex-secondary-window-minutes": "10080",
        "x-codex-secondary-reset-at": str(now + 3 * 86400),
        "x-ratelimit-limit-requests": "5000", "x-ratelimit-remaining-requests": "4999", "x-ratelimit-reset-requests": "12ms",
        "x-ratelimit-limit-tokens": "200000", "x-ratelimit-remaining-tokens": "150000", "x-ratelimit-reset-tokens": "6s",
    }
    # Slow enough to see the live view: the search stays in progress for a while.
    timed = [Ev(e, 0.6 if e.get("type") in ("response.output_item.done", "response.output_text.delta") else 0.05) for e in events]
    return Reply(headers=headers, events=timed)

server = ScriptedServer().start()
server.add_response(scripted_reply())
%load_ext jupyter_agent
%agent connect --base-url {server.base_url} --provider compatible --model gpt-5.3-codex --transport sse --api-key-env CANARY_ENV_NAME
"""


def _notebook(path: Path) -> None:
    setup = SETUP.replace("{server.base_url}", "$server.base_url").replace("CANARY_ENV_NAME", CANARY_ENV).strip()
    write_notebook(path, setup, "%%agent\nWhat is the weather in Seattle?")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    _notebook(root / "cell_ui.ipynb")
    with jupyter_server(root, token=TOKEN) as server:
        yield server.base


def test_agent_cell_renders_phases_search_gauges_and_warning(lab):
    from playwright.sync_api import expect

    with browser_page(viewport=(1300, 1100)) as (page, _errors):
        try:
            page.goto(f"{lab}/lab/tree/cell_ui.ipynb?token={TOKEN}&reset")
            page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            # The kernel must be connected before running (a Shift+Enter sent earlier is lost).
            expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=60_000)
            page.wait_for_timeout(500)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_text("Run All Cells", exact=True).click()
            cell = page.locator(".jp-Notebook .jp-CodeCell").nth(1)
            out = cell.locator(".jp-OutputArea")

            # Live view while the turn runs.
            expect(out.locator(".jupyter-agent-turn")).to_be_visible(timeout=30_000)
            expect(out.get_by_role("button", name="Stop")).to_be_visible()
            expect(out.get_by_text("Searching the web")).to_be_visible(timeout=15_000)
            expect(out.get_by_text("Commentary (interim)")).to_be_visible()
            expect(out.locator(".jpa-warn")).to_contain_text("gpt-5.2")
            expect(out.locator(".jpa-gauges")).to_contain_text("5h limit")
            page.screenshot(path=str(ARTIFACTS / "cell_ui_live.png"))
            expect(out.get_by_text("Searched weather seattle")).to_be_visible(timeout=15_000)
            page.screenshot(path=str(ARTIFACTS / "cell_ui_live_searched.png"))

            # Final rendering (markdown); the live widget is gone.
            expect(out.locator(".jupyter-agent-turn")).to_have_count(0, timeout=30_000)
            final = out.locator(".jp-RenderedMarkdown")
            expect(final).to_have_count(1)
            expect(final).to_contain_text("Final answer")
            text = final.inner_text()
            for needle in (
                "Commentary (interim)",
                "Let me look that up on the web first.",
                "Final answer",
                "It is sunny in Seattle today",
                "Searched weather seattle",
                "Warning",
                "gpt-5.3-codex",
                "gpt-5.2",
                "5h limit",
                "Weekly limit",
                "Requests limit",
                "Tokens limit",
                "25% left",
                "7% left",
                "4,999/5,000 left",
                "Tokens:",
            ):
                assert needle in text, (needle, text)
            assert text.count("Searched weather seattle") == 1
            assert "Reasoning summary" not in text  # no reasoning in this reply
            assert "Agent turn (live view)" not in out.inner_text()
            cell.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "cell_ui_final.png"))
            # The key the notebook connected with is nowhere in the page or the saved notebook.
            assert_no_canary(page)
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "cell_ui_failure.png"))
            raise
