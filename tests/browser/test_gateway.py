"""jupyter_agent on a remote kernel: JupyterLab with ``--GatewayClient.url`` in front of a real
``jupyter kernelgateway`` (both on 127.0.0.1, each in its own temporary directory), headless Chromium.

The kernel runs in the gateway's directory with the gateway's environment (the API key's variable
whitelisted, no ``JPY_SESSION_NAME``), so it cannot see its notebook: the panel names it in
``hello``. The scripted Responses server runs in this pytest process (it outlives kernel restarts).
In order: a ``%%agent`` cell streams with phase labels; the side panel attaches to the remote
kernel and chats; an approval card works; Stop works; a restart from the Kernel menu reloads
jupyter_agent in the panel and resumes the notebook's conversation. A restart through the gateway
often leaves the kernel deaf to shell requests (a Kernel Gateway issue, see the README); the test
then does what a user does, Kernel → Reconnect to Kernel, and the panel must recover without a
page reload.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_agent.testing import Reply, ScriptedServer
from jupyter_agent.testing.replies import (
    _message_events,
    _number,
    completed_event,
    created_event,
    function_call_reply,
    text_reply,
)

from .gateway_server import kernel_gateway, wait_for_idle_kernel
from .lab_server import (
    ARTIFACTS,
    CANARY,
    CANARY_ENV,
    agent_errors,
    assert_no_canary,
    browser_page,
    jupyter_server,
    write_notebook,
)

pytestmark = pytest.mark.browser

TOKEN = "gateway-lab-token"
PANEL = "#jupyter-agent-panel"
NOTEBOOK = "remote.ipynb"


def phased_reply(commentary: str, answer: str, delay: float) -> Reply:
    rid = "resp_gateway_cell"
    note, note_done = _message_events(commentary, "commentary", 0, 6)
    final, final_done = _message_events(answer, "final_answer", 1, 12)
    events = [created_event(rid, "gpt-5.2"), *note, *final, completed_event(rid, "gpt-5.2", [note_done, final_done])]
    return Reply(headers={"openai-model": "gpt-5.2"}, events=_number(events), delay=delay)


def slow_reply(text: str, chunks: int, delay: float) -> Reply:
    return text_reply(text, model="gpt-5.2", phase="final_answer", chunks=chunks, delay=delay)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, server: ScriptedServer) -> Iterator[dict[str, Any]]:
    gateway_root = tmp_path_factory.mktemp("gateway")
    lab_root = tmp_path_factory.mktemp("lab")
    history = gateway_root / "history"
    connect = (
        f"%load_ext jupyter_agent\n%agent connect --base-url {server.base_url} --provider compatible"
        f" --model gpt-5.2 --transport sse --api-key-env {CANARY_ENV}"
    )
    write_notebook(lab_root / NOTEBOOK, connect, "%%agent\nHow do kernel gateways work?")
    with kernel_gateway(
        gateway_root, env={"JUPYTER_AGENT_HISTORY_DIR": str(history)}, forward=["JUPYTER_AGENT_HISTORY_DIR"]
    ) as gateway:
        with jupyter_server(lab_root, token=TOKEN, args=gateway.lab_args, with_key=False) as lab:
            yield {"lab": lab, "gateway": gateway, "history": history}
    assert server.requests and {r.headers.get("authorization") for r in server.requests} == {f"Bearer {CANARY}"}


@pytest.fixture(scope="module")
def page(stack: dict[str, Any]) -> Iterator[Any]:
    with browser_page(viewport=(1400, 1000)) as (pg, errors):
        pg.goto(stack["lab"].url(f"lab/tree/{NOTEBOOK}") + "&reset")
        pg.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
        wait_for_idle_kernel(pg)
        try:
            yield pg
        finally:
            pg.screenshot(path=str(ARTIFACTS / "gateway-final.png"))
            assert_no_canary(pg)
    assert not agent_errors(errors), errors


def kernel_output(pg: Any, code: str) -> str:
    """Run ``code`` silently in the notebook's kernel and return its stdout."""
    return pg.evaluate(
        """async code => {
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
            let text = '';
            const f = kernel.requestExecute({code, silent: false, store_history: false});
            f.onIOPub = msg => { if (msg.header.msg_type === 'stream') text += msg.content.text; };
            await f.done;
            return text;
        }""",
        code,
    )


