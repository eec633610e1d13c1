"""Spec §10, other transports: HTTP+SSE turns count API calls, SSE events and tool calls."""

from __future__ import annotations

from jupyter_agent import events as ev
from jupyter_agent.testing.replies import function_call_reply, text_reply
from tests.sse_support import make_agent, of_type, server  # noqa: F401


async def test_sse_turn_counts_api_calls_events_and_tools(server, make_agent):
    agent = make_agent()

    def lookup(key: str) -> str:
        """Look a key up."""
        return key.upper()

    agent.add_tool(lookup, approval="auto")
    replies = [
        function_call_reply("lookup", '{"key": "abc"}', call_id="call_1"),
        text_reply("Found ABC.", phase="final_answer"),
    ]
    for reply in replies:
        server.add_response(reply)
    turn = await agent.ask("find abc")
    assert turn.text == "Found ABC."
    summary = turn.telemetry
    assert summary["api_calls"]["count"] == 2 == len(server.requests)
    assert summary["tool_calls"]["count"] == 1
    assert summary["websocket_calls"]["count"] == 0 and summary["websocket_events"]["count"] == 0
    # every event of both streams was counted once
    assert summary["streaming_events"]["count"] == sum(len(r.events) for r in replies)
    telemetry = of_type(turn.events, ev.Telemetry)
    assert len(telemetry) == 1
    line = telemetry[0].line
    assert "Local tools: 1 call" in line and "Inference: 2 calls" in line and "Streams: " in line


async def test_each_turn_starts_from_zero(server, make_agent):
    agent = make_agent()
    for answer in ("one", "two"):
        server.add_response(text_reply(answer, phase="final_answer"))
        turn = await agent.ask("count")
        assert turn.telemetry["api_calls"]["count"] == 1


async def test_reasoning_included_is_per_turn(server, make_agent):
    """Spec §7: the flag comes from the response headers and is reset at every regular turn."""
    from jupyter_agent.testing import Reply
    from jupyter_agent.testing.replies import text_events

    agent = make_agent()
    server.add_response(
        Reply(headers={"x-reasoning-included": "false"}, events=text_events("one", phase="final_answer"))
    )
    await agent.ask("first")
    assert agent.session.reasoning_included is True  # presence, not value
    server.add_response(text_reply("two", phase="final_answer"))
    await agent.ask("second")
    assert agent.session.reasoning_included is False
