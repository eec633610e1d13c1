"""HTTP+SSE client throughput: the decoder + typed parsing, and the full path over a socket.

1. In memory: every recorded stream (``../shared/fixtures/recorded-streams``) decoded by
   ``SseDecoder`` and validated by ``parse_event``, fed in 64-byte, 1 KiB and 16 KiB chunks; plus one
   event carrying a 1 MiB ``encrypted_content`` fed in 4 KiB chunks (long-line behaviour).
2. Over a 127.0.0.1 socket (scripted server): a synthetic stream of N text deltas through
   ``SseTransport`` alone, and through ``Agent(transport="sse").ask`` (events to ``TurnDone``).

Run: ``python -m benchmarks.bench_sse`` (``--deltas 20000 --runs 3``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import httpx

from jupyter_agent import events as ev
from jupyter_agent.agent import Agent
from jupyter_agent.protocol.responses import parse_event
from jupyter_agent.testing import Reply, ScriptedServer, text_events
from jupyter_agent.testing.fixtures import RECORDED_STREAMS, shared_fixture
from jupyter_agent.transport.sse import SseDecoder, SseTransport

#: The recorded streams live outside the repository (``../shared/fixtures`` or ``$JUPYTER_AGENT_FIXTURES``).
FIXTURES, FIXTURES_MISSING = shared_fixture(RECORDED_STREAMS, Path(__file__).resolve().parents[1])


def decode_all(data: bytes, chunk: int) -> int:
    decoder = SseDecoder()
    n = 0
    for i in range(0, len(data), chunk):
        for payload in decoder.feed(data[i : i + chunk]):
            if parse_event(payload) is not None:
                n += 1
    for payload in decoder.flush():
        if parse_event(payload) is not None:
            n += 1
    return n


def bench_memory(runs: int) -> None:
    if FIXTURES is None:
        print(f"in-memory: skipped, {FIXTURES_MISSING}")
        return
    bodies = [p.read_bytes() for p in sorted(FIXTURES.glob("*.sse"))]
    total = sum(len(b) for b in bodies)
    print(f"in-memory: {len(bodies)} recorded streams, {total / 1024:.0f} KiB")
    for chunk in (64, 1024, 16384):
        times = []
        events = 0
        for _ in range(runs):
            t0 = time.perf_counter()
            events = sum(decode_all(b, chunk) for b in bodies)
            times.append(time.perf_counter() - t0)
        best = min(times)
        print(
            f"  chunk {chunk:>5} B: {events} events in {best * 1000:.1f} ms -> {events / best:,.0f} events/s, {total / best / 1e6:.1f} MB/s"
        )
    big = {
        "type": "response.output_item.done",
        "item": {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "A" * (1 << 20)},
    }
    data = b"data: " + json.dumps(big).encode() + b"\n\n"
    t0 = time.perf_counter()
    assert decode_all(data, 4096) == 1
    print(f"  one 1 MiB event in 4 KiB chunks: {(time.perf_counter() - t0) * 1000:.1f} ms")


async def bench_socket(deltas: int, runs: int) -> None:
    events = text_events("x" * deltas, chunks=deltas, phase="final_answer")
    with ScriptedServer() as server:
        transport_times = []
        for _ in range(runs):
            server.add_response(Reply(events=events))
            async with httpx.AsyncClient() as client:
                t = SseTransport(client, server.base_url + "/responses")
                t0 = time.perf_counter()
                n = 0
                async for _event in t.stream({"model": "m"}, {}, idle_timeout=30):
                    n += 1
                transport_times.append(time.perf_counter() - t0)
        best = min(transport_times)
        print(f"socket, SseTransport: {n} events in {best * 1000:.0f} ms -> {n / best:,.0f} events/s (best of {runs})")
        agent = Agent(
            model="m",
            base_url=server.base_url,
            api_key="sk-bench",
            transport="sse",
            prewarm=False,
            web_search="disabled",
        )
        agent_times = []
        for _ in range(runs):
            server.add_response(Reply(events=events))
            t0 = time.perf_counter()
            turn = await agent.ask("go")
            agent_times.append(time.perf_counter() - t0)
            assert len(turn.text) == deltas
            agent.reset()  # keep the next request small (new conversation)
        best = min(agent_times)
        print(
            f"socket, Agent.ask: {deltas} text deltas to TurnDone in {best * 1000:.0f} ms -> {deltas / best:,.0f} deltas/s (best of {runs})"
        )
        await first_delta(server, agent, runs=max(5, runs))


async def first_delta(server: ScriptedServer, agent: Agent, runs: int) -> None:
    """Time from ``ask`` to the first TextDelta: first turn (new HTTP client) and later turns."""
    cold, warm = [], []
    for i in range(runs + 1):
        server.add_response(Reply(events=text_events("Hello there.", chunks=3)))
        seen: list[float] = []

        def on_event(e: ev.AgentEvent, seen: list[float] = seen) -> None:
            if not seen and isinstance(e, ev.TextDelta):
                seen.append(time.perf_counter())

        t0 = time.perf_counter()
        await agent.ask(f"q{i}", sink=on_event)
        (cold if i == 0 else warm).append((seen[0] - t0) * 1000)
    print(
        f"socket, Agent.ask: first text delta after {cold[0]:.1f} ms on a new session, {statistics.median(warm):.1f} ms on later turns (median of {runs})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bench_memory(args.runs)
    asyncio.run(bench_socket(args.deltas, args.runs))


if __name__ == "__main__":
    main()
