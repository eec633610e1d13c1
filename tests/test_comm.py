"""The side-panel comm bridge: schema validation, request handling, event forwarding.

Unit tests use a recording fake comm with a fake agent (exact Agent API surface) and with the real
`Agent` against the scripted server; the kernel tests open the comm from a jupyter_client front end
on a real ipykernel, as the JupyterLab panel does.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from jupyter_agent import comm as C
from jupyter_agent import events as ev
from jupyter_agent.testing import ScriptedServer
from jupyter_agent.testing.replies import text_reply, web_search_reply


class FakeComm:
    """Records what the bridge sends; lets the test deliver panel messages."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._on_msg: Callable[[dict[str, Any]], None] | None = None
        self._on_close: Callable[[dict[str, Any]], None] | None = None
        self.cond = threading.Condition()

    def on_msg(self, cb: Callable[[dict[str, Any]], None]) -> None:
        self._on_msg = cb

    def on_close(self, cb: Callable[[dict[str, Any]], None]) -> None:
        self._on_close = cb

    def send(self, data: dict[str, Any]) -> None:
        with self.cond:
            self.sent.append(data)
            self.cond.notify_all()

    def deliver(self, data: Any) -> None:
        assert self._on_msg is not None
        self._on_msg({"content": {"comm_id": "x", "data": data}})

    def close_from_panel(self) -> None:
        assert self._on_close is not None
        self._on_close({"content": {"comm_id": "x", "data": {}}})

    def wait_for(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.sent):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; sent so far: {self.sent[-5:]}")
                self.cond.wait(left)
            return list(self.sent)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == kind]


class FakeAgent:
    """The Agent surface the bridge uses, recording every call."""

    model_name = "gpt-fake"
    provider_name = "compatible"
    transport = "sse"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.subscribers: list[Callable[[ev.AgentEvent], None]] = []
        self.busy = False
        self.rate_limits = {
            "codex": ev.RateLimitSnapshot(
                limit_id="codex", primary=ev.RateLimitWindow(used_percent=42.0, window_minutes=300)
            )
        }

    def subscribe(self, cb: Callable[[ev.AgentEvent], None]) -> Callable[[], None]:
        self.subscribers.append(cb)
        return lambda: self.subscribers.remove(cb)

    def emit(self, event: ev.AgentEvent) -> None:
        for cb in list(self.subscribers):
            cb(event)

    def start(self, prompt: str, *, source: str = "python") -> Any:
        self.calls.append(("start", prompt, source))

    def cancel(self, turn_id: str | None = None) -> None:
        self.calls.append(("cancel",))

    def resolve_approval(self, call_id: str, decision: str) -> None:
        self.calls.append(("approval", call_id, decision))

    def transcript(self) -> list[dict[str, Any]]:
        return [
            {"role": "user", "text": "earlier", "phase": None},
            {"role": "assistant", "text": "answer", "phase": "final_answer"},
        ]


@pytest.fixture
def fake() -> tuple[FakeComm, FakeAgent, C.PanelBridge]:
    comm, agent = FakeComm(), FakeAgent()
    bridge = C.PanelBridge(comm, lambda: agent)
    yield comm, agent, bridge
    bridge.close()


def test_hello_replies_state_then_history(fake):
    comm, agent, _ = fake
    comm.deliver({"type": "hello", "version": 1})
    assert [m["type"] for m in comm.sent] == ["state", "history"]
    state = comm.sent[0]
    assert state["model"] == "gpt-fake" and state["provider"] == "compatible" and state["transport"] == "sse"
    assert state["busy"] is False
    assert state["rate_limits"]["codex"]["primary"]["used_percent"] == 42.0
    assert comm.sent[1]["messages"][1] == {"role": "assistant", "text": "answer", "phase": "final_answer"}
    # Every message the kernel sends passes its own schema.
    for m in comm.sent:
        assert C.validate_kernel_message(m) == m


def test_requests_drive_the_agent(fake):
    comm, agent, _ = fake
    comm.deliver({"type": "send", "id": "m1", "text": "hi there"})
    comm.deliver({"type": "stop"})
    comm.deliver({"type": "approval", "call_id": "call_1", "decision": "approve_always"})
    comm.deliver({"type": "history"})
    assert agent.calls == [("start", "hi there", "panel"), ("cancel",), ("approval", "call_1", "approve_always")]
    assert [m["type"] for m in comm.sent] == ["history"]


