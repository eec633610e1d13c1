"""Fault matrix over the Responses WebSocket (issue 8, spec §2.4-2.8), one turn through ``Agent.ask``.

Same invariants as the HTTP matrix (``tests/fault_scenarios.py``): bounded time, expected outcome,
no duplicated output, the user's message kept once, consistent history, a responsive caller, a
working next turn; plus the WebSocket specifics: close frames, binary frames, wrapped errors,
426 and exhausted retries falling back to HTTP with a notice, chain loss and connection limits
reconnecting with a full request.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jupyter_agent.loop import AgentLoop

from .fault_scenarios import Scenario, agent_loop, run_scenario, ws_scenarios

SCENARIOS = ws_scenarios()


@pytest.fixture(scope="module")
def fault_loop() -> Iterator[AgentLoop]:
    with agent_loop() as loop:
        yield loop


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_ws_fault(scenario: Scenario, fault_loop: AgentLoop) -> None:
    outcome = await run_scenario(scenario, fault_loop, transport="websocket")
    assert outcome.ok, f"{scenario.name}: {outcome.problems}"
    assert outcome.seconds < scenario.max_seconds
