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
import asyncio
import gc
import os
import resource
import sys
import threading
import time
from dataclasses import dataclass

from jupyter_agent.agent import Agent
from jupyter_agent.loop import AgentLoop
from jupyter_agent.testing import ScriptedServer, echo_responder

PAGE = resource.getpagesize()
WARMUP = 20


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def fds() -> tuple[int, int]:
    """(open descriptors, of which sockets)."""
    n = s = 0
    for fd in os.listdir("/proc/self/fd"):
        n += 1
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                s += 1
        except OSError:
            pass
    return n, s


@dataclass
class Sample:
    turn: int
    rss: int
    fds: int
    sockets: int
    threads: int
    tasks: int
    objects: int


@dataclass
class SoakResult:
    transport: str
    turns: int
    seconds: float
    start: Sample
    end: Sample
    after_close: Sample
    failures: int

    @property
    def rss_per_turn(self) -> float:
        return (self.end.rss - self.start.rss) / max(1, self.end.turn - self.start.turn)

    def lines(self) -> list[str]:
        s, e, c = self.start, self.end, self.after_close
        n = max(1, e.turn - s.turn)
        return [
            f"{self.transport}: {self.turns} turns in {self.seconds:.1f} s ({self.turns / self.seconds:.0f} turns/s), {self.failures} failed",
            f"  RSS {s.rss / 2**20:.1f} -> {e.rss / 2**20:.1f} MiB after turn {WARMUP}..{e.turn}: "
            f"{(e.rss - s.rss) / 2**20:+.2f} MiB total, {self.rss_per_turn / 1024:+.2f} KiB/turn",
            f"  gc objects {s.objects:,} -> {e.objects:,} ({(e.objects - s.objects) / n:+.1f}/turn)",
            f"  fds {s.fds} -> {e.fds} (after close {c.fds}), sockets {s.sockets} -> {e.sockets} (after close {c.sockets}), "
            f"threads {s.threads} -> {e.threads}, agent-loop tasks {s.tasks} -> {e.tasks} (after close {c.tasks})",
        ]


def _sample(turn: int, loop: AgentLoop) -> Sample:
    gc.collect()
    tasks = loop.run_sync(_count_tasks(), timeout=10)
    n, s = fds()
    return Sample(turn, rss_bytes(), n, s, threading.active_count(), tasks, len(gc.get_objects()))


async def _count_tasks() -> int:
    me = asyncio.current_task()
    return sum(1 for t in asyncio.all_tasks() if t is not me and not t.done())


def soak(transport: str, turns: int, *, loop: AgentLoop | None = None) -> SoakResult:
    """Run ``turns`` echo turns over ``transport`` and sample resources (see module doc)."""
    own_loop = loop is None
    loop = loop or AgentLoop(name=f"soak-{transport}")
    failures = 0
    with ScriptedServer(responder=echo_responder) as server:
        provider = "openai" if transport == "websocket" else "compatible"
        agent = Agent(
            model="gpt-5-scripted",
            base_url=server.base_url,
            api_key="sk-soak-not-a-key",
            provider=provider,
            transport=transport,
            loop=loop,
            prewarm=False,
            web_search="disabled",
            max_retries=0,
        )
        start: Sample | None = None
        t0 = time.perf_counter()
        for i in range(1, turns + 1):
            prompt = f"question number {i}"
            turn = loop.run_sync(agent.ask(prompt), timeout=30)
            if turn.status != "completed" or turn.text != f'You said: "{prompt}"':
                failures += 1
            server.clear()
            if i == WARMUP:
                start = _sample(i, loop)
        seconds = time.perf_counter() - t0
        end = _sample(turns, loop)
        loop.run_sync(agent.session.aclose(), timeout=10)
    time.sleep(0.05)  # let the server thread finish closing its side
    after = _sample(turns, loop)
    if own_loop:
        loop.call_soon(loop.loop.stop)
        loop.thread.join(2)
    assert start is not None, f"need more than {WARMUP} turns"
    return SoakResult(transport, turns, seconds, start, end, after, failures)


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
