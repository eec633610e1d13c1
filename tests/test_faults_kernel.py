"""Faults seen from a real kernel: ``%%agent`` cells against a faulty scripted server.

For each fault the cell ends within a bounded time with a clear outcome in its output, the
conversation keeps the user's message once (and the answer once when there is one), ``1+1``
answers promptly right after, and the next ``%%agent`` cell works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jupyter_agent.testing import Reply, ScriptedServer, error_reply, text_events, text_reply

from .kernel_driver import KernelDriver

pytestmark = pytest.mark.kernel

ANSWER = "The kernel answer is 42."
NEXT = "Still working afterwards."


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory, server: ScriptedServer) -> Iterator[KernelDriver]:
    driver = KernelDriver(cwd=str(tmp_path_factory.mktemp("faults-kernel")))
    setup = driver.run(
        "%load_ext jupyter_agent\n"
        "import jupyter_agent.magics as M\n"
        f"%agent connect --base-url {server.base_url} --provider compatible --model gpt-test --transport sse\n"
        "a = M.get_agent()\n"
        "a.idle_timeout = 0.5\n"
        "a.max_retries = 1\n"
    )
    assert setup.status == "ok", setup.text
    yield driver
    driver.shutdown()


def _answer() -> list[Any]:
    return list(text_events(ANSWER, phase="final_answer", chunks=4))


FAULTS: list[tuple[str, Callable[[], list[Reply]], str]] = [
    (
        "server stops sending, every attempt",
        lambda: [Reply(events=_answer(), fault=("hang_after", 4)) for _ in range(2)],
        "idle timeout",
    ),
    (
        "drop after deltas, then ok",
        lambda: [Reply(events=_answer(), fault=("drop_after", 5)), Reply(events=_answer())],
        ANSWER,
    ),
    (
        "reset before first byte, then ok",
        lambda: [Reply(fault="reset_before_first_byte"), Reply(events=_answer())],
        ANSWER,
    ),
    (
        "HTTP 429 usage limit",
        lambda: [error_reply(429, "limit", type="usage_limit_reached", plan_type="plus")],
        "usage limit",
    ),
    ("malformed events", lambda: [Reply(events=[*_answer()[:3], {"type": 7}, *_answer()[3:]])], ANSWER),
]


@pytest.mark.parametrize(("name", "replies", "expect"), FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_in_a_cell(
    kernel: KernelDriver, server: ScriptedServer, name: str, replies: Callable[[], list[Reply]], expect: str
) -> None:
    assert kernel.run("a.reset()").status == "ok"
    server.add_responses(*replies())
    prompt = f"question about {name}"
    result = kernel.run(f"%%agent\n{prompt}", timeout=15)
    assert result.status == "ok", result.text
    assert result.seconds < 8, result.seconds
    assert expect.lower() in result.text.lower(), result.text[-500:]
    quick = kernel.run("1+1", timeout=5)
    assert quick.status == "ok" and "2" in quick.text and quick.seconds < 2, quick.seconds
    history = kernel.run("print(M.history_text(a))").text
    assert history.count(f"[user] {prompt}") == 1, history
    assert history.count(ANSWER) == (1 if expect == ANSWER else 0), history
    server.add_response(text_reply(NEXT, phase="final_answer"))
    nxt = kernel.run("%%agent\nand now?", timeout=15)
    assert nxt.status == "ok" and NEXT in nxt.text, nxt.text[-500:]
