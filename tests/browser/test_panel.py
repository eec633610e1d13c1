"""The Agent side panel in real JupyterLab + headless Chromium (Playwright, system Chromium).

The scripted Responses server runs in this pytest process; the notebooks' kernels connect to it
with ``%agent connect``. One JupyterLab and one browser page serve the whole module; the tests run
in order (open, chat, stop, kernel stays free, switch notebooks, restart) and save screenshots to
``test-artifacts/``.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_agent.testing import Reply, ScriptedServer
from jupyter_agent.testing.replies import _message_events, _number, completed_event, created_event, text_events

from .lab_server import (
    CANARY,
    CANARY_ENV,
    PANEL,
    ROOT,
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

TOKEN = "paneltoken"
SERVED_MODEL = "gpt-5-mini"


def rich_reply() -> Reply:
    """A web search, a commentary message and a final answer, streamed slowly, with rate-limit
    headers and a served model that differs from the requested one (reroute warning)."""
    rid = "resp_panel_1"
    ws = {"type": "web_search_call", "id": "ws_1", "status": "in_progress"}
    ws_done = {**ws, "status": "completed", "action": {"type": "search", "query": "jupyter comm protocol"}}
    note, note_done = _message_events("Let me look that up.", "commentary", 1, 4)
    answer, answer_done = _message_events(
        "Jupyter comms are bidirectional channels between a frontend and the kernel.", "final_answer", 2, 8
    )
    events = [
        created_event(rid, SERVED_MODEL),
        {"type": "response.output_item.added", "output_index": 0, "item": ws},
        {"type": "response.web_search_call.in_progress", "output_index": 0, "item_id": "ws_1"},
        {"type": "response.web_search_call.searching", "output_index": 0, "item_id": "ws_1"},
        {"type": "response.web_search_call.completed", "output_index": 0, "item_id": "ws_1"},
        {"type": "response.output_item.done", "output_index": 0, "item": ws_done},
        *note,
        *answer,
        completed_event(rid, SERVED_MODEL, [ws_done, note_done, answer_done]),
    ]
    headers = {
        "openai-model": SERVED_MODEL,
        "x-codex-primary-used-percent": "42",
        "x-codex-primary-window-minutes": "300",
        "x-codex-secondary-used-percent": "12",
        "x-codex-secondary-window-minutes": "10080",
    }
    return Reply(headers=headers, events=_number(events), delay=0.12)


def slow_reply(text: str, chunks: int, delay: float) -> Reply:
    return Reply(
        headers={"openai-model": "gpt-5.2"},
        events=text_events(text, model="gpt-5.2", phase="final_answer", chunks=chunks),
        delay=delay,
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, module_server: ScriptedServer) -> Iterator[str]:
    root = tmp_path_factory.mktemp("lab")
    connect = (
        f"%agent connect --base-url {module_server.base_url} --provider compatible --model gpt-5.2 --transport sse"
        f" --api-key-env {CANARY_ENV}"
    )
    (root / "alpha.ipynb").write_text(json.dumps(notebook("%load_ext jupyter_agent", connect, "x = 41")))
    (root / "beta.ipynb").write_text(json.dumps(notebook(connect)))
    quickstart = ROOT / "notebooks" / "01-quickstart.ipynb"
    if quickstart.exists():
        (root / "quickstart.ipynb").write_text(quickstart.read_text())
    with jupyter_server(root, token=TOKEN) as lab_server:
        yield lab_server.base
    # every request the kernels made carried the key (which the server-stop check found nowhere)
    assert module_server.requests and {r.headers.get("authorization") for r in module_server.requests} == {
        f"Bearer {CANARY}"
    }


@pytest.fixture(scope="module")
def page(lab: str) -> Iterator[Any]:
    with lab_page(f"{lab}/lab/tree/alpha.ipynb?token={TOKEN}&reset") as (pg, errors):
        yield pg
        shot(pg, "panel-final")
        assert_no_canary(pg)
    assert not [e for e in errors if "jupyter-agent" in e or "AgentPanel" in e], errors


def test_panel_connects_to_the_notebook_kernel(page: Any) -> None:
    run_all_cells(page)
    open_panel(page)
    page.wait_for_selector(f"{PANEL}[data-status='connected']")
    status = page.inner_text(f"{PANEL} .jp-AgentPanel-connection")
    assert "gpt-5.2" in status and "compatible" in status and "sse" in status
    assert "alpha.ipynb" in page.inner_text(f"{PANEL} .jp-AgentPanel-title")


def test_streaming_turn_with_phases_search_gauges_and_warning(page: Any, module_server: ScriptedServer) -> None:
    module_server.add_response(rich_reply())
    send(page, "How do Jupyter comms work?")
    # The prompt appears at once, then the stream: search progress first.
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-user:has-text('How do Jupyter comms work?')")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-search")
    page.wait_for_selector(f"{PANEL}[data-busy='true']")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-phase:has-text('Commentary')")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-text.jp-mod-streaming")
    shot(page, "panel-streaming")
    page.wait_for_selector(f"{PANEL}[data-busy='false']", timeout=30_000)
    texts = page.locator(f"{PANEL} .jp-AgentPanel-entry").all_inner_texts()
    joined = "\n".join(texts)
    assert "Searched jupyter comm protocol" in joined
    assert "Let me look that up." in joined
    assert "Jupyter comms are bidirectional channels between a frontend and the kernel." in joined
    assert page.locator(f"{PANEL} .jp-AgentPanel-phase:has-text('Final answer')").count() == 1
    warning = page.inner_text(f"{PANEL} .jp-AgentPanel-warning")
    assert SERVED_MODEL in warning and "gpt-5.2" in warning
    gauges = page.locator(f"{PANEL} .jp-AgentPanel-gauge").all_inner_texts()
    assert any("5h" in g and "42%" in g for g in gauges), gauges
    assert any("1w" in g and "12%" in g for g in gauges), gauges
    # Issue 14: the context gauge comes first; gpt-5.2's window from the documented table.
    assert gauges[0].startswith("Context"), gauges
    context_title = page.get_attribute(f"{PANEL} .jp-AgentPanel-gauge[data-limit='context']", "title") or ""
    assert "/ 400,000 tokens; known model table" in context_title, context_title
    # The kernel-side request carried the panel's prompt.
    body = module_server.requests[-1].json
    assert "How do Jupyter comms work?" in json.dumps(body["input"])
    shot(page, "panel-light")


def test_stop_button_interrupts_the_turn(page: Any, module_server: ScriptedServer) -> None:
    long_text = " ".join(f"word{i}" for i in range(200))
    module_server.add_response(slow_reply(long_text, chunks=100, delay=0.1))
    send(page, "Write a long story.")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-text.jp-mod-streaming:has-text('word1')")
    assert page.is_enabled(f"{PANEL} .jp-AgentPanel-stop")
    page.click(f"{PANEL} .jp-AgentPanel-stop")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-entry[data-kind='status']:has-text('Stopped.')", timeout=15_000)
    page.wait_for_selector(f"{PANEL}[data-busy='false']")
    assert page.is_disabled(f"{PANEL} .jp-AgentPanel-stop")
    streamed = page.locator(f"{PANEL} .jp-AgentPanel-assistant").last.inner_text()
    assert "word1" in streamed and "word199" not in streamed
    shot(page, "panel-stopped")


def test_notebook_cells_run_while_the_panel_streams(page: Any, module_server: ScriptedServer) -> None:
    module_server.add_response(slow_reply("tick " * 60, chunks=60, delay=0.1))
    send(page, "Count slowly.")
    page.wait_for_selector(f"{PANEL}[data-busy='true']")
    # Execute a cell in the notebook while the panel turn streams.
    t0 = time.monotonic()
    result = page.evaluate("""async () => {
        const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        const t0 = performance.now();
        const future = kernel.requestExecute({code: 'x + 1', silent: false, store_history: false});
        let text = '';
        future.onIOPub = msg => { if (msg.header.msg_type === 'execute_result') text = msg.content.data['text/plain']; };
        await future.done;
        return {text, ms: performance.now() - t0};
    }""")
    assert result["text"] == "42"
    assert result["ms"] < 2000, result
    assert page.get_attribute(PANEL, "data-busy") == "true", "the panel turn should still be streaming"
    assert time.monotonic() - t0 < 5
    page.wait_for_selector(f"{PANEL}[data-busy='false']", timeout=30_000)


def test_cell_turns_show_in_the_panel(page: Any, module_server: ScriptedServer) -> None:
    module_server.add_response(slow_reply("From the cell.", chunks=2, delay=0.05))
    page.evaluate("""async () => {
        const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        await kernel.requestExecute({code: '%%agent\\nHello from a cell'}).done;
    }""")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-user:has-text('You (cell)'):has-text('Hello from a cell')")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-assistant:has-text('From the cell.')")


def test_switching_notebooks_follows_the_kernel(page: Any, module_server: ScriptedServer) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', {path: 'beta.ipynb'})")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-title:has-text('beta.ipynb')")
    # beta's kernel has not loaded jupyter_agent: the panel offers to load it.
    page.wait_for_selector(f"{PANEL}[data-status='not-loaded']")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-loadButton:has-text('Load jupyter_agent in this kernel')")
    assert page.locator(f"{PANEL} .jp-AgentPanel-entry").count() == 0
    shot(page, "panel-not-loaded")
    page.click(f"{PANEL} .jp-AgentPanel-loadButton")
    page.wait_for_selector(f"{PANEL}[data-status='connected']")
    run_all_cells(page)  # %agent connect in beta's kernel
    module_server.add_response(slow_reply("Beta answer.", chunks=2, delay=0.05))
    send(page, "Hello beta")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-assistant:has-text('Beta answer.')")
    assert "Write a long story." not in page.inner_text(f"{PANEL} .jp-AgentPanel-messages")
    # Back to alpha: its conversation again.
    page.click(".lm-TabBar-tab:has-text('alpha.ipynb')")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-title:has-text('alpha.ipynb')")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-user:has-text('Write a long story.')")
    assert "Hello beta" not in page.inner_text(f"{PANEL} .jp-AgentPanel-messages")


def test_kernel_restart_reconnects(page: Any, module_server: ScriptedServer) -> None:
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    page.wait_for_function(f"document.querySelector('{PANEL}').dataset.status !== 'connected'")
    page.wait_for_selector(f"{PANEL}[data-status='connected']", timeout=60_000)
    # The new kernel's agent: its transcript is what the panel shows.
    transcript = page.evaluate("""async () => {
        const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        let text = '';
        const f = kernel.requestExecute({code: 'import json; from jupyter_agent import get_agent; print(json.dumps(get_agent().transcript()))'});
        f.onIOPub = msg => { if (msg.header.msg_type === 'stream') text += msg.content.text; };
        await f.done;
        return JSON.parse(text);
    }""")
    # The panel asked the new kernel to continue the notebook's saved conversation.
    chat = [m for m in transcript if m["role"] in ("user", "assistant")]
    assert len(chat) >= 2, transcript
    page.wait_for_function(
        f"document.querySelectorAll('{PANEL} .jp-AgentPanel-user, {PANEL} .jp-AgentPanel-assistant').length >= {len(chat)}"
    )
    shown = page.locator(f"{PANEL} .jp-AgentPanel-user, {PANEL} .jp-AgentPanel-assistant").all_inner_texts()
    assert len(shown) == len(chat)
    # Assistant text is rendered Markdown: compare with whitespace collapsed (a trailing space goes).
    squeezed = [" ".join(s.split()) for s in shown]
    for want in [" ".join(m["text"].split()) for m in chat]:
        assert any(want in s for s in squeezed), want
    # The reconnected comm carries new turns.
    run_all_cells(page)
    module_server.add_response(slow_reply("After the restart.", chunks=2, delay=0.05))
    send(page, "Still there?")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-assistant:has-text('After the restart.')")
    shot(page, "panel-after-restart")


def restart_from(pg: Any, where: str) -> None:
    """Restart the kernel the way users do: Kernel menu or the notebook toolbar, then confirm."""
    if where == "menu":
        pg.click(".lm-MenuBar-itemLabel:text-is('Kernel')")
        pg.click(".lm-Menu-item[data-command='kernelmenu:restart']")
    else:
        pg.click(".jp-NotebookPanel-toolbar [data-jp-item-name='restart'] button")
    pg.click(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    pg.wait_for_selector(".jp-Dialog", state="detached")


@pytest.mark.parametrize("where", ["menu", "toolbar"])
def test_restart_from_the_kernel_menu_and_toolbar_reloads_and_resumes(
    page: Any, module_server: ScriptedServer, where: str
) -> None:
    """JupyterLab's own restart (SessionContext.restartKernel) re-emits kernelChanged with the same
    kernel; the panel must still reload the extension in the new kernel and resume the conversation."""
    marker = f"Before the {where} restart"
    module_server.add_response(slow_reply(f"Noted ({where}).", chunks=2, delay=0.05))
    send(page, marker)
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-assistant:has-text('Noted ({where}).')")
    page.wait_for_selector(f"{PANEL}[data-busy='false']")
    restart_from(page, where)
    page.wait_for_function(f"document.querySelector('{PANEL}').dataset.status !== 'connected'")
    page.wait_for_selector(f"{PANEL}[data-status='connected']", timeout=60_000)
    # A fresh kernel: connected means the panel loaded jupyter_agent into it; resumed means the
    # new kernel's agent holds the saved conversation, which the panel shows.
    transcript = page.evaluate("""async () => {
        const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        let text = '';
        const f = kernel.requestExecute({code: 'import json; from jupyter_agent import get_agent; print(json.dumps(get_agent().transcript()))'});
        f.onIOPub = msg => { if (msg.header.msg_type === 'stream') text += msg.content.text; };
        await f.done;
        return JSON.parse(text);
    }""")
    assert marker in [m["text"] for m in transcript], transcript
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-user:has-text('{marker}')")
    assert page.get_attribute(PANEL, "data-status") == "connected"
    # ... and stays connected (the old bug ended at not-loaded a moment later).
    page.wait_for_timeout(1500)
    assert page.get_attribute(PANEL, "data-status") == "connected"
    run_all_cells(page)
    module_server.add_response(slow_reply(f"Back after the {where} restart.", chunks=2, delay=0.05))
    send(page, "Still there?")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-assistant:has-text('Back after the {where} restart.')")
    shot(page, f"panel-after-{where}-restart")


def test_dark_theme(page: Any) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_timeout(500)
    bg = page.evaluate(f"getComputedStyle(document.querySelector('{PANEL}')).backgroundColor")
    fg = page.evaluate(f"getComputedStyle(document.querySelector('{PANEL} .jp-AgentPanel-messages')).color")
    assert bg != "rgb(255, 255, 255)" and fg != "rgba(0, 0, 0, 0.87)", (bg, fg)
    shot(page, "panel-dark")
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'true'")


@pytest.mark.localmodel
def test_quickstart_kernel_chats_on_the_embedded_model(page: Any, lab: str) -> None:
    """The `make run` story: the quickstart notebook's kernel, no key, the embedded model."""
    try:
        from jupyter_agent.providers.local import find_model_path

        find_model_path()
    except Exception as exc:  # noqa: BLE001 - any failure to find the model means skip
        pytest.skip(f"embedded model unavailable: {exc}")
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:open', {path: 'quickstart.ipynb'})")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-title:has-text('quickstart.ipynb')")
    page.wait_for_selector(f"{PANEL}[data-status='not-loaded']")
    # Run the notebook's first code cell (%load_ext jupyter_agent), as a user would.
    page.evaluate("""async () => {
        const nb = window.jupyterapp.shell.currentWidget;
        await nb.sessionContext.ready;
        const idx = nb.content.widgets.findIndex(c => c.model.type === 'code');
        nb.content.activeCellIndex = idx;
        await window.jupyterapp.commands.execute('notebook:run-cell');
    }""")
    # The panel sees the cell load the extension and connects without a click.
    page.wait_for_selector(f"{PANEL}[data-status='connected']", timeout=60_000)
    assert "local" in page.inner_text(f"{PANEL} .jp-AgentPanel-connection")
    send(page, "What is the capital of France?")
    page.wait_for_selector(f"{PANEL}[data-busy='true']")
    page.wait_for_selector(f"{PANEL}[data-busy='false']", timeout=120_000)
    answer = page.locator(f"{PANEL} .jp-AgentPanel-assistant").last.inner_text()
    assert answer.strip(), "the embedded model answered nothing"
    assert page.locator(f"{PANEL} .jp-AgentPanel-error").count() == 0
    shot(page, "panel-quickstart-local-model")


def test_settings_are_in_the_registry(page: Any, lab: str) -> None:
    settings = json.loads(
        urllib.request.urlopen(f"{lab}/lab/api/settings/jupyter-agent:plugin?token={TOKEN}", timeout=10).read()
    )
    props = settings["schema"]["properties"]
    assert props["position"]["default"] == "right" and props["position"]["enum"] == ["right", "left"]
    assert props["showReasoning"]["default"] is True
    assert {"reloadAfterRestart", "sendOnEnter"} <= set(props)
    # The panel lives in the right side bar by default.
    assert page.locator(f".jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id='{PANEL[1:]}']").count() == 1