def run_cell(pg: Any, index: int, wait: bool = True) -> None:
    """Run one cell; with ``wait`` until it finished (a ``%%agent`` cell runs until its turn ends)."""
    pg.evaluate(
        """async ([index, wait]) => {
            const nb = window.jupyterapp.shell.currentWidget;
            await nb.sessionContext.ready;
            nb.content.activeCellIndex = index;
            const done = window.jupyterapp.commands.execute('notebook:run-cell');
            if (wait) { await done; }
        }""",
        [index, wait],
    )


def open_panel(pg: Any) -> None:
    if not pg.locator(PANEL).is_visible():
        pg.click(f".lm-TabBar-tab[data-id='{PANEL[1:]}']")
    pg.wait_for_selector(PANEL, state="visible")


def send(pg: Any, text: str) -> None:
    pg.fill(f"{PANEL} .jp-AgentPanel-input", text)
    pg.press(f"{PANEL} .jp-AgentPanel-input", "Enter")


def test_the_kernel_is_remote(page: Any, stack: dict[str, Any]) -> None:
    """The notebook's kernel runs in the gateway's directory, without the notebook's path."""
    info = json.loads(
        kernel_output(page, "import json, os; print(json.dumps([os.getcwd(), os.environ.get('JPY_SESSION_NAME')]))")
    )
    assert Path(info[0]).resolve() == stack["gateway"].root.resolve()
    assert info[1] is None


def test_agent_cell_streams_with_phase_labels(page: Any, server: ScriptedServer) -> None:
    from playwright.sync_api import expect

    run_cell(page, 0)
    out0 = page.locator(".jp-Notebook .jp-CodeCell").nth(0).locator(".jp-OutputArea")
    expect(out0).to_contain_text("Connected", timeout=30_000)
    server.add_response(
        phased_reply(
            "Let me think about the gateway.", "A gateway runs kernels for a remote Jupyter server.", delay=0.15
        )
    )
    run_cell(page, 1, wait=False)
    out = page.locator(".jp-Notebook .jp-CodeCell").nth(1).locator(".jp-OutputArea")
    # The live view updates mid-stream, through both hops.
    expect(out.locator(".jupyter-agent-turn")).to_be_visible(timeout=30_000)
    expect(out.get_by_text("Commentary (interim)")).to_be_visible(timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "gateway-cell-live.png"))
    expect(out.locator(".jupyter-agent-turn")).to_have_count(0, timeout=30_000)
    final = out.locator(".jp-RenderedMarkdown")
    expect(final).to_contain_text("Final answer")
    expect(final).to_contain_text("A gateway runs kernels for a remote Jupyter server.")
    expect(final).to_contain_text("Let me think about the gateway.")


def test_panel_attaches_to_the_remote_kernel_and_chats(page: Any, server: ScriptedServer) -> None:
    open_panel(page)
    page.wait_for_selector(f"{PANEL}[data-status='connected']")
    status = page.inner_text(f"{PANEL} .jp-AgentPanel-connection")
    assert "gpt-5.2" in status and "compatible" in status and "sse" in status
    # The cell's turn is in the panel (one conversation per kernel).
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-user:has-text('How do kernel gateways work?')")
    server.add_response(slow_reply("Hello from the gateway kernel.", chunks=4, delay=0.05))
    send(page, "Hello over the gateway")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-assistant:has-text('Hello from the gateway kernel.')")
    page.wait_for_selector(f"{PANEL}[data-busy='false']")
    assert "Hello over the gateway" in json.dumps(server.requests[-1].json["input"])
    # The kernel keys this notebook's saved conversations by the path the panel sent.
    assert kernel_output(page, "from jupyter_agent import get_agent; print(get_agent().store.notebook)").strip() == (
        NOTEBOOK
    )


