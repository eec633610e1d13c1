"""Short soak (the long one is ``benchmarks/bench_soak.py``): 80 turns over SSE and WebSocket.

No turn fails; descriptors, sockets, threads and agent-loop tasks end where they started (and
drop once the session is closed); Python objects grow only by what each turn keeps by design
(the ``Turn`` record and two history items), and resident memory per turn stays small.
"""

from __future__ import annotations

import pytest

from jupyter_agent.testing.soak import soak

#: Objects a finished turn keeps on purpose: its Turn (events, usage, telemetry) and history items.
MAX_OBJECTS_PER_TURN = 60
MAX_RSS_PER_TURN = 128 * 1024


@pytest.mark.parametrize("transport", ["sse", "websocket"])
def test_soak_leaks_nothing(transport: str) -> None:
    r = soak(transport, 80)
    report = "\n".join(r.lines())
    assert r.failures == 0, report
    s, e, c = r.start, r.end, r.after_close
    assert e.fds <= s.fds and e.sockets <= s.sockets, report
    assert c.sockets < s.sockets and c.tasks == 0, report
    assert e.threads <= s.threads, report
    assert e.tasks <= s.tasks + 1, report  # at most the finished turn's connection closing
    assert (e.objects - s.objects) / (e.turn - s.turn) < MAX_OBJECTS_PER_TURN, report
    assert r.rss_per_turn < MAX_RSS_PER_TURN, report