BIG = "x" * (C.MAX_TEXT_BYTES + 1)


@pytest.mark.parametrize(
    ("data", "request_type", "needle"),
    [
        ("hello", None, "invalid message"),
        ([1, 2], None, "invalid message"),
        ({}, None, "invalid message"),
        ({"type": "launch"}, "launch", "invalid launch"),
        ({"type": "send", "text": "no id"}, "send", "id"),
        ({"type": "send", "id": "m", "text": 5}, "send", "text"),
        ({"type": "send", "id": "m", "text": "   "}, "send", "empty"),
        ({"type": "send", "id": "m", "text": BIG}, "send", "100 kB"),
        ({"type": "send", "id": "m", "text": "€" * 40_000}, "send", "100 kB"),  # 120 kB of UTF-8
        ({"type": "send", "id": "m", "text": "hi", "extra": 1}, "send", "Extra inputs"),
        ({"type": "send", "id": "m", "text": "hi", "pad": "y" * (C.MAX_MESSAGE_BYTES + 10)}, "send", "limit is 262144"),
        ({"type": "approval", "call_id": "c", "decision": "maybe"}, "approval", "decision"),
        ({"type": "approval", "decision": "approve"}, "approval", "call_id"),
        ({"type": "hello", "version": "1"}, "hello", "version"),
        ({"type": "stop", "now": True}, "stop", "Extra inputs"),
    ],
)
def test_malformed_or_oversized_gets_error_and_changes_nothing(fake, data, request_type, needle):
    comm, agent, _ = fake
    comm.deliver(data)
    assert agent.calls == []
    assert len(comm.sent) == 1
    reply = comm.sent[0]
    assert reply["type"] == "error"
    assert reply["request_type"] == request_type
    assert needle in reply["message"]


def test_unsupported_protocol_version(fake):
    comm, agent, _ = fake
    comm.deliver({"type": "hello", "version": 2})
    assert comm.sent == [
        {"type": "error", "message": "protocol version 2 is not supported (kernel speaks 1)", "request_type": "hello"}
    ]


def test_agent_failure_becomes_an_error_reply(fake):
    comm, agent, _ = fake

    def boom(prompt: str, *, source: str = "python") -> None:
        raise RuntimeError("no provider")

    agent.start = boom  # type: ignore[method-assign]
    comm.deliver({"type": "send", "id": "m", "text": "hi"})
    assert comm.sent == [{"type": "error", "message": "send failed: no provider", "request_type": "send"}]


def test_events_are_forwarded_in_order_with_deltas_merged(fake):
    comm, agent, bridge = fake
    comm.deliver({"type": "hello", "version": 1})
    n0 = len(comm.sent)
    agent.emit(ev.TurnStarted(prompt="p", model="m", source="cell", turn_id="t"))
    words = [f"w{i} " for i in range(500)]
    for w in words:
        agent.emit(ev.TextDelta(delta=w, item_id="a", phase="final_answer", turn_id="t"))
    agent.emit(ev.WebSearch(item_id="ws", status="in_progress", turn_id="t"))
    agent.emit(ev.TextDelta(delta="after", item_id="a", phase="final_answer", turn_id="t"))
    agent.emit(ev.RerouteWarning(from_model="a", to_model="b", message="rerouted", turn_id="t"))
    agent.emit(ev.TurnDone(status="completed", text="x", turn_id="t"))
    sent = comm.wait_for(
        lambda s: s[-1]["type"] == "state" and any(m.get("event", {}).get("type") == "turn_done" for m in s)
    )
    events = [m["event"] for m in sent[n0:] if m["type"] == "event"]
    # A fresh state follows each turn boundary (busy while the turn runs, idle after it).
    assert [m["busy"] for m in sent[n0:] if m["type"] == "state"][-1] is False
    types = [e["type"] for e in events]
    assert types[0] == "turn_started" and types[-2:] == ["reroute_warning", "turn_done"]
    deltas_before_search = events[1 : types.index("web_search")]
    assert "".join(e["delta"] for e in deltas_before_search) == "".join(words)
    assert len(deltas_before_search) < 50  # merged, not 500 comm messages
    assert events[types.index("web_search") + 1]["delta"] == "after"
    assert bridge.busy is False
    # busy follows turns
    agent.emit(ev.TurnStarted(prompt="p2", turn_id="t2"))
    assert bridge.busy and bridge.state()["busy"] is True