def test_approval_card_in_the_panel(page: Any, server: ScriptedServer) -> None:
    server.add_response(function_call_reply("run_python", '{"code": "6 * 7"}', call_id="call_gw"))
    server.add_response(slow_reply("The kernel says 42.", chunks=2, delay=0.02))
    n = len(server.requests)
    send(page, "Compute six times seven in the kernel")
    card = f"{PANEL} .jp-AgentPanel-entry[data-kind='approval']"
    page.wait_for_selector(f"{card}:has-text('run_python')")
    assert len(server.requests) == n + 1  # waiting for the decision: nothing ran yet
    page.screenshot(path=str(ARTIFACTS / "gateway-approval.png"))
    page.click(f"{card} .jp-AgentPanel-approve")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-assistant:has-text('The kernel says 42.')")
    outputs = [i for i in server.requests[-1].json["input"] if i.get("type") == "function_call_output"]
    assert outputs and "42" in outputs[-1]["output"]
    page.wait_for_selector(f"{card} .jp-AgentPanel-decision:has-text('Approved')")


def test_stop_in_the_panel(page: Any, server: ScriptedServer) -> None:
    server.add_response(slow_reply(" ".join(f"word{i}" for i in range(200)), chunks=100, delay=0.1))
    send(page, "Write a long story.")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-text.jp-mod-streaming:has-text('word1')")
    page.click(f"{PANEL} .jp-AgentPanel-stop")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-entry[data-kind='status']:has-text('Stopped.')", timeout=15_000)
    page.wait_for_selector(f"{PANEL}[data-busy='false']")
    assert "word199" not in page.locator(f"{PANEL} .jp-AgentPanel-assistant").last.inner_text()


def restart_from_kernel_menu(pg: Any) -> int:
    """Kernel → Restart Kernel…, then wait for the panel to come back; a hung gateway kernel gets
    Kernel → Reconnect to Kernel, as a user would. Returns how many reconnects it took."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    pg.click(".lm-MenuBar-itemLabel:text-is('Kernel')")
    pg.click(".lm-Menu-item[data-command='kernelmenu:restart']")
    pg.click(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    pg.wait_for_selector(".jp-Dialog", state="detached")
    pg.wait_for_function(f"document.querySelector('{PANEL}').dataset.status !== 'connected'")
    for reconnects in range(6):
        try:
            pg.wait_for_selector(f"{PANEL}[data-status='connected']", timeout=20_000)
            return reconnects
        except PlaywrightTimeout:
            pg.evaluate("() => window.jupyterapp.commands.execute('kernelmenu:reconnect-to-kernel')")
    raise AssertionError(
        "the panel did not reconnect after a restart and 6 reconnects: "
        + pg.inner_text(f"{PANEL} .jp-AgentPanel-connection")
    )


def test_kernel_menu_restart_reloads_and_resumes(page: Any, server: ScriptedServer, stack: dict[str, Any]) -> None:
    reconnects = restart_from_kernel_menu(page)
    print(f"gateway restart: panel back after {reconnects} reconnect(s)")
    # A fresh kernel: the panel loaded jupyter_agent into it and asked for this notebook's conversation.
    transcript = json.loads(
        kernel_output(
            page, "import json; from jupyter_agent import get_agent; print(json.dumps(get_agent().transcript()))"
        )
    )
    texts = [m["text"] for m in transcript]
    assert "Hello over the gateway" in texts and "Hello from the gateway kernel." in texts, texts
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-user:has-text('Hello over the gateway')")
    saved = list(stack["history"].glob("remote-*/*.jsonl"))
    assert len(saved) == 1, saved  # keyed by the notebook, one conversation, continued
    # The new kernel's agent needs its connection again (the scripted server is not in the kernel).
    run_cell(page, 0)
    server.add_response(slow_reply("Still here after the restart.", chunks=2, delay=0.05))
    send(page, "Still there?")
    page.wait_for_selector(f"{PANEL} .jp-AgentPanel-assistant:has-text('Still here after the restart.')")
    page.screenshot(path=str(ARTIFACTS / "gateway-after-restart.png"))
