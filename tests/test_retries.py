"""Retries over HTTP+SSE: a retry voids the failed attempt (no duplicated text, no ghost tool calls),
a failed turn keeps the user's message and a valid history, and the next turn works."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_agent import events as ev
from jupyter_agent.config import Provider
from jupyter_agent.protocol import errors as E
from jupyter_agent.session import ModelSession, SessionOptions
from jupyter_agent.testing import Reply, ScriptedServer, error_reply, failed_reply, function_call_reply, text_reply
from jupyter_agent.testing.replies import function_call_events, text_events
from tests.sse_support import make_agent, of_type, server  # noqa: F401


def visible_text(events: list[ev.AgentEvent]) -> str:
    """What a frontend shows: text deltas, with a Retry voiding the failed attempt's text."""
    shown = ""
    for e in events:
        if isinstance(e, ev.Retry):
            shown = ""
        elif isinstance(e, ev.TextDelta):
            shown += e.delta
    return shown


def assistant_texts(history: list[dict[str, Any]]) -> list[str]:
    return [h["content"][0]["text"] for h in history if h.get("role") == "assistant"]


def dropped(events: list[dict[str, Any]], n: int) -> Reply:
    """A reply whose connection drops after ``n`` events (no terminal event)."""
    return Reply(events=events, fault=("drop_after", n))


async def test_retry_never_duplicates_text(server: ScriptedServer, make_agent: Any) -> None:
    partial = text_events("Hello wor", chunks=3)
    server.add_response(dropped(partial, 4))  # created, item added, content part, 1 delta
    server.add_response(text_reply("Hello world", chunks=3))
    agent = make_agent(max_retries=2)
    turn = await agent.ask("hi")
    assert turn.status == "completed" and turn.text == "Hello world"
    [retry] = of_type(turn.events, ev.Retry)
    assert (retry.attempt, retry.max_attempts) == (1, 2) and retry.reason
    index = turn.events.index(retry)
    assert any(isinstance(e, ev.TextDelta) for e in turn.events[:index])  # the failed attempt did show text
    assert visible_text(turn.events) == "Hello world"
    assert [m.text for m in of_type(turn.events, ev.MessageDone)] == ["Hello world"]
    assert assistant_texts(agent.history) == ["Hello world"]
    assert len(server.requests) == 2


async def test_retry_voids_items_of_the_failed_attempt(server: ScriptedServer, make_agent: Any) -> None:
    calls: list[str] = []

    def lookup(q: str) -> str:
        calls.append(q)
        return "found"

    evs = function_call_events("lookup", '{"q":"ghost"}', call_id="c_ghost")
    server.add_response(dropped(evs, len(evs) - 1))  # the call is done, the response never completes
    server.add_response(text_reply("No tool needed."))
    agent = make_agent(tools=[lookup], max_retries=1)
    turn = await agent.ask("hi")
    assert turn.status == "completed" and turn.text == "No tool needed."
    assert calls == [] and not of_type(turn.events, ev.ToolCall)
    assert not any(h.get("type") == "function_call" for h in agent.history)


