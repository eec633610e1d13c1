"""The live document for ``read_notebook`` over the panel comm (``notebook_bridge.py``): a panel
whose hello offers ``notebook`` is asked for the document and its cells reach the model; a panel
that does not answer makes the tool fall back to the history and say why; a closed panel detaches.
The panel is played by a thread answering ``notebook_request`` as notebookBridge.ts does."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from jupyter_agent import comm as C
from jupyter_agent import notebook_bridge
from jupyter_agent.testing.replies import text_reply

from .test_comm import FakeComm
from .tool_support import calls_reply, outputs

PNG_HEAD = "iVBORw0KGgoAAAANSUhEUgAAAoAAAAHg"  # a 640x480 PNG's first 24 bytes, base64

DOCUMENT = [
    {"id": "intro", "cell_type": "markdown", "source": "# Sales\nNever run: only the document has me."},
    {
        "id": "plot1",
        "cell_type": "code",
        "source": "df.x.hist()",
        "execution_count": 4,
        "outputs": [
            {
                "output_type": "display_data",
                "data": {"image/png": {"head": PNG_HEAD, "bytes": 23_552}, "text/plain": "<Axes>"},
            }
        ],
    },
]


class Shell:
    """Enough of an IPython shell for the history source (no events: nothing recorded)."""

    def __init__(self) -> None:
        self.user_ns: dict[str, Any] = {"In": ["", "x = 1"], "Out": {}}


def answer_requests(comm: FakeComm, stop: threading.Event, cells: list[dict[str, Any]]) -> threading.Thread:
    def run() -> None:
        answered: set[str] = set()
        while not stop.is_set():
            for msg in comm.of_type("notebook_request"):
                if msg["id"] not in answered:
                    answered.add(msg["id"])
                    comm.deliver({"type": "notebook", "id": msg["id"], "cells": cells})
            stop.wait(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def agent(server):
    from jupyter_agent.agent import Agent

    agent = Agent(model="gpt-test", base_url=server.base_url, provider="compatible", transport="sse", prewarm=False)
    notebook_bridge.install(agent, Shell())
    yield agent
    notebook_bridge._sources = None


def test_a_panel_turn_reads_the_live_document(server, agent):
    comm, stop = FakeComm(), threading.Event()
    bridge = C.PanelBridge(comm, lambda: agent)
    answer_requests(comm, stop, DOCUMENT)
    try:
        comm.deliver({"type": "hello", "version": 1, "features": ["notebook"]})
        assert notebook_bridge.current_kind() == "document"
        server.add_response(calls_reply(("read_notebook", {}, "c1"), ("read_cell", {"cell": "intro"}, "c2")))
        server.add_response(text_reply("A sales notebook with one histogram.", phase="final_answer"))
        comm.deliver({"type": "send", "id": "m1", "text": "What is in my notebook?"})
        comm.wait_for(lambda s: any(m["type"] == "event" and m["event"]["type"] == "turn_done" for m in s), 15)
        got = outputs(server.requests[-1].json)
        assert got["c1"].startswith(notebook_bridge.DOCUMENT_PREAMBLE)
        assert "--- cell 0 id=intro markdown\n# Sales" in got["c1"]
        assert "--- cell 1 id=plot1 code [4]\ndf.x.hist()\n[display] [image/png 640x480, 23.0 kB]\n<Axes>" in got["c1"]
        assert "x = 1" not in got["c1"]  # the document, not the history
        assert "Never run: only the document has me." in got["c2"]
        assert not comm.of_type("error")
    finally:
        stop.set()
        bridge.close()
    assert notebook_bridge.current_kind() == "history"  # the closed panel detached


def test_a_silent_panel_falls_back_to_the_history_and_says_why(agent, monkeypatch):
    monkeypatch.setattr(notebook_bridge, "REQUEST_TIMEOUT", 0.2)
    comm = FakeComm()
    bridge = C.PanelBridge(comm, lambda: agent)
    try:
        comm.deliver({"type": "hello", "version": 1, "features": ["notebook"]})
        text = agent.tools["read_notebook"].fn()
        assert text.startswith("(The notebook document could not be read: the notebook did not answer in 0.2 s.)")
        assert "x = 1" in text
        assert len(comm.of_type("notebook_request")) == 1
        comm.deliver({"type": "notebook", "id": "nb-unknown", "cells": []})
        assert comm.of_type("error")[-1]["request_type"] == "notebook"
    finally:
        bridge.close()


def test_a_panel_without_the_feature_leaves_the_history(agent):
    comm = FakeComm()
    bridge = C.PanelBridge(comm, lambda: agent)
    try:
        comm.deliver({"type": "hello", "version": 1})
        assert notebook_bridge.current_kind() == "history"
        assert agent.tools["read_notebook"].fn().startswith("Source: the kernel's execution history")
    finally:
        bridge.close()


def test_cell_tools_are_offered_only_while_a_document_panel_is_attached(agent):
    assert not {"insert_cell", "edit_cell", "delete_cell"} & set(agent.tools)
    comm, stop = FakeComm(), threading.Event()
    bridge = C.PanelBridge(comm, lambda: agent)
    try:
        comm.deliver({"type": "hello", "version": 1, "features": ["notebook"]})
        names = ("insert_cell", "edit_cell", "delete_cell", "run_cell")
        assert [agent.approval_policy(n) for n in names] == ["auto", "ask", "ask", "ask"]
        assert agent.tools["run_cell"].runs_code

        def panel() -> None:  # answers like notebookBridge.ts: a result, or an error
            seen: set[str] = set()
            while not stop.is_set():
                for msg in comm.of_type("notebook_request"):
                    if msg["id"] in seen:
                        continue
                    seen.add(msg["id"])
                    if msg["args"].get("before") == "nope":
                        comm.deliver({"type": "notebook", "id": msg["id"], "error": 'no cell "nope"'})
                    else:
                        comm.deliver({"type": "notebook", "id": msg["id"], "result": {"id": "new1", "index": 2}})
                stop.wait(0.02)

        threading.Thread(target=panel, daemon=True).start()
        text, is_error = asyncio.run(agent.tools["insert_cell"].invoke('{"source": "1 + 1"}'))
        assert (text, is_error) == ("Inserted a code cell: id=new1 index=2 (not run).", False)
        request = comm.of_type("notebook_request")[-1]
        assert request["action"] == "insert" and request["args"]["source"] == "1 + 1"
        text, is_error = asyncio.run(agent.tools["insert_cell"].invoke('{"source": "1", "before": "nope"}'))
        assert is_error and 'no cell "nope"' in text
    finally:
        stop.set()
        bridge.close()
    assert not {"insert_cell", "edit_cell", "delete_cell", "run_cell"} & set(agent.tools)