def test_close_unsubscribes_and_stops_sending(fake):
    comm, agent, bridge = fake
    comm.deliver({"type": "hello", "version": 1})
    assert len(agent.subscribers) == 1
    comm.close_from_panel()
    assert agent.subscribers == []
    n = len(comm.sent)
    bridge._on_event(ev.Notice(message="late"))
    time.sleep(0.1)
    assert len(comm.sent) == n


def test_coalesce_keeps_items_and_phases_apart():
    def d(delta: str, item: str = "a", phase: str = "commentary", turn: str = "t") -> dict[str, Any]:
        return ev.TextDelta(delta=delta, item_id=item, phase=phase, turn_id=turn).to_dict()  # type: ignore[arg-type]

    out = C.coalesce([d("a"), d("b"), d("c", phase="final_answer"), d("d", item="b"), d("e", item="b", turn="u")])
    assert [(e["delta"], e["item_id"], e["phase"], e["turn_id"]) for e in out] == [
        ("ab", "a", "commentary", "t"),
        ("c", "a", "final_answer", "t"),
        ("d", "b", "commentary", "t"),
        ("e", "b", "commentary", "u"),
    ]


def test_kernel_messages_are_validated_before_sending():
    with pytest.raises(ValidationError):
        C.validate_kernel_message({"type": "event", "event": {"type": "not-an-event"}})
    with pytest.raises(ValidationError):
        C.validate_kernel_message({"type": "state", "model": "m"})


def test_register_comm_target_on_a_kernel_comm_manager():
    class Manager:
        def __init__(self) -> None:
            self.targets: dict[str, Any] = {}

        def register_target(self, name: str, f: Any) -> None:
            self.targets[name] = f

        def unregister_target(self, name: str, f: Any) -> None:
            self.targets.pop(name)

    class Shell:
        class kernel:
            comm_manager = Manager()

    shell, agent, comm = Shell(), FakeAgent(), FakeComm()
    C.register_comm_target(shell, lambda: agent)
    open_target = shell.kernel.comm_manager.targets["jupyter_agent"]
    open_target(comm, {"content": {"data": {"type": "hello", "version": 1}}})
    assert [m["type"] for m in comm.sent] == ["state", "history"]
    C.unregister_comm_target(shell)
    assert "jupyter_agent" not in shell.kernel.comm_manager.targets
    assert agent.subscribers == []


# --- the real Agent against the scripted server ---------------------------------------------


@pytest.fixture
def server():
    srv = ScriptedServer().start()
    yield srv
    srv.stop()


def test_real_agent_turn_streams_through_the_bridge(server):
    from jupyter_agent.agent import Agent

    agent = Agent(model="gpt-test", base_url=server.base_url, provider="compatible", transport="sse", prewarm=False)
    comm = FakeComm()
    bridge = C.PanelBridge(comm, lambda: agent)
    try:
        comm.deliver({"type": "hello", "version": 1})
        server.add_response(web_search_reply("weather seattle", answer="It is sunny in Seattle."))
        comm.deliver({"type": "send", "id": "m1", "text": "Weather?"})
        sent = comm.wait_for(lambda s: any(m["type"] == "event" and m["event"]["type"] == "turn_done" for m in s), 15)
        events = [m["event"] for m in sent if m["type"] == "event"]
        types = [e["type"] for e in events]
        assert (
            events[0]["type"] == "turn_started" and events[0]["source"] == "panel" and events[0]["prompt"] == "Weather?"
        )
        searches = [e for e in events if e["type"] == "web_search"]
        assert searches[0]["status"] == "in_progress" and searches[-1]["status"] == "completed"
        assert searches[-1]["detail"] == "weather seattle"
        text = "".join(e["delta"] for e in events if e["type"] == "text_delta")
        assert text == "It is sunny in Seattle."
        assert events[-1]["status"] == "completed"
        assert types.index("web_search") < types.index("text_delta")
        comm.deliver({"type": "history"})
        history = comm.wait_for(lambda s: s[-1]["type"] == "history")[-1]["messages"]
        assert history[0] == {"role": "user", "text": "Weather?", "phase": None}
        assert history[-1]["role"] == "assistant" and history[-1]["text"] == "It is sunny in Seattle."
    finally:
        bridge.close()