async def test_server_suggested_delay_is_used(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(failed_reply("rate_limit_exceeded", "Rate limit reached. Please try again in 28ms."))
    server.add_response(text_reply("ok"))
    turn = await make_agent(max_retries=1).ask("hi")
    assert turn.status == "completed"
    [retry] = of_type(turn.events, ev.Retry)
    assert retry.delay == pytest.approx(0.028)


async def test_500_is_retried_until_success(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(error_reply(500, "boom", type="server_error"))
    server.add_response(error_reply(500, "boom", type="server_error"))
    server.add_response(text_reply("third time"))
    turn = await make_agent(max_retries=2).ask("hi")
    assert turn.status == "completed" and turn.text == "third time"
    assert [r.attempt for r in of_type(turn.events, ev.Retry)] == [1, 2]
    assert len(server.requests) == 3
    # Every attempt sends the same body.
    assert server.requests[0].json == server.requests[1].json == server.requests[2].json


async def test_retries_exhausted_keeps_user_message_and_next_turn_works(
    server: ScriptedServer, make_agent: Any
) -> None:
    for _ in range(3):
        server.add_response(dropped(text_events("lost text"), 4))
    agent = make_agent(max_retries=2)
    turn = await agent.ask("first question")
    assert turn.status == "failed" and len(server.requests) == 3
    [error] = of_type(turn.events, ev.Error)
    assert not error.retryable and error.message
    assert isinstance(turn.events[-1], ev.TurnDone) and turn.events[-1].status == "failed"
    assert agent.history == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first question"}]}
    ]
    server.add_response(text_reply("answer two"))
    turn2 = await agent.ask("second question")
    assert turn2.status == "completed" and turn2.text == "answer two"
    users = [i["content"][0]["text"] for i in server.requests[3].json["input"] if i.get("role") == "user"]
    assert users == ["first question", "second question"]


async def test_non_retryable_failure_is_not_retried(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(failed_reply("invalid_prompt", "Your prompt was flagged."))
    turn = await make_agent(max_retries=5).ask("hi")
    assert turn.status == "failed" and len(server.requests) == 1
    assert not of_type(turn.events, ev.Retry)
    assert of_type(turn.events, ev.Error)[0].message == "Your prompt was flagged."


async def test_failure_after_a_tool_call_leaves_a_valid_history(server: ScriptedServer, make_agent: Any) -> None:
    def lookup(q: str) -> str:
        return f"found {q}"

    server.add_response(function_call_reply("lookup", '{"q":"x"}', call_id="c1"))
    server.add_response(failed_reply("invalid_prompt", "nope"))
    server.add_response(text_reply("recovered"))
    agent = make_agent(tools=[lookup])
    turn = await agent.ask("go")
    assert turn.status == "failed"
    kinds = [h.get("type") for h in agent.history]
    assert kinds == ["message", "function_call", "function_call_output"]
    turn2 = await agent.ask("try again")
    assert turn2.status == "completed" and turn2.text == "recovered"
    sent = server.requests[2].json["input"]
    calls = [i["call_id"] for i in sent if i["type"] == "function_call"]
    outputs = [i["call_id"] for i in sent if i["type"] == "function_call_output"]
    assert calls == outputs == ["c1"]


async def test_malformed_completed_is_retried(server: ScriptedServer, make_agent: Any) -> None:
    evs = text_events("half")
    evs[-1] = {"type": "response.completed", "response": {"status": "completed"}}  # no id
    server.add_response(Reply(events=evs))
    server.add_response(text_reply("whole"))
    turn = await make_agent(max_retries=1).ask("hi")
    assert turn.status == "completed" and turn.text == "whole"
    assert "failed to parse ResponseCompleted" in of_type(turn.events, ev.Retry)[0].reason
    assert visible_text(turn.events) == "whole"


def test_backoff_doubles_with_jitter() -> None:
    session = ModelSession(
        Provider(name="compatible", base_url="http://127.0.0.1:9/v1"),
        options=SessionOptions(backoff_base=0.2, max_backoff=10.0),
    )
    for attempt, base in ((1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6)):
        for _ in range(20):
            assert base * 0.9 <= session.backoff(attempt) <= base * 1.1
    assert session.backoff(20) <= 10.0


async def test_retry_through_the_cell_transcript_shows_text_once(server: ScriptedServer, make_agent: Any) -> None:
    from jupyter_agent.ui.transcript import TurnViewState

    server.add_response(dropped(text_events("Hello wor", chunks=3), 4))
    server.add_response(text_reply("Hello world", chunks=3, phase="final_answer"))
    turn = await make_agent(max_retries=1).ask("hi")
    state = TurnViewState()
    for e in turn.events:
        state.handle(e)
    assert state.answer_text() == "Hello world"
    assert state.plain_text(gauges=False).count("Hello wor") == 1


async def test_delay_beyond_the_cap_is_not_waited_for(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(failed_reply("rate_limit_exceeded", "Rate limit reached. Please try again in 3600s."))
    turn = await make_agent(max_retries=3).ask("hi")
    assert turn.status == "failed" and len(server.requests) == 1
    assert not of_type(turn.events, ev.Retry)
    assert "try again in 3600s" in of_type(turn.events, ev.Error)[0].message


def test_retry_budget_obeys_the_server_then_backs_off_then_gives_up() -> None:
    """One policy for SSE and WebSocket (``protocol/retry.py``): server delay first, backoff else."""
    from jupyter_agent.protocol.retry import RECONNECT_CODES, RetryBudget

    budget = RetryBudget(2, backoff_base=0.2, max_backoff=10.0)
    assert budget.next_delay(E.StreamError("slow", delay=1.5)) == 1.5
    assert 0.36 <= (budget.next_delay(E.StreamError("broken")) or 0) <= 0.44  # attempt 2: 0.4 ± 10%
    assert budget.spent and budget.next_delay(E.StreamError("again")) is None
    assert RetryBudget(5).next_delay(E.InvalidRequest("bad")) is None  # not retryable: final at once
    ws = RetryBudget(5, reconnect_codes=RECONNECT_CODES)
    assert ws.next_delay(E.StreamError("gone", code="previous_response_not_found", delay=3.0)) == 0.0
    assert ws.attempt == 1
