"""Notebook identity from the frontend: a kernel that cannot see its notebook (a Kernel Gateway
kernel runs in the gateway's directory without ``JPY_SESSION_NAME``) keys saved conversations by
the notebook path the panel sends in ``hello``; a kernel that can see its notebook keeps its own.
Without this every notebook on a gateway shares one conversation key (panel resume, ``%agent resume``).
"""

from __future__ import annotations

import json

import pytest

from jupyter_agent import comm as C
from jupyter_agent.store import ConversationStore, is_unknown_notebook, notebook_identity, notebook_key
from jupyter_agent.testing import ScriptedServer
from jupyter_agent.testing.replies import text_reply

from .test_comm import FakeComm, PanelClient

# --- the store ---------------------------------------------------------------------------------


def test_the_cwd_fallback_is_recognised(tmp_path, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert is_unknown_notebook(notebook_identity({}))
    assert not is_unknown_notebook(notebook_identity({"__session__": "/srv/work/a.ipynb"}))
    assert not is_unknown_notebook("work/(kernel).ipynb")


def test_adopt_moves_the_open_conversation_out_of_the_shared_key(tmp_path):
    store = ConversationStore(tmp_path, "/gateway/cwd/(kernel)")
    shared = store.directory
    store.append("conv-1", {"type": "message", "role": "user", "content": "hello from a"})
    assert store.adopt_notebook("team/a.ipynb") is True
    assert store.notebook == "team/a.ipynb" and store.directory == tmp_path / notebook_key("team/a.ipynb")
    assert not list(shared.glob("*.jsonl")), "nothing of this notebook stays under the shared key"
    store.append("conv-1", {"type": "message", "role": "assistant", "content": "hi"})
    conv = store.load("conv-1")
    assert [i["content"] for i in conv.items] == ["hello from a", "hi"] and conv.skipped_lines == 0
    # adopting again (a second hello from the same panel) changes nothing
    assert store.adopt_notebook("team/a.ipynb") is False


def test_a_known_identity_is_kept(tmp_path):
    store = ConversationStore(tmp_path, "/srv/lab/work/a.ipynb")
    assert store.adopt_notebook("work/a.ipynb") is False
    assert store.notebook == "/srv/lab/work/a.ipynb"


@pytest.mark.parametrize("bad", ["", "   ", "x" * 5000, "a\x00b"])
def test_adopt_rejects_what_is_not_a_path(tmp_path, bad):
    store = ConversationStore(tmp_path, "/gw/(kernel)")
    with pytest.raises(ValueError):
        store.adopt_notebook(bad)
    assert store.notebook == "/gw/(kernel)"


# --- the bridge (real Agent, scripted server) ---------------------------------------------------


@pytest.fixture
def server():
    srv = ScriptedServer().start()
    yield srv
    srv.stop()


def test_two_notebooks_on_one_gateway_keep_their_conversations_apart(server, tmp_path):
    from jupyter_agent.agent import Agent

    def gateway_kernel() -> Agent:
        agent = Agent(model="gpt-test", base_url=server.base_url, provider="compatible", transport="sse", prewarm=False)
        agent.attach_store(ConversationStore(tmp_path, "/gateway/cwd/(kernel)"))
        return agent

    def hello(agent: Agent, **extra) -> tuple[FakeComm, C.PanelBridge]:
        comm = FakeComm()
        bridge = C.PanelBridge(comm, lambda: agent)
        comm.deliver({"type": "hello", "version": 1, **extra})
        return comm, bridge

    for name in ("a", "b"):
        agent = gateway_kernel()
        comm, bridge = hello(agent, notebook=f"team/{name}.ipynb")
        server.add_response(text_reply(f"Answer for {name}.", phase="final_answer"))
        agent.start(f"Question from {name}").result(15)
        agent.store.sync()
        bridge.close()

    for name in ("a", "b"):  # each notebook's panel resumes its own conversation after a restart
        restarted = gateway_kernel()
        comm, bridge = hello(restarted, notebook=f"team/{name}.ipynb", resume=True)
        texts = [m["text"] for m in comm.of_type("history")[-1]["messages"]]
        assert texts == [f"Question from {name}", f"Answer for {name}."]
        assert not comm.of_type("error")
        bridge.close()

    # %agent resume uses the same key: a third notebook has nothing to resume
    other = gateway_kernel()
    hello(other, notebook="team/c.ipynb")[1].close()
    assert other.resume() is None


def test_a_bad_notebook_path_is_an_error_reply_not_a_crash(server, tmp_path):
    from jupyter_agent.agent import Agent

    agent = Agent(model="gpt-test", base_url=server.base_url, provider="compatible", transport="sse", prewarm=False)
    agent.attach_store(ConversationStore(tmp_path, "/gw/(kernel)"))
    comm = FakeComm()
    bridge = C.PanelBridge(comm, lambda: agent)
    try:
        comm.deliver({"type": "hello", "version": 1, "notebook": "x" * 5000})
        assert comm.of_type("error")[-1]["request_type"] == "hello"
        assert agent.store.notebook == "/gw/(kernel)"
        comm.deliver({"type": "hello", "version": 1, "notebook": "a\x00b"})
        assert "notebook path" in comm.of_type("error")[-1]["message"]
        assert comm.of_type("state"), "the panel still gets its state"
    finally:
        bridge.close()


# --- real kernels ------------------------------------------------------------------------------


def _kernel(tmp_path, monkeypatch, cwd, **env):
    from .kernel_driver import KernelDriver

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return KernelDriver(cwd=str(cwd), env={"JUPYTER_AGENT_HISTORY_DIR": str(tmp_path / "history"), **env})


def _open_panel(driver, srv, **hello):
    assert driver.run("%load_ext jupyter_agent").status == "ok"
    connect = driver.run(
        f"%agent connect --base-url {srv.base_url} --provider compatible --model gpt-t --transport sse"
    )
    assert connect.status == "ok", connect.text
    panel = PanelClient(driver.kc)
    panel.open({"type": "hello", "version": 1, **hello})
    panel.pump(lambda: "history" in [m["type"] for m in panel.received], timeout=30)
    return panel


@pytest.mark.kernel
def test_gateway_like_kernels_key_conversations_by_the_panels_notebook(tmp_path, monkeypatch):
    """Kernels sharing one working directory and no JPY_SESSION_NAME, as on Kernel Gateway."""
    gateway_cwd = tmp_path / "gateway"
    gateway_cwd.mkdir()
    srv = ScriptedServer().start()
    try:
        driver = _kernel(tmp_path, monkeypatch, gateway_cwd)
        try:
            panel = _open_panel(driver, srv, notebook="team/a.ipynb")
            srv.add_response(text_reply("Kept for A.", phase="final_answer"))
            panel.send({"type": "send", "id": "p1", "text": "Remember A"})
            panel.pump(lambda: any(e["type"] == "turn_done" for e in panel.events()), timeout=30)
            status, text = panel.run("from jupyter_agent import get_agent; print(get_agent().store.notebook)")
            assert (status, text.strip()) == ("ok", "team/a.ipynb")
        finally:
            driver.shutdown()

        driver = _kernel(tmp_path, monkeypatch, gateway_cwd)  # another notebook on the same gateway
        try:
            panel = _open_panel(driver, srv, notebook="team/b.ipynb")
            status, text = panel.run("%agent resume")
            assert status == "ok" and "No saved conversation" in text, text
        finally:
            driver.shutdown()

        driver = _kernel(tmp_path, monkeypatch, gateway_cwd)  # notebook A's kernel, restarted
        try:
            panel = _open_panel(driver, srv, notebook="team/a.ipynb", resume=True)
            history = [m for m in panel.received if m["type"] == "history"][-1]["messages"]
            assert [m["text"] for m in history] == ["Remember A", "Kept for A."]
        finally:
            driver.shutdown()
    finally:
        srv.stop()


@pytest.mark.kernel
def test_a_kernel_that_sees_its_notebook_keeps_its_identity(tmp_path, monkeypatch):
    srv = ScriptedServer().start()
    driver = _kernel(tmp_path, monkeypatch, tmp_path, JPY_SESSION_NAME=str(tmp_path / "local.ipynb"))
    try:
        panel = _open_panel(driver, srv, notebook="elsewhere/other.ipynb")
        status, text = panel.run("from jupyter_agent import get_agent; print(get_agent().store.notebook)")
        assert (status, text.strip()) == ("ok", str(tmp_path / "local.ipynb"))
        assert not [m for m in panel.received if m["type"] == "error"], json.dumps(panel.received)[:500]
    finally:
        driver.shutdown()
        srv.stop()
