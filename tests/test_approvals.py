"""Approval policies: ask (approve / approve always / deny), auto, never, non-interactive refusal,
and cancel while an approval or a tool is pending (history stays valid, the user message kept)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

from jupyter_agent import events as ev
from jupyter_agent.agent import INTERRUPTED_MARK
from jupyter_agent.testing.replies import text_reply
from jupyter_agent.tools.kernel import kernel_tools
from jupyter_agent.ui import TurnView

from .sse_support import of_type
from .tool_support import calls_reply, outputs


def _answering(agent, decisions: list[str]):
    """Subscribe a frontend that answers each approval request with the next decision."""
    asked: list[ev.ApprovalRequest] = []

    def on_event(event: ev.AgentEvent) -> None:
        if isinstance(event, ev.ApprovalRequest):
            asked.append(event)
            agent.resolve_approval(event.call_id, decisions[len(asked) - 1])

    agent.subscribe(on_event)
    return asked


def _cancelled_turn(agent, handle):
    """A cancelled handle's future raises CancelledError; the Turn itself is in ``agent.turns``."""
    try:
        handle.result(5)
    except concurrent.futures.CancelledError:
        pass
    return next(t for t in agent.turns if t.id == handle.turn_id)


def _code_agent(make_agent, ns):
    return make_agent(tools=kernel_tools(ns))


def test_approve_runs_the_code(server, make_agent):
    ns: dict = {}
    agent = _code_agent(make_agent, ns)
    asked = _answering(agent, ["approve"])
    server.add_response(calls_reply(("run_python", {"code": "z = 7\nz"}, "c1")))
    server.add_response(text_reply("z is 7", phase="final_answer"))
    turn = agent.start("set z", interactive=True).result(10)
    assert turn.status == "completed"
    assert [a.name for a in asked] == ["run_python"] and '"z = 7' in asked[0].arguments
    assert outputs(server.requests[1].json) == {"c1": "[result]\n7"} and ns["z"] == 7
    assert [r.decision for r in of_type(turn.events, ev.ApprovalResolved)] == ["approve"]


def test_deny_never_runs_the_code(server, make_agent):
    ns: dict = {}
    agent = _code_agent(make_agent, ns)
    _answering(agent, ["deny"])
    server.add_response(calls_reply(("run_python", {"code": "boom = 1"}, "c1")))
    server.add_response(text_reply("OK, I will not.", phase="final_answer"))
    turn = agent.start("x", interactive=True).result(10)
    assert turn.status == "completed" and "boom" not in ns
    assert outputs(server.requests[1].json) == {"c1": "The user denied the call to run_python."}


def test_approve_always_stops_asking(server, make_agent):
    ns: dict = {}
    agent = _code_agent(make_agent, ns)
    asked = _answering(agent, ["approve_always"])
    server.add_response(calls_reply(("run_python", {"code": "a = 1"}, "c1")))
    server.add_response(calls_reply(("run_python", {"code": "b = 2"}, "c2")))
    server.add_response(text_reply("done", phase="final_answer"))
    agent.start("x", interactive=True).result(10)
    assert len(asked) == 1 and ns["a"] == 1 and ns["b"] == 2
    assert agent.approval_policy("run_python") == "auto"


def test_non_interactive_frontend_gets_a_clear_refusal(server, make_agent):
    ns: dict = {}
    agent = _code_agent(make_agent, ns)
    server.add_response(calls_reply(("run_python", {"code": "c = 3"}, "c1"), ("list_variables", {}, "c2")))
    server.add_response(text_reply("I need approval.", phase="final_answer"))
    turn = asyncio.run(agent.ask("x"))  # plain Python API: nobody can click a button
    out = outputs(server.requests[1].json)
    assert "c" not in ns
    assert out["c1"].startswith("Denied: run_python needs the user's approval and this frontend cannot ask for it.")
    assert out["c2"] == "No user variables are defined."  # auto tools still run
    assert not of_type(turn.events, ev.ApprovalRequest)


def test_plain_text_view_refuses_with_a_notice(server, make_agent):
    ns: dict = {}
    agent = _code_agent(make_agent, ns)
    view = TurnView("gpt-5", on_approval=agent.resolve_approval, widgets=False)
    server.add_response(calls_reply(("run_python", {"code": "d = 4"}, "c1")))
    server.add_response(text_reply("Refused.", phase="final_answer"))
    agent.start("x", sink=view.handle, interactive=True).result(10)
    assert "d" not in ns
    assert "Refused run_python: it needs approval" in view.plain_text()
    assert outputs(server.requests[1].json) == {"c1": "The user denied the call to run_python."}


