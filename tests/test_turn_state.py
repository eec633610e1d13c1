"""Spec §6: ``x-codex-turn-state`` sticky routing over HTTP+SSE (write-once per turn, reset per turn)."""

from __future__ import annotations

import json
from typing import Any

from jupyter_agent.session import TurnContext
from jupyter_agent.testing import Reply, ScriptedServer, function_call_reply, text_reply
from jupyter_agent.testing.replies import text_events


def lookup(q: str) -> str:
    return f"result for {q}"


def turn_id(req: Any) -> str:
    return json.loads(req.headers["x-codex-turn-metadata"])["turn_id"]


async def test_responses_turn_state_persists_within_turn_and_resets_after(
    server: ScriptedServer, make_agent: Any
) -> None:
    server.add_response(function_call_reply("lookup", '{"q":"a"}', headers={"x-codex-turn-state": "ts-1"}))
    server.add_response(text_reply("done"))
    server.add_response(text_reply("second turn"))
    agent = make_agent(tools=[lookup])
    turn1 = await agent.ask("first")
    await agent.ask("second")
    r1, r2, r3 = server.requests
    assert "x-codex-turn-state" not in r1.headers
    assert r2.headers["x-codex-turn-state"] == "ts-1"
    assert "x-codex-turn-state" not in r3.headers
    assert turn_id(r1) == turn_id(r2) == turn1.id
    assert turn_id(r3) != turn_id(r1)


async def test_first_value_wins_within_a_turn(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(
        function_call_reply("lookup", '{"q":"a"}', call_id="c1", headers={"x-codex-turn-state": "ts-1"})
    )
    server.add_response(
        function_call_reply("lookup", '{"q":"b"}', call_id="c2", headers={"x-codex-turn-state": "ts-2"})
    )
    server.add_response(text_reply("done"))
    await make_agent(tools=[lookup]).ask("go")
    assert [r.headers.get("x-codex-turn-state") for r in server.requests] == [None, "ts-1", "ts-1"]


async def test_retries_keep_sending_the_stored_value(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(function_call_reply("lookup", '{"q":"a"}', headers={"x-codex-turn-state": "ts-1"}))
    server.add_response(Reply(events=text_events("partial")[:2], fault=("drop_after", 2)))
    server.add_response(text_reply("done"))
    turn = await make_agent(tools=[lookup], max_retries=1).ask("go")
    assert turn.status == "completed"
    assert [r.headers.get("x-codex-turn-state") for r in server.requests] == [None, "ts-1", "ts-1"]
    assert len({turn_id(r) for r in server.requests}) == 1


async def test_state_captured_from_a_failed_attempt_is_echoed_on_the_retry(
    server: ScriptedServer, make_agent: Any
) -> None:
    server.add_response(
        Reply(headers={"x-codex-turn-state": "ts-9"}, events=text_events("partial")[:2], fault=("drop_after", 2))
    )
    server.add_response(text_reply("done"))
    turn = await make_agent(max_retries=1).ask("go")
    assert turn.status == "completed"
    assert [r.headers.get("x-codex-turn-state") for r in server.requests] == [None, "ts-9"]


def test_turn_context_cell_is_write_once() -> None:
    ctx = TurnContext()
    ctx.capture_turn_state(None)
    ctx.capture_turn_state("")
    assert ctx.turn_state is None
    ctx.capture_turn_state("a")
    ctx.capture_turn_state("b")
    assert ctx.turn_state == "a"
    assert TurnContext().turn_state is None
