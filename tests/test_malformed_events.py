"""Malformed events never crash anything: mutated recordings through the real SSE path.

Every event of two recordings gets, in turn, each field replaced by a value of the wrong type
(null, number, string, list, object). The turn must end (completed, or failed with a protocol or
stream error), never with an internal error, and the history must stay valid JSON input.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from jupyter_agent import events as ev
from jupyter_agent.protocol.errors import ProtocolError
from jupyter_agent.protocol.responses import parse_event
from jupyter_agent.testing import Raw, Reply, ScriptedServer
from jupyter_agent.transport.sse import SseDecoder
from tests.sse_support import of_type, sse_payloads

STREAMS = (
    "text-basic-gpt-4.1-nano",
    "web-search-queries-citations-gpt-5.2",
    "function-call-gpt-4.1",
    "phase-commentary-function-call-gpt-5.5",
    "reasoning-encrypted-function-call-gpt-5",
    "error-insufficient-quota-gpt-5",
)
WRONG = [None, 7, "x", [], {}, {"type": 3}, [{"type": "output_text"}]]


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            out.append(prefix + (i,))
            out += _paths(v, prefix + (i,))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


def _delete(obj: Any, path: tuple[Any, ...]) -> None:
    for key in path[:-1]:
        obj = obj[key]
    del obj[path[-1]]


@functools.cache
def _variants(root: Path, name: str, count: int) -> list[list[dict[str, Any]]]:
    events = sse_payloads(root / f"{name}.sse")
    rng = random.Random(name)
    out = []
    for _ in range(count):
        mutated = json.loads(json.dumps(events))
        for _ in range(3):
            i = rng.randrange(len(mutated))
            paths = [p for p in _paths(mutated[i]) if p != ("type",)]
            if paths:
                path = rng.choice(paths)
                if rng.random() < 0.25:
                    _delete(mutated[i], path)
                else:
                    _set(mutated[i], path, rng.choice(WRONG))
        out.append(mutated)
    return out


CASES = [(n, i) for n in STREAMS for i in range(15)]


@pytest.mark.parametrize(("name", "index"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
async def test_mutated_stream_never_crashes(
    server: ScriptedServer, make_agent: Any, recorded_streams: Path, name: str, index: int
) -> None:
    await _never_crashes(server, make_agent, _variants(recorded_streams, name, 15)[index])


async def _never_crashes(server: ScriptedServer, make_agent: Any, events: list[dict[str, Any]]) -> None:
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    server.add_response(Reply(events=[Raw(body)]))
    server.add_response(Reply(events=[Raw(body)]))  # a tool follow-up, if the mutation kept the call

    def get_current_weather(location: str, unit: str) -> str:
        return "sunny"

    def get_capital(country: str) -> str:
        return "Potato City"

    def final_result(result: int) -> str:
        return "ok"

    agent = make_agent(tools=[get_current_weather, get_capital, final_result], max_tool_rounds=1)
    turn = await agent.ask("hi")
    assert turn.status in ("completed", "failed")
    assert isinstance(turn.events[-1], ev.TurnDone)
    assert not any(e.message.startswith("Internal error") for e in of_type(turn.events, ev.Error)), turn.error
    json.dumps(agent.history)  # still serialisable as request input
    assert agent.history[0]["role"] == "user"


@functools.cache
def _reordered(root: Path, name: str, count: int) -> list[list[dict[str, Any]]]:
    events = sse_payloads(root / f"{name}.sse")
    rng = random.Random("order-" + name)
    out = []
    for _ in range(count):
        mutated = list(events)
        op = rng.choice(("shuffle", "duplicate", "drop"))
        if op == "shuffle":
            rng.shuffle(mutated)
        elif op == "duplicate":
            mutated = [e for e in mutated for _ in range(rng.choice((1, 2)))]
        else:
            mutated = [e for e in mutated if rng.random() > 0.3]
        out.append(mutated)
    return out


ORDER_CASES = [(n, i) for n in STREAMS for i in range(6)]


@pytest.mark.parametrize(("name", "index"), ORDER_CASES, ids=[f"order-{n}-{i}" for n, i in ORDER_CASES])
async def test_reordered_stream_never_crashes(
    server: ScriptedServer, make_agent: Any, recorded_streams: Path, name: str, index: int
) -> None:
    await _never_crashes(server, make_agent, _reordered(recorded_streams, name, 6)[index])


def test_decoder_and_parser_survive_random_bytes(recorded_streams: Path) -> None:
    raw = (recorded_streams / "web-search-gpt-5.sse").read_bytes()
    rng = random.Random(7)
    for _ in range(200):
        data = bytearray(raw[: rng.randrange(1, len(raw))])
        for _ in range(rng.randrange(1, 40)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        decoder = SseDecoder()
        payloads: list[bytes] = []
        i = 0
        while i < len(data):
            step = rng.randrange(1, 4096)
            payloads += decoder.feed(bytes(data[i : i + step]))
            i += step
        payloads += decoder.flush()
        for payload in payloads:
            try:
                parse_event(payload)
            except Exception as exc:  # noqa: BLE001
                assert isinstance(exc, ProtocolError), repr(exc)  # only a malformed completion may raise
