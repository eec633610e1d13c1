"""SSE decode + typed parse throughput, our client vs openai-python, and client overhead per event.

1. Throughput (events/s). One 100,000-event Responses stream (created, message added, 99,994
   ``response.output_text.delta``, done events, completed), served as the same bytes in 16 KiB
   chunks to both clients by an in-process ``httpx.MockTransport`` (no socket, so only client
   work is timed):
     - openai-python: ``AsyncOpenAI(...).responses.create(stream=True)``, iterating its typed events;
     - ours, transport: ``SseTransport.stream`` (SSE decode, pydantic validation of every event
       into its typed model, stream rules) -- the path every turn takes;
     - ours, agent: the same bytes from the scripted server over a real 127.0.0.1 socket through
       ``Agent.ask`` (session, retries, agent events to a subscriber), for the whole stack.
   Rounds alternate the clients; the best round of each is reported (the machine is shared).
2. Client overhead at 5,000 events/s: a paced server (a child process, so it does not compete
   for the client's GIL) stamps each delta with ``perf_counter()`` just before writing it; a subscriber on the agent thread takes ``perf_counter()`` when the
   matching ``TextDelta`` agent event arrives. So the figure is server write -> agent event,
   including the loopback TCP hop (an upper bound of the client's own overhead).

    .venv/bin/python -m benchmarks.bench_throughput [--events 100000] [--rounds 3] [--rate 5000]
        [--seconds 4] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from jupyter_agent import events as ev
from jupyter_agent.agent import Agent
from jupyter_agent.loop import AgentLoop
from jupyter_agent.testing import Raw, Reply, ScriptedServer
from jupyter_agent.transport.sse import SseTransport

CHUNK = 16 * 1024
MODEL = "gpt-5-bench"


# --------------------------------------------------------------------------- the stream


def stream_events(n: int, delta: str = "tok ") -> list[dict[str, Any]]:
    """``n`` events of one streamed answer, shaped as the Responses API sends them."""
    mid, rid = "msg_bench", "resp_bench"
    n_deltas = n - 6
    text = delta * n_deltas
    item = {
        "type": "message",
        "id": mid,
        "status": "in_progress",
        "role": "assistant",
        "content": [],
        "phase": "final_answer",
    }
    done = {**item, "status": "completed", "content": [{"type": "output_text", "text": text, "annotations": []}]}
    resp = {"id": rid, "object": "response", "created_at": 1, "status": "in_progress", "model": MODEL, "output": []}
    out: list[dict[str, Any]] = [
        {"type": "response.created", "response": resp},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
    ]
    out += [
        {
            "type": "response.output_text.delta",
            "item_id": mid,
            "output_index": 0,
            "content_index": 0,
            "delta": delta,
            "logprobs": [],
        }
        for _ in range(n_deltas)
    ]
    out += [
        {
            "type": "response.output_text.done",
            "item_id": mid,
            "output_index": 0,
            "content_index": 0,
            "text": text,
            "logprobs": [],
        },
        {
            "type": "response.content_part.done",
            "item_id": mid,
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "output_text", "text": text, "annotations": []},
        },
        {"type": "response.output_item.done", "output_index": 0, "item": done},
        {
            "type": "response.completed",
            "response": {
                **resp,
                "status": "completed",
                "output": [done],
                "usage": {
                    "input_tokens": 10,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens": n_deltas,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": 10 + n_deltas,
                },
            },
        },
    ]
    for i, e in enumerate(out):
        e["sequence_number"] = i
    return out


def encode(events: list[dict[str, Any]]) -> bytes:
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n"
        for e in events
    )


def chunked(body: bytes, size: int = CHUNK) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def mock_transport(chunks: list[bytes]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for c in chunks:
                yield c

        return httpx.Response(200, headers={"content-type": "text/event-stream", "openai-model": MODEL}, content=body())

    return httpx.MockTransport(handler)


# --------------------------------------------------------------------------- clients


async def run_openai(chunks: list[bytes]) -> tuple[int, float, float]:
    import openai

    async with httpx.AsyncClient(transport=mock_transport(chunks)) as http:
        client = openai.AsyncOpenAI(
            api_key="sk-bench-not-a-key", base_url="http://bench.invalid/v1", http_client=http, max_retries=0
        )
        t0, c0 = time.perf_counter(), time.thread_time()
        stream = await client.responses.create(model=MODEL, input="hi", stream=True)
        n = 0
        async for _event in stream:
            n += 1
        return n, time.perf_counter() - t0, time.thread_time() - c0


async def run_ours(chunks: list[bytes]) -> tuple[int, float, float]:
    async with httpx.AsyncClient(transport=mock_transport(chunks)) as http:
        transport = SseTransport(http, "http://bench.invalid/v1/responses")
        t0, c0 = time.perf_counter(), time.thread_time()
        n = 0
        async for item in transport.stream({"model": MODEL, "input": []}, {}, idle_timeout=60.0):
            if hasattr(item, "type"):  # typed wire events (not the ResponseHeaders record)
                n += 1
        return n, time.perf_counter() - t0, time.thread_time() - c0


def run_agent(chunks: list[bytes], loop: AgentLoop, expect_deltas: int) -> tuple[int, float, float | None]:
    with ScriptedServer() as server:
        server.add_response(Reply(headers={"openai-model": MODEL}, events=[Raw(c) for c in chunks]))
        agent = Agent(
            model=MODEL,
            base_url=server.base_url,
            api_key="sk-bench-not-a-key",
            provider="compatible",
            transport="sse",
            loop=loop,
            prewarm=False,
        )
        count = [0]

        def on_event(e: ev.AgentEvent) -> None:
            count[0] += 1

        agent.subscribe(on_event)
        t0 = time.perf_counter()
        turn = loop.run_sync(agent.ask("bench"), timeout=300)
        took = time.perf_counter() - t0
        deltas = sum(1 for e in turn.events if isinstance(e, ev.TextDelta))
        assert turn.status == "completed" and deltas == expect_deltas, (turn.status, turn.error, deltas)
        loop.run_sync(agent.session.aclose())
        return count[0], took, None  # work spans the agent and server threads: wall time only


# --------------------------------------------------------------------------- overhead


class PacedServer:
    """A minimal HTTP/1.1 SSE server that writes stamped deltas at a fixed rate.

    Run in a child process (``--serve-paced``) so it does not share the client's GIL;
    ``perf_counter`` is CLOCK_MONOTONIC, the same clock in both processes.
    """

    def __init__(self, rate: int, seconds: float) -> None:
        self.rate, self.n = rate, int(rate * seconds)

    def serve_forever(self) -> None:
        async def main() -> None:
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            print(server.sockets[0].getsockname()[1], flush=True)
            async with server:
                await server.serve_forever()

        asyncio.run(main())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")

        def send(e: dict[str, Any]) -> None:
            data = (
                b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n"
            )
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))

        mid = "msg_paced"
        send({"type": "response.created", "response": {"id": "resp_paced", "status": "in_progress", "output": []}})
        send(
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {"type": "message", "id": mid, "role": "assistant", "content": []},
            }
        )
        start = time.perf_counter()
        for i in range(self.n):
            wait = start + i / self.rate - time.perf_counter()
            if wait > 0:
                await writer.drain()
                await asyncio.sleep(wait)
            send(
                {
                    "type": "response.output_text.delta",
                    "item_id": mid,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": f"{time.perf_counter():.9f} ",
                }
            )
            await writer.drain()
        send({"type": "response.completed", "response": {"id": "resp_paced", "status": "completed", "output": []}})
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()


def run_overhead(loop: AgentLoop, rate: int, seconds: float) -> tuple[list[float], int]:
    import subprocess

    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_throughput",
            "--serve-paced",
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    port = int(child.stdout.readline())
    agent = Agent(
        model=MODEL,
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="sk-bench-not-a-key",
        provider="compatible",
        transport="sse",
        loop=loop,
        prewarm=False,
    )
    lat: list[float] = []

    def on_event(e: ev.AgentEvent) -> None:
        if isinstance(e, ev.TextDelta):
            now = time.perf_counter()
            for stamp in e.delta.split():
                lat.append(now - float(stamp))

    agent.subscribe(on_event)
    turn = loop.run_sync(agent.ask("paced"), timeout=seconds * 4 + 30)
    loop.run_sync(agent.session.aclose())
    child.terminate()
    child.wait(5)
    assert turn.status == "completed", turn.error
    return lat, int(rate * seconds)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rate", type=int, default=5000)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--profile", action="store_true", help="pyinstrument profile of our transport path, then exit")
    p.add_argument("--no-openai", action="store_true")
    p.add_argument("--serve-paced", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_paced:
        PacedServer(args.rate, args.seconds).serve_forever()
        return 0

    events = stream_events(args.events)
    body = encode(events)
    chunks = chunked(body)
    n_deltas = sum(1 for e in events if e["type"] == "response.output_text.delta")
    print(
        f"stream: {len(events):,} events, {len(body) / 1e6:.1f} MB in {len(chunks):,} chunks of {CHUNK // 1024} KiB; same bytes for every client"
    )

    if args.profile:
        from pyinstrument import Profiler

        with Profiler() as prof:
            asyncio.run(run_ours(chunks))
        prof.print(show_all=False)
        return 0

    have_openai = not args.no_openai
    if have_openai:
        try:
            import openai

            openai_version = openai.__version__
        except ImportError:
            have_openai = False
            print("openai-python not installed (pip install -e '.[bench]'): skipping the comparison")
    loop = AgentLoop(name="bench-throughput")
    best: dict[str, float] = {}
    best_cpu: dict[str, float] = {}
    ratios: list[float] = []
    ours_name, theirs_name = "ours (SseTransport)", f"openai-python {openai_version}" if have_openai else ""
    for r in range(args.rounds):
        runs = [(ours_name, lambda: asyncio.run(run_ours(chunks)))]
        if have_openai:
            runs.append((theirs_name, lambda: asyncio.run(run_openai(chunks))))
        runs.append(("ours (Agent.ask, real socket)", lambda: run_agent(chunks, loop, n_deltas)))
        cpu_round: dict[str, float] = {}
        for name, fn in runs:
            n, took, cpu = fn()
            best[name] = min(best.get(name, float("inf")), took)
            if cpu is not None:
                cpu_round[name] = cpu
                best_cpu[name] = min(best_cpu.get(name, float("inf")), cpu)
            cpu_txt = f", CPU {cpu:6.3f} s = {args.events / cpu:>9,.0f} /s" if cpu else ""
            print(
                f"  round {r + 1}: {name:34s} {n:>8,} items, wall {took:6.3f} s = {args.events / took:>9,.0f} /s{cpu_txt}"
            )
        if have_openai:
            ratios.append(cpu_round[theirs_name] / cpu_round[ours_name])
    print(
        f"throughput (best of {args.rounds} rounds, {args.events:,}-event stream; CPU = this thread's CPU time, "
        "robust on a shared machine):"
    )
    for name, took in best.items():
        cpu_txt = f"   {args.events / best_cpu[name]:>10,.0f} events/s of CPU" if name in best_cpu else ""
        print(f"  {name:34s} {args.events / took:>10,.0f} events/s wall{cpu_txt}")
    if have_openai:
        print(
            f"  ours/openai-python, transport, CPU per event: {statistics.median(ratios):.1f}x median of rounds "
            f"({', '.join(f'{x:.1f}' for x in ratios)})   (target >= 20x)"
        )
        print(f"  ours/openai-python, transport, best wall: {best[theirs_name] / best[ours_name]:.1f}x")
        print(
            f"  ours/openai-python, whole agent over a socket vs openai-python's parse alone, best wall: "
            f"{best[theirs_name] / best['ours (Agent.ask, real socket)']:.1f}x"
        )

    lat, sent = run_overhead(loop, args.rate, args.seconds)
    lat_ms = [x * 1000 for x in lat]
    print(
        f"client overhead at {args.rate:,} events/s ({sent:,} deltas over {args.seconds:g} s; server write -> agent event, incl. loopback TCP):"
    )
    print(
        f"  received {len(lat):,}/{sent:,}   p50 {pct(lat_ms, 0.5):.3f} ms   p99 {pct(lat_ms, 0.99):.3f} ms   "
        f"max {max(lat_ms):.3f} ms   mean {statistics.fmean(lat_ms):.3f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
