"""Fault matrix over HTTP + SSE (issue 8): every scripted fault, one turn through ``Agent.ask``.

Each case runs on a fresh scripted server and agent and checks the invariants listed in
``tests/fault_scenarios.py``: bounded time, expected outcome, no duplicated output, the user's
message kept exactly once, history consistent, the caller's loop responsive, the next turn works.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jupyter_agent.loop import AgentLoop

from .fault_scenarios import Scenario, agent_loop, http_scenarios, run_scenario

SCENARIOS = http_scenarios()


@pytest.fixture(scope="module")
def fault_loop() -> Iterator[AgentLoop]:
    with agent_loop() as loop:
        yield loop


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_http_fault(scenario: Scenario, fault_loop: AgentLoop) -> None:
    outcome = await run_scenario(scenario, fault_loop)
    assert outcome.ok, f"{scenario.name}: {outcome.problems}"
    assert outcome.seconds < scenario.max_seconds


def test_matrix_covers_the_issue() -> None:
    names = " | ".join(s.name for s in SCENARIOS)
    for needle in (
        "refused",
        "reset before first byte",
        "drop after",
        "without response.completed",
        "response.incomplete",
        "HTTP 400",
        "HTTP 401",
        "retry-after:",
        "retry-after-ms",
        "usage_limit_reached",
        "HTTP 500",
        "HTTP 503",
        "malformed JSON",
        "unknown event",
        "idle timeout",
        "slow server",
        "huge event",
    ):
        assert needle in names, needle
    for code in (
        "context_length_exceeded",
        "insufficient_quota",
        "usage_not_included",
        "invalid_prompt",
        "server_is_overloaded",
        "slow_down",
        "rate_limit_exceeded",
    ):
        assert f"response.failed {code}" in names, code


@pytest.mark.parametrize("transport", ["sse", "websocket"])
async def test_stop_while_the_server_hangs(transport: str, fault_loop: AgentLoop) -> None:
    """The user presses Stop while the server has gone silent (no idle timeout yet)."""
    import asyncio
    import time

    from jupyter_agent import events as ev
    from jupyter_agent.agent import INTERRUPTED_MARK, Agent
    from jupyter_agent.testing import Hang, Reply, ScriptedServer, WsConn, text_events, text_reply

    from .fault_scenarios import ANSWER, NEXT_ANSWER

    with ScriptedServer() as server:
        events = list(text_events(ANSWER, phase="final_answer", chunks=4))
        server.add_response(Reply(events=events, fault=("hang_after", 4)))
        server.add_ws_connection(WsConn(requests=[events[:4] + [Hang()]]))
        agent = Agent(
            model="gpt-5-scripted",
            base_url=server.base_url,
            api_key="sk-fault-test",
            provider="openai" if transport == "websocket" else "compatible",
            transport=transport,
            loop=fault_loop,
            prewarm=False,
            web_search="disabled",
            idle_timeout=300.0,
        )
        first_delta = asyncio.Event()
        caller = asyncio.get_running_loop()
        agent.subscribe(lambda e: caller.call_soon_threadsafe(first_delta.set) if isinstance(e, ev.TextDelta) else None)
        handle = agent.start("a question the server never finishes")
        await asyncio.wait_for(first_delta.wait(), 5)
        t0 = time.perf_counter()
        handle.cancel()
        with pytest.raises(asyncio.CancelledError):  # a stopped turn's future ends cancelled
            await asyncio.wait_for(asyncio.wrap_future(handle.future), 5)
        turn = agent.turns[-1]
        assert time.perf_counter() - t0 < 2.0
        assert turn.status == "interrupted"
        texts = [m["text"] for m in agent.transcript()]
        assert texts.count("a question the server never finishes") == 1
        partial = [t for t in texts if t.endswith(INTERRUPTED_MARK)]
        assert len(partial) == 1 and ANSWER.startswith(partial[0].split("\n\n")[0])
        assert sum(1 for e in turn.events if isinstance(e, ev.TurnDone)) == 1
        server.add_response(text_reply(NEXT_ANSWER, phase="final_answer"))
        server.add_ws_connection(WsConn(requests=[text_events(NEXT_ANSWER, phase="final_answer")]))
        nxt = await asyncio.wait_for(agent.ask("next"), 10)
        assert nxt.status == "completed" and nxt.text == NEXT_ANSWER
        await fault_loop.run(agent.session.aclose())
