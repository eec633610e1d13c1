"""The extension in a real ipykernel (started with jupyter_client), against the scripted server."""

from __future__ import annotations

import time

import pytest

from jupyter_agent.testing import Ev, Reply
from jupyter_agent.testing.replies import function_call_events, text_events, text_reply

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def kernel(start_kernel, module_server):
    return start_kernel(module_server)


@pytest.fixture(autouse=True)
def fresh_conversation(kernel):
    kernel.run("a.reset()")


def test_cell_streams_answer_into_the_cell(kernel, module_server):
    module_server.add_response(text_reply("Hello from the scripted server.", phase="final_answer", chunks=5))
    result = kernel.run("%%agent\nsay hello")
    assert result.status == "ok", result.text
    assert "Hello from the scripted server." in result.text
    assert "Final answer" in result.text or "final answer" in result.text.lower()
    history = kernel.run("print(M.history_text(a))")
    assert "[user] say hello" in history.text
    assert "Hello from the scripted server." in history.text


def test_interrupt_cancels_turn_and_keeps_history(kernel, module_server):
    slow = text_events("word " * 60, phase="final_answer", chunks=60)
    module_server.add_response(Reply(events=[Ev(e, delay=0.2) for e in slow]))
    sent = len(module_server.requests)
    streaming_since: list[float] = []

    def streaming_for_a_while() -> bool:
        if len(module_server.requests) > sent and not streaming_since:
            streaming_since.append(time.monotonic())
        return bool(streaming_since) and time.monotonic() - streaming_since[0] > 0.8

    result = kernel.run("%%agent\nwrite a long answer", interrupt_when=streaming_for_a_while)
    assert result.status == "error", result.text
    assert "KeyboardInterrupt" in result.text
    assert result.interrupt_to_reply is not None and result.interrupt_to_reply < 1.0
    history = kernel.run("print(M.history_text(a))").text
    assert "[user] write a long answer" in history
    assert "[interrupted]" in history
    # the next turn works and sees a consistent history
    module_server.add_response(text_reply("Still here.", phase="final_answer"))
    again = kernel.run("%%agent\nare you there?")
    assert again.status == "ok" and "Still here." in again.text
    last_input = module_server.requests[-1].json["input"]
    assert [i["role"] for i in last_input if i.get("type") == "message"] == ["user", "assistant", "user"]


def test_network_progresses_while_the_kernel_is_idle(kernel, module_server):
    """A background turn keeps streaming and runs its tool follow-up with no cell executing."""
    kernel.run("def lookup(key: str) -> str:\n    'Look a key up.'\n    return key.upper()\na.add_tool(lookup)\n")
    before = len(module_server.requests)
    first = function_call_events("lookup", '{"key": "abc"}', call_id="call_bg")
    module_server.add_response(Reply(events=[Ev(e, delay=0.05) for e in first]))
    module_server.add_response(
        Reply(events=[Ev(e, delay=0.05) for e in text_events("Found ABC.", phase="final_answer")])
    )
    started = kernel.run(
        "import time\n"
        "done_at = []\n"
        "unsub = a.subscribe(lambda e: done_at.append(time.time()) if e.type == 'turn_done' else None)\n"
        "h = a.start('look up abc', interactive=False)"
    )
    assert started.status == "ok" and started.seconds < 2.0
    # No cell runs now: only the agent's own loop can make the follow-up request.
    assert module_server.wait_for(lambda: len(module_server.requests) >= before + 2, timeout=10)
    follow_up = module_server.requests[before + 1].json["input"]
    assert follow_up[-1] == {"type": "function_call_output", "call_id": "call_bg", "output": "ABC"}
    time.sleep(2.0)
    done = kernel.run(
        "checked_at = time.time(); unsub()\nprint(bool(done_at) and done_at[0] < checked_at, h.result().text)"
    )
    assert "True Found ABC." in done.text


def test_agent_commands_and_usage_errors(kernel):
    status = kernel.run("%agent status")
    assert status.status == "ok"
    assert "Model:      gpt-test" in status.text and "compatible" in status.text
    bad = kernel.run("%agent frobnicate")
    assert bad.status == "ok" and "UsageError: unknown command 'frobnicate'" in bad.text
    assert "Traceback" not in bad.text
    bad_cell = kernel.run("%%agent --model\nhello")
    assert bad_cell.status == "ok" and "UsageError" in bad_cell.text
    config = kernel.run("%config Agent.model = 'gpt-other'\nprint(a.model)")
    assert "gpt-other" in config.text
    kernel.run("a.model = 'gpt-test'")


def test_failed_turn_shows_clear_error_and_keeps_message(kernel, module_server):
    module_server.add_response(
        Reply(
            status=400,
            body={"error": {"type": "invalid_request_error", "code": "invalid_prompt", "message": "Prompt flagged."}},
        )
    )
    result = kernel.run("%%agent\nsomething bad")
    assert result.status == "ok"
    assert "Prompt flagged." in result.text
    history = kernel.run("print(M.history_text(a))").text
    assert "[user] something bad" in history


def test_reset_and_transport_override_are_refused_while_a_turn_streams(kernel, module_server):
    """Issue 15 item 10 in a real kernel: a turn running on the agent loop (as from the panel);
    ``%agent reset`` and a ``%%agent -t websocket`` cell say why they cannot run, the turn completes
    with its user message, and the history is intact."""
    module_server.add_response(text_reply("Panel answer.", phase="final_answer", chunks=10, delay=0.15))
    assert kernel.run("h = a.start('panel question')").status == "ok"
    reset = kernel.run("%agent reset")
    assert "UsageError: A turn is running: stop it (or let it finish) before starting a new conversation." in reset.text
    cell = kernel.run("%%agent -t websocket\nanother question")
    assert "UsageError: A turn is running" in cell.text and "before changing transport" in cell.text
    done = kernel.run("t = h.result(15)\nprint(t.status, t.text)\nprint(M.history_text(a))")
    assert "completed Panel answer." in done.text
    assert "[user] panel question" in done.text and "another question" not in done.text
    assert "Transport:  sse" in kernel.run("%agent status").text