def test_policy_config_auto_and_never(server, make_agent):
    ns: dict = {}
    agent = _code_agent(make_agent, ns)
    agent.tool_approval = {"run_python": "never"}
    server.add_response(calls_reply(("run_python", {"code": "e = 5"}, "c1")))
    server.add_response(text_reply("ok", phase="final_answer"))
    agent.start("x", interactive=True).result(10)
    assert (
        "e" not in ns
        and outputs(server.requests[1].json)["c1"] == "Not run: the approval policy of run_python is 'never'."
    )
    agent.set_approval(None, "auto")  # every code-running tool
    assert agent.tool_approval == {"run_python": "auto"}
    server.add_response(calls_reply(("run_python", {"code": "e = 5"}, "c2")))
    server.add_response(text_reply("ok", phase="final_answer"))
    asyncio.run(agent.ask("x"))
    assert ns["e"] == 5


def test_cancel_while_waiting_for_approval(server, make_agent):
    ns: dict = {}
    agent = _code_agent(make_agent, ns)
    asked = threading.Event()
    agent.subscribe(lambda e: asked.set() if isinstance(e, ev.ApprovalRequest) else None)
    server.add_response(calls_reply(("run_python", {"code": "f = 6"}, "c1"), preamble="I will run code."))
    handle = agent.start("please run", interactive=True)
    assert asked.wait(10)
    handle.cancel()
    turn = _cancelled_turn(agent, handle)
    assert turn.status == "interrupted" and "f" not in ns
    assert of_type(turn.events, ev.TurnDone)[-1].status == "interrupted"
    assert not agent._approvals  # nothing left pending
    kinds = [(i["type"], i.get("role")) for i in agent.history]
    assert kinds == [
        ("message", "user"),
        ("message", "assistant"),
        ("function_call", None),
        ("function_call_output", None),
    ]
    assert agent.history[-1]["output"] == "Cancelled by the user before the tool ran."
    # the next turn sends a valid history and works
    server.add_response(text_reply("fine", phase="final_answer"))
    assert asyncio.run(agent.ask("next")).status == "completed"
    assert [i["type"] for i in server.requests[-1].json["input"]][-2:] == ["function_call_output", "message"]


def test_cancel_mid_answer_marks_it_interrupted(server, make_agent):
    from jupyter_agent.testing import Ev, Reply
    from jupyter_agent.testing.replies import text_events

    agent = make_agent()
    streaming = threading.Event()
    agent.subscribe(lambda e: streaming.set() if isinstance(e, ev.TextDelta) else None)
    slow = text_events("part " * 40, phase="final_answer", chunks=40)
    server.add_response(Reply(events=[Ev(e, delay=0.05) for e in slow]))
    handle = agent.start("long answer", interactive=True)
    assert streaming.wait(10)
    t0 = time.perf_counter()
    handle.cancel()
    turn = _cancelled_turn(agent, handle)
    assert time.perf_counter() - t0 < 1.0  # cancelled within a second
    assert turn.status == "interrupted" and turn.text.startswith("part")
    assert agent.history[0]["content"][0]["text"] == "long answer"
    assert agent.history[-1]["content"][0]["text"].endswith(INTERRUPTED_MARK)


def test_cancel_while_a_tool_runs(server, make_agent):
    running = threading.Event()

    async def slow_lookup(key: str) -> str:
        """Never finishes by itself."""
        running.set()
        await asyncio.sleep(3600)
        return "unreachable"

    agent = make_agent(tools=[slow_lookup])
    server.add_response(calls_reply(("slow_lookup", {"key": "a"}, "c1"), ("slow_lookup", {"key": "b"}, "c2")))
    handle = agent.start("look up", interactive=True)
    assert running.wait(10)
    t0 = time.perf_counter()
    handle.cancel()
    turn = _cancelled_turn(agent, handle)
    assert time.perf_counter() - t0 < 1.0 and turn.status == "interrupted"
    assert [(i["type"], i.get("call_id")) for i in agent.history[1:]] == [
        ("function_call", "c1"),
        ("function_call", "c2"),
        ("function_call_output", "c1"),
        ("function_call_output", "c2"),
    ]
    assert len(server.requests) == 1  # no follow-up request after the cancel
