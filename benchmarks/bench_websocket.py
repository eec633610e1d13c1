"""Responses WebSocket vs HTTP, side by side in one run against the scripted server.

1. Time to first token of the first turn over WebSocket, with and without prewarm
   (``generate: false`` sent when the session starts), with a fixed per-connection handshake
   delay standing in for TCP + TLS + upgrade on a real network.
2. Request bytes sent per turn over a 20-turn conversation in which every turn makes one tool
   call: WebSocket incremental requests (``previous_response_id`` + new items) vs HTTP (the full
   history every time). Bytes are the JSON request payloads (frames / POST bodies) before
   permessage-deflate or HTTP compression; handshakes and HTTP headers are not counted.

Run: ``python -m benchmarks.bench_websocket`` (``--handshake-ms 150 --runs 5 --turns 20``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from jupyter_agent import events as ev
from jupyter_agent.agent import Agent
from jupyter_agent.testing import (
    Reply,
    ScriptedServer,
    WsAccept,
    completed_event,
    created_event,
    function_call_events,
    last_user_text,
    text_events,
    usage,
)

MODEL = "gpt-5-scripted"
FACT = "Row {n}: the measured value is {v} units, within tolerance; calibrated on the reference rig. "


def lookup(key: str) -> str:
    """Look a key up in the lab notebook."""
    n = sum(map(ord, key)) % 97
    return "".join(FACT.format(n=n + i, v=(n * 7 + i) % 100) for i in range(4))


def responder(req: Any) -> Reply:
    """Warm-up -> empty response; a user message -> a tool call; a tool output -> the answer."""
    body = req.json if isinstance(req.json, dict) else {}
    items = body.get("input") or []
    events: list[Any]
    if body.get("generate") is False:
        events = [created_event("warm-1"), completed_event("warm-1", output=[], usage_obj=usage(0, 0))]
        return Reply(events=events)
    last = items[-1] if items else {}
    if last.get("type") == "function_call_output":
        answer = "According to the notebook: " + str(last.get("output", ""))[:160] + " That settles it."
        events = list(text_events(answer, phase="final_answer", chunks=8))
        return Reply(events=events)
    key = last_user_text(body)[:24] or "default"
    events = list(function_call_events("lookup", json.dumps({"key": key.replace('"', "")})))
    return Reply(events=events)


def make_agent(server: ScriptedServer, transport: str, prewarm: bool) -> Agent:
    return Agent(
        model=MODEL,
        base_url=server.base_url,
        provider="openai",
        api_key="sk-bench",
        transport=transport,
        prewarm=prewarm,
        web_search="disabled",
        tools=[lookup],
    )


async def first_token_ms(server: ScriptedServer, *, prewarm: bool) -> float:
    agent = make_agent(server, "websocket", prewarm)
    if prewarm:  # the session started earlier (the user is still typing): let the warm-up finish
        deadline = time.monotonic() + 5
        while getattr(agent.session, "prewarm_response_id", None) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
    first: list[float] = []

    def sink(event: ev.AgentEvent) -> None:
        if isinstance(event, ev.TextDelta) and not first:
            first.append(time.perf_counter())

    t0 = time.perf_counter()
    turn = await agent.ask("What does the notebook say about sample A?", sink=sink)
    assert turn.status == "completed", turn.error
    agent.reset()
    return (first[0] - t0) * 1000.0


def request_bytes(server: ScriptedServer) -> int:
    ws = sum(len(m.encode() if isinstance(m, str) else m) for c in server.ws_connections for m in c.messages)
    http = sum(len(r.body) for r in server.find_requests("POST", "/responses"))
    return ws + http


async def bytes_per_turn(server: ScriptedServer, transport: str, turns: int) -> list[int]:
    server.clear()
    agent = make_agent(server, transport, prewarm=False)
    out = []
    for i in range(turns):
        before = request_bytes(server)
        turn = await agent.ask(f"Question {i + 1}: what is recorded for sample {chr(65 + i % 26)}{i}?")
        assert turn.status == "completed", turn.error
        out.append(request_bytes(server) - before)
    handshakes = len(server.ws_connections)
    agent.reset()
    if transport == "websocket":
        assert handshakes == 1, f"expected one connection, saw {handshakes}"
    return out


async def main(handshake_ms: float, runs: int, turns: int) -> None:
    with ScriptedServer(responder=responder) as server:
        server.ws_accept = WsAccept(delay=handshake_ms / 1000.0)
        cold = [await first_token_ms(server, prewarm=False) for _ in range(runs)]
        warm = [await first_token_ms(server, prewarm=True) for _ in range(runs)]
        server.ws_accept = WsAccept()
        ws_bytes = await bytes_per_turn(server, "websocket", turns)
        http_bytes = await bytes_per_turn(server, "sse", turns)

    print(f"WebSocket first-turn time to first token, handshake delay {handshake_ms:.0f} ms, median of {runs}:")
    print(f"  {'without prewarm':<18}{statistics.median(cold):8.1f} ms   (min {min(cold):.1f}, max {max(cold):.1f})")
    print(f"  {'with prewarm':<18}{statistics.median(warm):8.1f} ms   (min {min(warm):.1f}, max {max(warm):.1f})")
    print(f"  saved             {statistics.median(cold) - statistics.median(warm):8.1f} ms")
    print()
    print(f"Request bytes per turn, {turns} turns, 1 tool call each (2 requests per turn):")
    print(f"  {'turn':>6}{'WebSocket':>12}{'HTTP':>12}{'ratio':>8}")
    for i in sorted({0, 1, turns // 2 - 1, turns - 1}):
        w, h = ws_bytes[i], http_bytes[i]
        print(f"  {i + 1:>6}{w:>12,}{h:>12,}{h / w:>7.1f}x")
    tw, th = sum(ws_bytes), sum(http_bytes)
    print(f"  {'total':>6}{tw:>12,}{th:>12,}{th / tw:>7.1f}x")
    print(f"  {'mean':>6}{tw // turns:>12,}{th // turns:>12,}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handshake-ms", type=float, default=150.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.handshake_ms, args.runs, args.turns))
