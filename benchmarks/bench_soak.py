"""Soak: a long conversation against the scripted echo server, over HTTP+SSE and the WebSocket.

Each turn asks a new question and checks the quoted answer. After a warm-up the benchmark samples
resident memory (``/proc/self/statm``), open file descriptors and sockets, threads, tasks on the
agent loop, and Python heap (``tracemalloc`` off: it would slow the turns; ``gc`` object count
instead), and reports growth per turn and in total. The conversation history grows by design
(two items per turn, all sent back on every HTTP request), so memory per turn is expected to be
small but non-zero; descriptors, sockets, threads and tasks must come back to where they started.
The scripted server's request records are cleared every turn (they are the server's, not the
client's, memory).

    .venv/bin/python -m benchmarks.bench_soak [--turns 500] [--transport sse,websocket]
"""

from __future__ import annotations

import argparse
import sys

from jupyter_agent.testing.soak import soak


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--turns", type=int, default=500)
    p.add_argument("--transport", default="sse,websocket")
    args = p.parse_args(argv)
    bad = 0
    for transport in args.transport.split(","):
        result = soak(transport.strip(), args.turns)
        print("\n".join(result.lines()))
        bad += result.failures
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
