"""Assistant Markdown in the Agent side panel, in real JupyterLab + headless Chromium.

The scripted Responses server streams an answer with a heading, bold text, a list, a fenced Python
block and two script-injection attempts. The panel must render it through JupyterLab's rendermime
(sanitised, code highlighted as in Markdown cells) and give the code block a toolbar whose Copy,
Insert below (one Undo step) and Run work on the notebook. Screenshots in test-artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_agent.testing import ScriptedServer
from jupyter_agent.testing.replies import text_reply

from .lab_server import (
    CANARY_ENV,
    PANEL,
    assert_no_canary,
    jupyter_server,
    lab_page,
    notebook,
    open_panel,
    run_all_cells,
    send,
    shot,
)

pytestmark = pytest.mark.browser

TOKEN = "markdowntoken"
CODE = "print(6*7)"
ANSWER = f"""## Result

The answer is **forty-two**, computed with:

- a multiplication
- a print

```python
{CODE}
```

<img src="x" onerror="window.__agentXss = 'img'">
<script>window.__agentXss = 'script'</script>
<a href="javascript:window.__agentXss = 'link'">click me</a>
"""
ASSISTANT = f"{PANEL} .jp-AgentPanel-assistant"
BLOCK = f"{ASSISTANT} .jp-AgentPanel-codeBlock"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, module_server: ScriptedServer) -> Iterator[str]:
    root = tmp_path_factory.mktemp("lab")
    connect = (
        f"%load_ext jupyter_agent\n%agent connect --base-url {module_server.base_url} --provider compatible"
        f" --model gpt-5.2 --transport sse --api-key-env {CANARY_ENV}"
    )
    (root / "md.ipynb").write_text(json.dumps(notebook(connect, "x = 1", "y = 2")))
    with jupyter_server(root, token=TOKEN) as server:
        yield server.base


@pytest.fixture(scope="module")
def page(lab: str) -> Iterator[Any]:
    url = f"{lab}/lab/tree/md.ipynb?token={TOKEN}&reset"
    with lab_page(url, permissions=["clipboard-read", "clipboard-write"]) as (pg, errors):
        yield pg
        assert_no_canary(pg)
    assert not [e for e in errors if "jupyter-agent" in e or "AgentPanel" in e], errors


def cells(pg: Any) -> list[dict[str, Any]]:
    """The notebook's cells from its document model: source, type, agent metadata, outputs' text."""
    return pg.evaluate("""() => {
        const nb = window.jupyterapp.shell.currentWidget;
        return nb.content.model.sharedModel.cells.map(c => {
            const json = c.toJSON();
            const text = (json.outputs || []).map(o => o.text || (o.data && o.data['text/plain']) || '').join('');
            return {source: c.getSource(), type: json.cell_type, agent: 'jupyter_agent' in (json.metadata || {}), text};
        });
    }""")


def activate_cell(pg: Any, index: int) -> None:
    pg.evaluate(
        """(index) => {
        const nb = window.jupyterapp.shell.currentWidget;
        nb.content.activeCellIndex = index;
        nb.content.deselectAll();
    }""",
        index,
    )


def test_answer_renders_as_sanitised_highlighted_markdown(page: Any, module_server: ScriptedServer) -> None:
    run_all_cells(page)
    open_panel(page)
    page.wait_for_selector(f"{PANEL}[data-status='connected']")
    page.evaluate("() => { delete window.__agentXss; }")
    module_server.add_response(text_reply(ANSWER, phase="final_answer", chunks=16, delay=0.06))
    send(page, "What is six times seven?")
    # While streaming the text shows (throttled Markdown); when done, the final Markdown.
    page.wait_for_selector(f"{ASSISTANT} .jp-AgentPanel-text.jp-mod-streaming")
    page.wait_for_selector(f"{ASSISTANT} .jp-AgentPanel-markdownHost[data-rendered='streaming']")
    host = f"{ASSISTANT} .jp-AgentPanel-markdownHost[data-rendered='final']"
    page.wait_for_selector(host, timeout=30_000)
    page.wait_for_selector(f"{PANEL}[data-busy='false']")
    # Throttled: fewer Markdown renderings than the 16 deltas, and the last one is the final text.
    renders = int(page.get_attribute(host, "data-renders") or 0)
    assert 2 <= renders < 16, renders
    md = f"{host} .jp-RenderedMarkdown.jp-RenderedHTMLCommon"
    assert page.inner_text(f"{md} h2").strip() == "Result"
    assert page.inner_text(f"{md} strong") == "forty-two"
    assert page.locator(f"{md} li").all_inner_texts() == ["a multiplication", "a print"]
    # Highlighted by the application's Markdown parser, as in Markdown cells.
    code = f"{md} pre code.language-python"
    assert page.inner_text(code).strip() == CODE
    assert page.locator(f"{code} span").count() >= 2, page.inner_html(code)
    # Sanitised: no script element, no event handler, no javascript: link, nothing ran.
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__agentXss") is None
    assert page.locator(f"{md} script").count() == 0
    handlers = page.evaluate(
        """(sel) => [...document.querySelectorAll(sel + ' *')]
            .flatMap(el => [...el.attributes].map(a => a.name + '=' + a.value))
            .filter(a => /^on/i.test(a) || /javascript:/i.test(a))""",
        md,
    )
    assert handlers == []
    assert "window.__agentXss" not in page.inner_text(md)
    # One toolbar on the one code block, accessible buttons.
    assert page.locator(BLOCK).count() == 1
    for cls, label in (
        ("Copy", "Copy"),
        ("Insert", "Insert"),
        ("Run", "Insert the code below the active cell and run"),
    ):
        b = page.locator(f"{BLOCK} .jp-AgentPanel-code{cls}")
        assert label in (b.get_attribute("aria-label") or ""), cls
        assert b.get_attribute("title") and b.is_enabled()
    assert page.inner_text(f"{BLOCK} .jp-AgentPanel-codeLanguage") == "python"
    page.locator(ASSISTANT).last.scroll_into_view_if_needed()
    shot(page, "panel-markdown")


def test_copy_puts_the_code_on_the_clipboard(page: Any) -> None:
    page.evaluate("() => navigator.clipboard.writeText('before')")
    page.click(f"{BLOCK} .jp-AgentPanel-codeCopy")
    page.wait_for_selector(f"{BLOCK} .jp-AgentPanel-codeCopy.jp-mod-copied:has-text('Copied')")
    assert page.evaluate("() => navigator.clipboard.readText()") == CODE
    # Without the async Clipboard API the copy-event fallback carries the same text.
    copied = page.evaluate("""async () => {
        const original = navigator.clipboard.writeText;
        navigator.clipboard.writeText = () => Promise.reject(new Error('denied'));
        let seen = null;
        const listen = ev => { seen = ev.clipboardData.getData('text'); };
        window.addEventListener('copy', listen);
        try {
            await new Promise(r => setTimeout(r, 1600));  // the previous "Copied" state ends
            document.querySelector('.jp-AgentPanel-codeBlock .jp-AgentPanel-codeCopy').click();
            for (let i = 0; i < 50 && seen === null; i++) await new Promise(r => setTimeout(r, 20));
        } finally {
            navigator.clipboard.writeText = original;
            window.removeEventListener('copy', listen);
        }
        return seen;
    }""")
    assert copied == CODE


def test_insert_below_adds_a_user_cell_and_undo_removes_it(page: Any) -> None:
    before = cells(page)
    activate_cell(page, 1)
    page.click(f"{BLOCK} .jp-AgentPanel-codeInsert")
    page.wait_for_function(f"window.jupyterapp.shell.currentWidget.content.model.cells.length === {len(before) + 1}")
    after = cells(page)
    assert after[2]["source"] == CODE and after[2]["type"] == "code"
    assert [c["source"] for c in after[:2]] == [c["source"] for c in before[:2]]
    assert [c["source"] for c in after[3:]] == [c["source"] for c in before[2:]]
    # The user clicked: the cell is the user's (no agent metadata, no agent badge), not run.
    assert not after[2]["agent"] and after[2]["text"] == ""
    assert page.locator(".jp-Notebook .jp-Cell.jp-AgentCell").count() == 0
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCellIndex") == 2
    shot(page, "panel-markdown-inserted")
    # Edit -> Undo Cell Operation (JupyterLab 4's document-level undo; Z in command mode) removes
    # exactly that cell. (Edit -> Undo is the active cell editor's text undo.)
    page.click(".lm-MenuBar-itemLabel:text-is('Edit')")
    page.click(".lm-Menu-item[data-command='notebook:undo-cell-action']")
    page.wait_for_function(f"window.jupyterapp.shell.currentWidget.content.model.cells.length === {len(before)}")
    assert [c["source"] for c in cells(page)] == [c["source"] for c in before]


def test_run_inserts_the_cell_and_runs_it_in_the_kernel(page: Any) -> None:
    before = cells(page)
    activate_cell(page, 0)
    page.click(f"{BLOCK} .jp-AgentPanel-codeRun")
    page.wait_for_function(f"window.jupyterapp.shell.currentWidget.content.model.cells.length === {len(before) + 1}")
    page.wait_for_function(
        """() => {
        const cell = window.jupyterapp.shell.currentWidget.content.widgets[1];
        return cell.model.executionCount !== null && cell.node.querySelector('.jp-OutputArea-output')
            && cell.node.querySelector('.jp-OutputArea-output').textContent.trim() === '42';
    }""",
        timeout=30_000,
    )
    after = cells(page)
    assert after[1]["source"] == CODE and not after[1]["agent"]
    assert after[1]["text"].strip() == "42"
    assert [c["source"] for c in after[2:]] == [c["source"] for c in before[1:]]
    shot(page, "panel-markdown-run")
