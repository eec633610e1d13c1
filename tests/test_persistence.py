"""Conversation store (append-only JSONL, fsync, torn lines, redaction) and exact replay of a
resumed conversation: phase, encrypted reasoning with ``include``, web-search and tool items."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from jupyter_agent.store import ConversationStore, notebook_identity, notebook_key, read_conversation, redact
from jupyter_agent.testing.replies import error_reply, text_reply
from jupyter_agent.tools.kernel import kernel_tools

from .sse_support import API_KEY
from .tool_support import call_item, items_reply, message_item, outputs, reasoning_item

NOTEBOOK = "/home/user/project/analysis.ipynb"


@pytest.fixture
def store(tmp_path):
    s = ConversationStore(tmp_path / "conversations", NOTEBOOK, secrets=lambda: [API_KEY])
    yield s
    s.close()


def _user(text):
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


# --- the store --------------------------------------------------------------------------------


def test_append_and_read_back(store):
    store.append("conv-1", _user("hello"))
    store.append("conv-1", {"type": "function_call_output", "call_id": "c", "output": "é ✓"})
    path = store.path_for("conv-1")
    assert len(read_conversation(path).items) == 2  # flushed at once: a dying kernel loses nothing
    assert store.sync(5)  # and fsync'ed by the store's thread
    assert path.parent.name == notebook_key(NOTEBOOK) and path.parent.name.startswith("analysis-")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["type"] == "conversation" and json.loads(lines[0])["notebook"] == NOTEBOOK
    conv = read_conversation(path)
    assert conv.items == [_user("hello"), {"type": "function_call_output", "call_id": "c", "output": "é ✓"}]
    assert conv.user_messages == ["hello"] and conv.skipped_lines == 0


def test_torn_last_line_is_skipped_and_not_glued(store, tmp_path):
    store.append("conv-2", _user("one"))
    store.close()
    path = store.path_for("conv-2")
    with open(path, "ab") as fh:
        fh.write(b'{"type":"item","item":{"type":"mess')  # the kernel died mid-write
    assert read_conversation(path).items == [_user("one")]
    again = ConversationStore(store.root, NOTEBOOK)
    again.append("conv-2", _user("two"))
    again.close()
    conv = read_conversation(path)
    assert conv.items == [_user("one"), _user("two")] and conv.skipped_lines == 1


def test_secrets_are_redacted_but_encrypted_content_is_kept(store):
    enc = "gAAAAAB-sk-" + "A" * 30  # opaque: must replay byte-for-byte
    store.append("conv-3", _user(f"my key is {API_KEY} and sk-proj-{'x' * 24}"))
    store.append("conv-3", reasoning_item("thinking", enc))
    raw = store.path_for("conv-3").read_text()
    assert API_KEY not in raw and "sk-proj-" not in raw and "[redacted]" in raw
    assert read_conversation(store.path_for("conv-3")).items[1]["encrypted_content"] == enc
    assert redact({"a": ["sk-" + "b" * 20]}) == {"a": ["[redacted]"]}


def test_latest_and_bad_ids(store):
    assert store.latest() is None
    store.append("old", _user("old"))
    os.utime(store.path_for("old"), ns=(1, 1))
    store.append("new", _user("new"))
    assert store.latest().id == "new"
    assert store.latest(exclude="new").id == "old"
    with pytest.raises(ValueError):
        store.path_for("../escape")


def test_notebook_identity(monkeypatch, tmp_path):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert notebook_identity({}) == os.path.join(str(tmp_path), "(kernel)")
    monkeypatch.setenv("JPY_SESSION_NAME", "/srv/nb/a.ipynb")
    assert notebook_identity({}) == "/srv/nb/a.ipynb"
    assert notebook_identity({"__session__": "/srv/nb/b.ipynb"}) == "/srv/nb/b.ipynb"
    assert notebook_key("/x/a.ipynb") != notebook_key("/y/a.ipynb")


# --- replay and resume ----------------------------------------------------------------------


def _rich_turn(server):
    """Reasoning (encrypted) + commentary + web search + a tool call, then a final answer."""
    web = {
        "type": "web_search_call",
        "id": "ws_1",
        "status": "completed",
        "action": {"type": "search", "query": "pandas mean"},
    }
    server.add_response(
        items_reply(
            reasoning_item("Plan: look at df.", "ENC-1/opaque+=="),
            message_item("Checking the data first.", "commentary"),
            web,
            call_item("list_variables", {}, "c1"),
        )
    )
    server.add_response(items_reply(message_item("df has a column x.", "final_answer")))


def test_history_is_replayed_exactly_and_resumed_after_a_restart(server, make_agent, store):
    agent = make_agent(tools=kernel_tools({"df": [1, 2]}), reasoning_effort="medium")
    agent.attach_store(store)
    _rich_turn(server)
    turn = asyncio.run(agent.ask("what is in df?"))
    assert turn.status == "completed" and turn.text == "df has a column x."
    follow_up = server.requests[1].json
    assert follow_up["include"] == ["reasoning.encrypted_content"]
    replayed = follow_up["input"]
    assert replayed[1] == {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Plan: look at df."}],
        "encrypted_content": "ENC-1/opaque+==",
    }
    assert replayed[2]["phase"] == "commentary" and "id" not in replayed[2]
    assert replayed[3] == {
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": "pandas mean"},
    }
    assert replayed[4]["type"] == "function_call" and outputs(follow_up) == {"c1": "df: list len=2"}
    live_history = list(agent.history)

    # a new kernel: a fresh agent resumes from the same store and sends the same history
    store.close()
    fresh = make_agent(tools=kernel_tools({}), reasoning_effort="medium")
    fresh.attach_store(ConversationStore(store.root, NOTEBOOK, secrets=lambda: [API_KEY]))
    conv = fresh.resume()
    assert conv is not None and conv.id == agent.conversation_id == fresh.conversation_id
    assert fresh.history == live_history
    assert fresh.transcript() == agent.transcript()
    assert fresh.transcript()[-1] == {"role": "assistant", "text": "df has a column x.", "phase": "final_answer"}
    server.add_response(text_reply("Still here.", phase="final_answer"))
    asyncio.run(fresh.ask("and now?"))
    body = server.requests[-1].json
    assert body["input"][:-1] == live_history and body["input"][-1]["content"][0]["text"] == "and now?"
    assert body["prompt_cache_key"] == agent.conversation_id
    # the resumed conversation keeps growing in the same file
    assert [i.get("role") for i in read_conversation(store.path_for(conv.id)).items][-2:] == ["user", "assistant"]
    fresh.store.close()


def test_failed_turn_loses_nothing(server, make_agent, store):
    agent = make_agent(tools=kernel_tools({}))
    agent.attach_store(store)
    server.add_response(items_reply(call_item("list_variables", {}, "c1")))
    server.add_response(error_reply(400, "Invalid request: bad input."))
    turn = asyncio.run(agent.ask("list them"))
    assert turn.status == "failed"
    saved = read_conversation(store.path_for(agent.conversation_id)).items
    assert saved == agent.history
    assert [i["type"] for i in saved] == ["message", "function_call", "function_call_output"]


def test_resume_repairs_a_call_cut_off_by_a_crash(store, make_agent):
    store.append("crashed", _user("run it"))
    store.append("crashed", call_item("run_python", {"code": "1"}, "c9"))
    agent = make_agent()
    agent.attach_store(store)
    conv = agent.resume()
    assert conv.id == "crashed"
    assert agent.history[-1] == {
        "type": "function_call_output",
        "call_id": "c9",
        "output": "Tool result lost: the kernel stopped before the tool finished.",
    }
    assert read_conversation(store.path_for("crashed")).items[-1] == agent.history[-1]


def test_reset_starts_a_new_file_and_resume_finds_the_old_one(server, make_agent, store):
    agent = make_agent()
    agent.attach_store(store)
    server.add_response(text_reply("first", phase="final_answer"))
    asyncio.run(agent.ask("one"))
    first_id = agent.conversation_id
    agent.reset()
    assert agent.conversation_id != first_id and agent.history == []
    server.add_response(text_reply("second", phase="final_answer"))
    asyncio.run(agent.ask("two"))
    assert len(store.conversations()) == 2
    conv = agent.resume()  # the most recent conversation other than the live one
    assert conv.id == first_id and agent.transcript()[0]["text"] == "one"
    assert agent.resume(conversation_id=agent.conversation_id).id == first_id


def test_side_panel_gets_the_restored_history(server, make_agent, store):
    from jupyter_agent import comm as C
    from jupyter_agent import events as ev

    from . import test_comm as TC

    old = make_agent()
    old.attach_store(store)
    server.add_response(text_reply("Saved answer.", phase="final_answer"))
    asyncio.run(old.ask("saved question"))

    agent = make_agent()  # the kernel after a restart; the panel reconnects to it
    agent.attach_store(store)
    comm = TC.FakeComm()
    bridge = C.PanelBridge(comm, lambda: agent)
    try:
        comm.deliver({"type": "hello", "version": 1})
        comm.wait_for(lambda s: any(m["type"] == "history" for m in s))
        assert [m for m in comm.sent if m["type"] == "history"][0]["messages"] == []
        agent.resume()
        agent.publish(ev.Notice(level="info", message="Resumed a saved conversation."))  # what %agent resume does
        sent = comm.wait_for(lambda s: len([m for m in s if m["type"] == "history"]) == 2)
        restored = [m for m in sent if m["type"] == "history"][-1]["messages"]
        assert restored == [
            {"role": "user", "text": "saved question", "phase": None},
            {"role": "assistant", "text": "Saved answer.", "phase": "final_answer"},
        ]
    finally:
        bridge.close()


def test_key_from_the_environment_is_never_saved(server, monkeypatch, tmp_path):
    from jupyter_agent.agent import Agent

    azure_key = "0123456789abcdef0123456789abcdef"  # Azure keys do not look like sk-...
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", azure_key)
    agent = Agent(
        model="gpt-5", provider="azure", base_url=server.base_url, transport="sse", prewarm=False, max_retries=0
    )
    store = ConversationStore(tmp_path, NOTEBOOK, secrets=agent.secret_values)
    agent.attach_store(store)
    server.add_response(text_reply("noted", phase="final_answer"))
    asyncio.run(agent.ask(f"remember {azure_key}"))
    assert server.requests[-1].headers.get("api-key") == azure_key  # it was really used
    raw = store.path_for(agent.conversation_id).read_text()
    assert azure_key not in raw and "remember [redacted]" in raw
    store.close()
    agent.agent_loop.run_sync(agent.session.aclose(), timeout=5)


def test_vscode_notebook_identity(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert notebook_identity({"__vsc_ipynb_file__": "/w/v.ipynb"}) == "/w/v.ipynb"


def test_resuming_twice_keeps_the_resumed_conversation(server, make_agent, store):
    """The panel resumes after a kernel restart; a later `%agent resume` in a cell must report that
    conversation, not skip to an older one or find nothing (seen with the Kernel-menu restart)."""
    store.append("older", _user("an older question"))
    store.append("latest", _user("the latest question"))
    store.sync()
    os.utime(store.path_for("older"), (1_000, 1_000))
    agent = make_agent()
    agent.attach_store(store)
    assert agent.resume().id == "latest"
    history = list(agent.history)
    again = agent.resume()
    assert again is not None and again.id == "latest" and agent.conversation_id == "latest"
    assert agent.history == history  # not reloaded, nothing doubled
    # A conversation started here (not resumed) still resumes the previous one.
    agent.reset()
    server.add_response(text_reply("fresh", phase="final_answer"))
    asyncio.run(agent.ask("a new question"))
    assert agent.resume().id == "latest"