# --- a real kernel, the comm opened from a jupyter_client front end --------------------------


class PanelClient:
    """The panel's side of the comm, spoken over jupyter_client (like JupyterLab does)."""

    def __init__(self, kc: Any) -> None:
        self.kc = kc
        self.comm_id = uuid.uuid4().hex
        self.received: list[dict[str, Any]] = []
        self.closed = False

    def open(self, data: dict[str, Any]) -> None:
        msg = self.kc.session.msg("comm_open", {"comm_id": self.comm_id, "target_name": "jupyter_agent", "data": data})
        self.kc.shell_channel.send(msg)

    def send(self, data: Any) -> None:
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", {"comm_id": self.comm_id, "data": data}))

    def run(self, code: str, timeout: float = 30.0) -> tuple[str, str]:
        """Execute a cell, keeping the comm messages that arrive meanwhile: (status, output text)."""
        msg_id = self.kc.execute(code)
        out: list[str] = []
        idle = False

        def on_cell(msg: dict[str, Any]) -> None:
            nonlocal idle
            if msg["parent_header"].get("msg_id") != msg_id:
                return
            c = msg["content"]
            if msg["msg_type"] == "status" and c["execution_state"] == "idle":
                idle = True
            elif msg["msg_type"] == "stream":
                out.append(c["text"])
            elif msg["msg_type"] in ("execute_result", "display_data"):
                out.append(c["data"].get("text/plain", ""))
            elif msg["msg_type"] == "error":
                out.append(f"{c['ename']}: {c['evalue']}")

        self.pump(lambda: idle, timeout, other=on_cell)
        reply = self.kc.get_shell_msg(timeout=10)
        return reply["content"]["status"], "".join(out)

    def pump(
        self, pred: Callable[[], bool], timeout: float = 15.0, other: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got {[m.get('type') for m in self.received][-10:]}")
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            content = msg["content"]
            if other is not None:
                other(msg)
            if content.get("comm_id") != self.comm_id:
                continue
            if msg["msg_type"] == "comm_msg":
                self.received.append(content["data"])
            elif msg["msg_type"] == "comm_close":
                self.closed = True

    def events(self) -> list[dict[str, Any]]:
        return [m["event"] for m in self.received if m["type"] == "event"]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    from .kernel_driver import KernelDriver

    srv = ScriptedServer().start()
    driver = KernelDriver(cwd=str(tmp_path_factory.mktemp("kernel")))
    driver.server = srv  # type: ignore[attr-defined]
    yield driver
    driver.shutdown()
    srv.stop()


@pytest.mark.kernel
def test_kernel_without_extension_closes_the_comm(kernel):
    panel = PanelClient(kernel.kc)
    panel.open({"type": "hello", "version": 1})
    panel.pump(lambda: panel.closed)
    assert panel.received == []


@pytest.mark.kernel
def test_kernel_panel_and_cell_share_one_conversation(kernel):
    srv = kernel.server
    assert kernel.run("%load_ext jupyter_agent").status == "ok"
    setup = kernel.run(
        f"%agent connect --base-url {srv.base_url} --provider compatible --model gpt-test --transport sse"
    )
    assert setup.status == "ok", setup.text
    assert "compatible" in kernel.run("print(get_ipython().run_line_magic('agent', 'status'))").text.lower()
    panel = PanelClient(kernel.kc)
    panel.open({"type": "hello", "version": 1})
    panel.pump(lambda: [m["type"] for m in panel.received][:2] == ["state", "history"])
    assert panel.received[0]["model"] == "gpt-test" and panel.received[0]["busy"] is False

    # A %%agent cell's turn shows up in the panel.
    srv.add_response(text_reply("Paris.", phase="final_answer", chunks=3))
    status, text = panel.run("%%agent\nCapital of France?")
    assert status == "ok", text
    panel.pump(lambda: any(e["type"] == "turn_done" for e in panel.events()))
    started = [e for e in panel.events() if e["type"] == "turn_started"]
    assert started[0]["source"] == "cell" and started[0]["prompt"] == "Capital of France?"

    # A panel turn runs while the kernel stays free for cells.
    srv.add_response(text_reply("Berlin.", phase="final_answer", chunks=3))
    panel.send({"type": "send", "id": "p1", "text": "And Germany?"})
    panel.pump(lambda: sum(e["type"] == "turn_done" for e in panel.events()) == 2)
    assert panel.run("1+1") == ("ok", "2")

    # A malformed message: an error reply, nothing else.
    n = len(panel.received)
    panel.send({"type": "send", "id": "p2", "text": "x" * (C.MAX_TEXT_BYTES + 1)})
    panel.pump(lambda: len(panel.received) > n)
    assert panel.received[n]["type"] == "error" and panel.received[n]["request_type"] == "send"
    time.sleep(0.3)
    panel.pump(lambda: True, timeout=0.5)
    assert len(panel.received) == n + 1

    # Both turns are one conversation: the cell sees the panel's turn.
    status, text = panel.run(
        "from jupyter_agent import get_agent\nprint([m['text'] for m in get_agent().transcript()])"
    )
    assert "'Capital of France?', 'Paris.', 'And Germany?', 'Berlin.'" in text
    panel.send({"type": "history"})
    panel.pump(lambda: panel.received[-1]["type"] == "history")
    assert [m["text"] for m in panel.received[-1]["messages"]] == [
        "Capital of France?",
        "Paris.",
        "And Germany?",
        "Berlin.",
    ]


# --- the panel's side of the protocol (TypeScript, jest) ------------------------------------


def test_panel_typescript_unit_tests():
    """Run the labextension's jest suite (protocol validation, chat model, connection)."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    ext = Path(__file__).resolve().parents[1] / "labextension"
    jlpm = shutil.which("jlpm") or str(Path(sys.executable).parent / "jlpm")
    if not (ext / "node_modules" / ".bin" / "jest").exists() or shutil.which("node") is None or not Path(jlpm).exists():
        pytest.skip("labextension/node_modules not installed (run `jlpm install` in labextension/)")
    env = {**os.environ, "PATH": f"{Path(jlpm).parent}{os.pathsep}{os.environ.get('PATH', '')}", "CI": "1"}
    run = subprocess.run([jlpm, "test", "--silent"], cwd=ext, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "failed" not in run.stderr.lower().split("tests:")[-1]


def test_hello_with_resume_restores_the_saved_conversation(server, tmp_path):
    """After a kernel restart the panel's hello asks the new agent to continue the saved conversation."""
    from jupyter_agent.agent import Agent
    from jupyter_agent.store import ConversationStore

    def new_agent() -> Agent:
        agent = Agent(model="gpt-test", base_url=server.base_url, provider="compatible", transport="sse", prewarm=False)
        agent.attach_store(ConversationStore(tmp_path, "notebook.ipynb"))
        return agent

    first = new_agent()
    server.add_response(text_reply("Saved answer.", phase="final_answer"))
    first.start("Remember me").result(15)

    # A plain hello (first connection) leaves the new kernel's agent empty.
    plain, comm = new_agent(), FakeComm()
    bridge = C.PanelBridge(comm, lambda: plain)
    try:
        comm.deliver({"type": "hello", "version": 1})
        assert comm.of_type("history")[-1]["messages"] == []
    finally:
        bridge.close()

    restarted, comm = new_agent(), FakeComm()
    bridge = C.PanelBridge(comm, lambda: restarted)
    try:
        comm.deliver({"type": "hello", "version": 1, "resume": True})
        messages = comm.of_type("history")[-1]["messages"]
        assert [(m["role"], m["text"]) for m in messages] == [("user", "Remember me"), ("assistant", "Saved answer.")]
        assert restarted.conversation_id == first.conversation_id
        # resume does not replace a conversation the agent already has
        comm.deliver({"type": "hello", "version": 1, "resume": True})
        assert comm.of_type("history")[-1]["messages"] == messages
    finally:
        bridge.close()
