"""Fault matrix over HTTP + SSE (issue 8): every scripted fault, one turn through ``Agent.ask``.

Each case runs on a fresh scripted server and agent and checks the invariants listed in
``tests/fault_scenarios.py``: bounded time, expected outcome, no duplicated output, the user's
message kept exactly once, history consistent, the caller's loop responsive, the next turn works.
"""

from __future__ import annotations

from typing import Iterator

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
    for needle in ("refused", "reset before first byte", "drop after", "without response.completed",
                   "response.incomplete", "HTTP 400", "HTTP 401", "retry-after:", "retry-after-ms", "usage_limit_reached",
                   "HTTP 500", "HTTP 503", "malformed JSON", "unknown event", "idle timeout", "slow server", "huge event"):
        assert needle in names, needle
    for code in ("context_length_exceeded", "insufficient_quota", "usage_not_included", "invalid_prompt",
                 "server_is_overloaded", "slow_down", "rate_limit_exceeded"):
        assert f"response.failed {code}" in names, code
