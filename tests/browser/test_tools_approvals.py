"""The issue's "done when", in real JupyterLab (headless Chromium): the user asks "what is the mean
of column x in df?", the agent inspects ``df``, asks before running code (the cell's Approve
button is clicked), answers; after a kernel restart ``%agent resume`` continues the conversation.

The scripted Responses server runs in the test process (it must outlive the kernel restart).
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_agent.testing.replies import function_call_reply, text_reply

from .lab_server import (
    ARTIFACTS,
    CANARY,
    CANARY_ENV,
    assert_no_canary,
    browser_page,
    jupyter_server,
    write_notebook,
)

pytestmark = pytest.mark.browser

TOKEN = "tools-ui-token"


def _notebook(path: Path, base_url: str) -> None:
    connect = (
        f"%load_ext jupyter_agent\n%agent connect --base-url {base_url} --provider compatible --model gpt-5.2"
        f" --transport sse --api-key-env {CANARY_ENV}"
    )
    write_notebook(
        path,
        connect,
        "import pandas as pd\ndf = pd.DataFrame({'x': [1.0, 2.0, 6.0]})",
        "%%agent\nWhat is the mean of column x in df?",
        connect + "\n%agent resume",
        "%%agent\nAnd what did you run?",
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory, module_server):
    root = tmp_path_factory.mktemp("lab")
    _notebook(root / "analysis.ipynb", module_server.base_url)
    with jupyter_server(root, token=TOKEN, env={"JUPYTER_AGENT_HISTORY_DIR": str(root / "_history")}) as lab_server:
        yield lab_server.base, root


def test_mean_of_x_with_approval_survives_a_kernel_restart(lab, module_server):
    from playwright.sync_api import expect

    base, root = lab
    module_server.add_response(
        function_call_reply(
            "describe_variable", '{"name": "df"}', call_id="call_1", preamble="Let me look at df first."
        )
    )
    module_server.add_response(function_call_reply("run_python", '{"code": "df[\\"x\\"].mean()"}', call_id="call_2"))
    module_server.add_response(text_reply("The mean of column x is 3.0.", phase="final_answer"))
    with browser_page(viewport=(1300, 1100)) as (page, _errors):
        try:
            page.goto(f"{base}/lab/tree/analysis.ipynb?token={TOKEN}&reset")
            page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            idle = page.get_by_text("Python 3 (ipykernel) | Idle")
            expect(idle).to_be_visible(timeout=60_000)
            cells = page.locator(".jp-Notebook .jp-CodeCell")

            def run(i: int) -> None:
                cells.nth(i).locator(".jp-InputArea-editor").click()
                page.keyboard.press("Control+Enter")

            def final_of(i: int):
                """The turn's final markdown, once the live view is gone."""
                area = cells.nth(i).locator(".jp-Cell-outputArea")
                expect(area.locator(".jp-RenderedMarkdown").first).to_be_visible(timeout=30_000)
                expect(area.locator(".jupyter-agent-turn")).to_have_count(0, timeout=30_000)
                final = area.locator(".jp-RenderedMarkdown")
                expect(final).to_have_count(1)
                return final

            run(0)
            expect(cells.nth(0).locator(".jp-Cell-outputArea")).to_contain_text("Connected", timeout=30_000)
            run(1)
            run(2)
            out = cells.nth(2).locator(".jp-Cell-outputArea")
            approve = out.get_by_role("button", name="Approve", exact=True)
            expect(approve).to_be_visible(timeout=30_000)
            expect(out).to_contain_text("run_python")
            expect(out).to_contain_text('df["x"].mean()')
            assert len(module_server.requests) == 2  # the code has not run: the model waits for it
            assert (
                "x    float64"
                in [i for i in module_server.requests[1].json["input"] if i.get("type") == "function_call_output"][0][
                    "output"
                ]
            )
            page.screenshot(path=str(ARTIFACTS / "tools_approval_pending.png"))
            approve.click()
            final = final_of(2)
            expect(final).to_contain_text("The mean of column x is 3.0.")
            expect(final).to_contain_text("np.float64(3.0)")
            page.screenshot(path=str(ARTIFACTS / "tools_approval_answered.png"))

            # Restart the kernel; the conversation comes back with %agent resume.
            page.get_by_role("menuitem", name="Kernel", exact=True).click()
            page.get_by_text("Restart Kernel…", exact=True).click()
            page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
            expect(idle).to_be_visible(timeout=60_000)
            run(3)
            resumed = cells.nth(3).locator(".jp-Cell-outputArea")
            expect(resumed).to_contain_text("Resumed the conversation started", timeout=30_000)
            expect(resumed).to_contain_text("Last answer: The mean of column x is 3.0.")
            module_server.add_response(text_reply('I ran df["x"].mean().', phase="final_answer"))
            run(4)
            expect(final_of(4)).to_contain_text('I ran df["x"].mean().')
            page.screenshot(path=str(ARTIFACTS / "tools_approval_resumed.png"))
            assert_no_canary(page)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "tools_approval_failure.png"))
            raise
    last = module_server.requests[-1].json["input"]
    calls = [i for i in last if i.get("type") == "function_call"]
    assert [c["name"] for c in calls] == ["describe_variable", "run_python"]
    assert last[0]["content"][0]["text"] == "What is the mean of column x in df?"
    assert last[-1]["content"][0]["text"] == "And what did you run?"
    # the key was used on every request (and, checked when the server stops, saved nowhere)
    assert {r.headers.get("authorization") for r in module_server.requests} == {f"Bearer {CANARY}"}
    saved = list((root / "_history").glob("analysis-*/*.jsonl"))
    assert len(saved) == 1  # one conversation, continued after the restart
