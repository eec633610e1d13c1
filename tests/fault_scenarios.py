"""The fault catalogue: scripted-server faults, each run as one turn through ``Agent.ask``.

Used by ``tests/test_faults_*.py`` (one test per scenario) and by ``benchmarks/fault_matrix.py``
(prints the matrix). A scenario queues replies on a `ScriptedServer`, runs one turn, and the
runner checks the invariants every fault must keep:

* the turn ends within the scenario's time bound with the expected status (and error text/code);
* the user's message is in history exactly once, the answer (if any) exactly once, and every
  function call in history has an output;
* no duplicated output: after the last ``Retry`` the text deltas add up to the answer exactly,
  one ``TurnDone``, at most one ``Error``;
* the calling loop stays responsive while the turn runs (max loop lag);
* the next turn on the same agent works and sends a history the server accepts;
* a failed turn's error is plain language: no Python repr or library message (issue 15 item 5);
* where memory is the point (``max_peak_rss``), the process's peak RSS grows by less than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import re
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_agent import events as ev
from jupyter_agent.agent import Agent, Turn
from jupyter_agent.loop import AgentLoop
from jupyter_agent.testing import (
    Hang,
    Raw,
    Reply,
    ScriptedServer,
    WsBinary,
    WsClose,
    WsConn,
    completed_event,
    error_reply,
    failed_events,
    failed_reply,
    incomplete_events,
    incomplete_reply,
    text_events,
    text_reply,
)
from jupyter_agent.testing.soak import peak_rss_bytes, reset_peak_rss, rss_bytes

ANSWER = "The answer is 42."
WARM_ANSWER = "Warmed up."
NEXT_ANSWER = "Next turn works."
#: Loop lag above this while a turn runs means the caller (the kernel) was blocked (generous: the
#: test machine is shared; a real block lasts as long as the fault, i.e. seconds).
MAX_CALLER_LAG = 0.5


@dataclass
class Scenario:
    """One fault: how to script the server, and what the turn must end with."""

    name: str
    setup: Callable[[ScriptedServer], None]
    status: str = "completed"
    text: str | None = ANSWER
    error: str | None = None
    code: str | None = None
    requests: int | None = None
    max_seconds: float = 5.0
    agent: dict[str, Any] = field(default_factory=dict)
    #: The server is down during the turn (connection refused); it comes up for the next turn.
    refused: bool = False
    #: The failed turn must have published a rate-limit snapshot (usage-limit errors).
    rate_limits: bool = False
    #: Run one ordinary turn first (answered by the first scripted reply) so the fault hits turn 2.
    warmup: bool = False
    #: A ``Notice`` the turn must show (e.g. the WebSocket -> HTTP fallback).
    notice: str | None = None
    #: The turn's last WebSocket request must be a full create (no ``previous_response_id``).
    full_request: bool = False
    #: Peak RSS may grow by at most this many bytes during the turn (memory faults).
    max_peak_rss: int | None = None
    #: A ``Notice`` containing this text must be shown (e.g. a malformed text event).
    notice_contains: str | None = None
    #: Stale events the turn's telemetry must count as discarded (WebSocket).
    stale_events: int | None = None


@dataclass
class Outcome:
    """What running a scenario produced."""

    scenario: str
    status: str
    seconds: float
    requests: int
    error: str | None
    code: str | None
    retries: int
    caller_lag: float
    next_turn: str
    problems: list[str]
    #: Growth of the process's peak RSS during the turn, in bytes (memory faults only).
    peak_rss: int | None = None
    #: Every request the client sent: ("http", POST body) and ("ws", response.create frame).
    bodies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _answer(**kw: Any) -> Reply:
    return text_reply(ANSWER, phase="final_answer", chunks=kw.pop("chunks", 4), **kw)


def _queue(*replies: Reply) -> Callable[[ScriptedServer], None]:
    def setup(server: ScriptedServer) -> None:
        server.add_responses(*replies)

    return setup


def _without_completed() -> Reply:
    evs = [e for e in text_events(ANSWER, phase="final_answer") if e["type"] != "response.completed"]
    return Reply(events=list(evs))


def _with_garbage() -> Reply:
    evs: list[Any] = list(text_events(ANSWER, phase="final_answer", chunks=4))
    garbage = [
        Raw(b"data: {not json at all\n\n"),
        Raw(b'data: {"type": "response.output_text.delta", "delta": 7}\n\n'),  # wrong field type
        Raw(b'data: ["a", "list"]\n\n'),
        Raw(b"data: \xff\xfe\xfd\n\n"),  # not UTF-8
        Raw(b'data: {"no_type": true}\n\n'),
        Raw(b"retry: 10\nid: 5\n: a comment\n\n"),
    ]
    for i, g in enumerate(garbage):
        evs.insert(2 + 2 * i, g)
    return Reply(events=evs)


def _with_unknown() -> Reply:
    evs: list[Any] = list(text_events(ANSWER, phase="final_answer", chunks=4))
    mystery = {"type": "mystery_tool_call", "id": "mt_1", "status": "in_progress", "payload": {"x": [1, 2]}}
    extra = [
        {"type": "response.new_tool_event", "sequence_number": 99, "whatever": {"a": 1}},
        {"type": "response.output_item.added", "output_index": 1, "item": mystery},
        {"type": "response.output_item.done", "output_index": 1, "item": {**mystery, "status": "completed"}},
        {"type": "codex.response.metadata", "metadata": {"k": "v"}},
    ]
    for i, e in enumerate(extra):
        evs.insert(2 + i, e)
    return Reply(events=evs)


def _huge(size: int) -> Reply:
    text = "x" * size
    return Reply(events=list(text_events(text, phase="final_answer", chunks=1)))


HUGE_SIZE = 10 * 1024 * 1024
MIB = 1024 * 1024
#: Peak-RSS growth allowed for the memory faults: the 32 MiB event cap plus the joins and parsing
#: around it (before issue 15 the gzip bomb alone raised peak RSS by ~2.1 GB).
MEMORY_FAULT_RSS = 160 * MIB
_OPEN_DELTA = (
    b'data: {"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"'
)


@functools.cache
def _gzip_bomb() -> bytes:
    """~1 MiB of gzip that inflates to 1 GiB: one SSE line that never ends (issue 15 item 2)."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"x" * MIB
    out = [comp.compress(_OPEN_DELTA)] + [comp.compress(block) for _ in range(1024)] + [comp.flush()]
    return b"".join(out)


def _gzip_bomb_reply() -> Reply:
    bomb = _gzip_bomb()
    return Reply(
        headers={"content-encoding": "gzip"},
        events=[Raw(bomb[i : i + 64 * 1024]) for i in range(0, len(bomb), 64 * 1024)],
    )


def _endless_line_reply() -> Reply:
    """256 MiB of one uncompressed line (the same 1 MiB object sent again and again)."""
    block = b"x" * MIB
    return Reply(events=[Raw(_OPEN_DELTA)] + [Raw(block) for _ in range(256)])


def _corrupt_gzip_reply() -> Reply:
    """A gzip header, then a deflate block of the reserved type: ``invalid block type``."""
    return Reply(
        headers={"content-encoding": "gzip"}, events=[Raw(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff\xff")]
    )


def _illegal_chunk_reply() -> Reply:
    """``Transfer-Encoding: chunked`` with a chunk header that is not hex (h11: ``illegal chunk header``)."""
    return Reply(chunked=False, headers={"transfer-encoding": "chunked"}, events=[Raw(b"zz\r\nhello\r\n")])


SURROGATE_TEXT = "Smile \ud83d!"  # half of a UTF-16 pair, as a JSON escape on the wire


def _surrogate_reply() -> Reply:
    """Text whose JSON carries a lone surrogate escape (``"\\ud83d"``), in the deltas and the done item."""
    events = text_events(SURROGATE_TEXT, phase="final_answer", chunks=2)
    return Reply(events=[Raw(b"data: " + json.dumps(e).encode() + b"\n\n") for e in events])


FAILED_CODES_FATAL = {
    "context_length_exceeded": "context window",
    "insufficient_quota": "Quota exceeded",
    "usage_not_included": "upgrade to Plus",
    "invalid_prompt": "prompt was flagged",
    "server_is_overloaded": "at capacity",
    "slow_down": "at capacity",
}


def _usage_limit_reply() -> Reply:
    return error_reply(
        429,
        "The usage limit has been reached",
        type="usage_limit_reached",
        plan_type="pro",
        resets_at=int(time.time()) + 3600,
        headers={"x-codex-primary-used-percent": "100.0", "x-codex-primary-window-minutes": "300"},
    )


def http_scenarios() -> list[Scenario]:
    """The HTTP + SSE fault matrix of issue 8."""
    fast = {"max_retries": 2}
    out: list[Scenario] = [
        Scenario(
            "connection refused",
            _queue(),
            status="failed",
            text=None,
            error="connection to",
            requests=0,
            agent=fast,
            refused=True,
        ),
        Scenario(
            "reset before first byte, then ok", _queue(Reply(fault="reset_before_first_byte"), _answer()), requests=2
        ),
        Scenario(
            "close before first byte, then ok", _queue(Reply(fault="close_before_first_byte"), _answer()), requests=2
        ),
        Scenario(
            "drop after 3 deltas, then ok",
            _queue(Reply(events=_answer().events, fault=("drop_after", 5)), _answer()),
            requests=2,
        ),
        Scenario("close without response.completed, then ok", _queue(_without_completed(), _answer()), requests=2),
        Scenario(
            "every attempt dropped",
            _queue(*(Reply(events=_answer().events, fault=("drop_after", 4)) for _ in range(3))),
            status="failed",
            text=None,
            error="stream",
            requests=3,
            agent=fast,
        ),
    ]
    for code, needle in FAILED_CODES_FATAL.items():
        message = {
            "invalid_prompt": "Your prompt was flagged.",
            "context_length_exceeded": "Input exceeds the context window.",
        }.get(code, f"{code} happened")
        out.append(
            Scenario(
                f"response.failed {code}",
                _queue(failed_reply(code, message)),
                status="failed",
                text=None,
                error=needle,
                code=code,
                requests=1,
            )
        )
    out += [
        Scenario(
            "response.failed rate_limit_exceeded (try again in 20ms), then ok",
            _queue(failed_reply("rate_limit_exceeded", "Rate limit reached. Please try again in 20ms."), _answer()),
            requests=2,
        ),
        Scenario(
            "response.failed server_error, then ok", _queue(failed_reply("server_error", "boom"), _answer()), requests=2
        ),
        Scenario(
            "response.failed without error, then ok",
            _queue(Reply(events=[{"type": "response.failed", "response": {"id": "r", "status": "failed"}}]), _answer()),
            requests=2,
        ),
        Scenario(
            "response.incomplete",
            _queue(incomplete_reply("max_output_tokens", text="partial")),
            status="failed",
            text=None,
            error="reason: max_output_tokens",
            code="incomplete",
            requests=1,
        ),
        Scenario(
            "HTTP 400",
            _queue(error_reply(400, "Bad field 'foo'")),
            status="failed",
            text=None,
            error="Bad field",
            requests=1,
        ),
        Scenario(
            "HTTP 401",
            _queue(error_reply(401, "no key")),
            status="failed",
            text=None,
            error="401",
            code="unauthorized",
            requests=1,
        ),
        Scenario(
            "HTTP 429 retry-after: 0.05, then ok",
            _queue(error_reply(429, "slow down", type="requests", headers={"retry-after": "0.05"}), _answer()),
            requests=2,
        ),
        Scenario(
            "HTTP 429 retry-after-ms: 30, then ok",
            _queue(error_reply(429, "slow down", type="requests", headers={"retry-after-ms": "30"}), _answer()),
            requests=2,
        ),
        Scenario(
            "HTTP 429 without retry-after, then ok",
            _queue(error_reply(429, "Rate limit reached", type="requests"), _answer()),
            requests=2,
        ),
        Scenario(
            "HTTP 429 retry-after: 3600 (too long to wait)",
            _queue(error_reply(429, "slow down", type="requests", headers={"retry-after": "3600"})),
            status="failed",
            text=None,
            error="retry after 3600s",
            requests=1,
        ),
        Scenario(
            "HTTP 503 retry-after: 3600 (too long to wait)",
            _queue(error_reply(503, "unavailable", type="server_error", headers={"retry-after": "3600"})),
            status="failed",
            text=None,
            error="retry after 3600s",
            requests=1,
        ),
        Scenario(
            "response.failed rate_limit_exceeded (try again in 3600s)",
            _queue(failed_reply("rate_limit_exceeded", "Rate limit reached. Please try again in 3600s.")),
            status="failed",
            text=None,
            error="retry after 3600s",
            requests=1,
        ),
        Scenario(
            "HTTP 429 usage_limit_reached",
            _queue(_usage_limit_reply()),
            status="failed",
            text=None,
            error="usage limit",
            code="usage_limit_reached",
            requests=1,
            rate_limits=True,
        ),
        Scenario("HTTP 500, then ok", _queue(error_reply(500, "internal", type="server_error"), _answer()), requests=2),
        Scenario(
            "HTTP 503, then ok", _queue(error_reply(503, "unavailable", type="server_error"), _answer()), requests=2
        ),
        Scenario(
            "HTTP 503 server_is_overloaded",
            _queue(error_reply(503, "overloaded", type="server_error", code="server_is_overloaded")),
            status="failed",
            text=None,
            error="at capacity",
            code="server_is_overloaded",
            requests=1,
        ),
        Scenario(
            "HTTP 500 every attempt",
            _queue(*(error_reply(500, "internal") for _ in range(3))),
            status="failed",
            text=None,
            error="high demand",
            requests=3,
            agent=fast,
        ),
        Scenario("malformed JSON events", _queue(_with_garbage()), requests=1, notice_contains="could not be read"),
        Scenario("unknown event and item types", _queue(_with_unknown()), requests=1),
        Scenario(
            "server stops sending (idle timeout 0.3 s), then ok",
            _queue(Reply(events=_answer().events, fault=("hang_after", 4)), _answer()),
            requests=2,
            agent={"idle_timeout": 0.3},
        ),
        Scenario(
            "server stops sending on every attempt",
            _queue(*(Reply(events=_answer().events, fault=("hang_after", 3)) for _ in range(2))),
            status="failed",
            text=None,
            error="idle timeout",
            code="idle_timeout",
            requests=2,
            agent={"idle_timeout": 0.3, "max_retries": 1},
        ),
        Scenario(
            "slow server (one byte at a time)",
            _queue(Reply(events=_answer().events, fault="slow", slow_interval=0.0)),
            requests=1,
            max_seconds=20.0,
        ),
        Scenario(
            "huge event (10 MB delta)", _queue(_huge(HUGE_SIZE)), text="x" * HUGE_SIZE, requests=1, max_seconds=20.0
        ),
        # Issue 15: hostile streams.
        Scenario(
            "gzip bomb (1 MiB inflating to 1 GiB, one endless line)",
            _queue(_gzip_bomb_reply()),
            status="failed",
            text=None,
            error="more than this client accepts",
            code="stream_too_large",
            requests=1,
            max_seconds=20.0,
            max_peak_rss=MEMORY_FAULT_RSS,
        ),
        Scenario(
            "endless uncompressed line (256 MiB)",
            _queue(_endless_line_reply()),
            status="failed",
            text=None,
            error="more than this client accepts",
            code="stream_too_large",
            requests=1,
            max_seconds=20.0,
            max_peak_rss=MEMORY_FAULT_RSS,
        ),
        Scenario("corrupt gzip, then ok", _queue(_corrupt_gzip_reply(), _answer()), requests=2),
        Scenario(
            "corrupt gzip on every attempt",
            _queue(_corrupt_gzip_reply(), _corrupt_gzip_reply()),
            status="failed",
            text=None,
            error="compressed reply was corrupt",
            requests=2,
            agent={"max_retries": 1},
        ),
        Scenario(
            "slowloris (one byte every 50 ms, idle timeout 0.5 s per event), then ok",
            _queue(Reply(events=_answer().events, fault="slow", slow_interval=0.05), _answer()),
            requests=2,
            agent={"idle_timeout": 0.5},
        ),
        Scenario(
            "turn deadline (events keep coming, turn_timeout 1 s)",
            _queue(Reply(events=_answer(chunks=20).events, delay=0.2)),
            status="failed",
            text=None,
            error="deadline",
            code="turn_deadline",
            requests=1,
            agent={"idle_timeout": 0.5, "turn_timeout": 1.0},
        ),
        Scenario("illegal chunk header, then ok", _queue(_illegal_chunk_reply(), _answer()), requests=2),
        Scenario(
            "illegal chunk header on every attempt",
            _queue(_illegal_chunk_reply(), _illegal_chunk_reply()),
            status="failed",
            text=None,
            error="not valid HTTP",
            requests=2,
            agent={"max_retries": 1},
        ),
        Scenario(
            "lone surrogate escape in text",
            _queue(_surrogate_reply()),
            text=SURROGATE_TEXT.replace("\ud83d", "\ufffd"),
            requests=1,
        ),
    ]
    return out


def _ws(*requests: list[Any], close: bool = True, status: int = 101) -> WsConn:
    return WsConn(status=status, requests=[list(r) for r in requests], close_after_requests=close)


def _answer_events() -> list[Any]:
    return list(text_events(ANSWER, phase="final_answer", chunks=4))


def _wrapped(status: int, **error: Any) -> dict[str, Any]:
    headers = error.pop("headers", {})
    return {"type": "error", "status": status, "error": error, "headers": headers}


def _ws_queue(*conns: WsConn, http: tuple[Reply, ...] = ()) -> Callable[[ScriptedServer], None]:
    def setup(server: ScriptedServer) -> None:
        server.add_ws_connections(*conns)
        server.add_responses(*http)

    return setup


def _with_late_events(events: list[Any]) -> list[Any]:
    """``events`` followed by late events of the same (finished) response: a delta of its message,
    a second ``response.output_item.done`` and a second ``response.completed`` (issue 15 item 1)."""
    done = next(e for e in events if e["type"] == "response.output_item.done")
    late_delta = {
        "type": "response.output_text.delta",
        "item_id": done["item"]["id"],
        "output_index": 0,
        "content_index": 0,
        "delta": " (late)",
    }
    return [*events, late_delta, json.loads(json.dumps(done)), json.loads(json.dumps(events[-1]))]


def _with_foreign_completed(events: list[Any]) -> list[Any]:
    """A ``response.completed`` of some other response in the middle of this one's stream."""
    foreign = completed_event("resp_someone_else", output=[])
    return [*events[:3], foreign, *events[3:]]


def ws_scenarios() -> list[Scenario]:
    """The Responses WebSocket fault matrix of issue 8 (spec §2.4-2.8)."""
    fast = {"max_retries": 1}
    answer = _answer_events
    cut = lambda n: answer()[:n]  # noqa: E731
    no_completed = [e for e in answer() if e["type"] != "response.completed"]
    garbage: list[Any] = answer()
    for i, g in enumerate(
        [
            Raw(b"{not json"),
            Raw(b'["a list"]'),
            Raw(b'{"type": 5}'),
            Raw(b'{"type": "response.output_text.delta", "delta": 1}'),
        ]
    ):
        garbage.insert(2 + i, g)
    unknown: list[Any] = answer()
    mystery = {"type": "mystery_tool_call", "id": "mt_1", "status": "in_progress"}
    unknown[2:2] = [
        {"type": "response.new_tool_event", "x": {"y": 1}},
        {"type": "response.output_item.added", "output_index": 1, "item": mystery},
        {"type": "response.output_item.done", "output_index": 1, "item": {**mystery, "status": "completed"}},
    ]
    usage_headers = {"x-codex-primary-used-percent": "100.0", "x-codex-primary-window-minutes": "300"}
    warm = list(text_events(WARM_ANSWER, phase="final_answer", response_id="resp_warm"))
    return [
        Scenario(
            "ws: connection refused (then HTTP also down)",
            _queue(),
            status="failed",
            text=None,
            error="connection",
            agent=fast,
            refused=True,
            requests=0,
        ),
        Scenario(
            "ws: close frame mid-stream, then ok",
            _ws_queue(_ws(cut(5) + [WsClose(1011, "going away")]), _ws(answer())),
            requests=2,
        ),
        Scenario(
            "ws: close without response.completed, then ok", _ws_queue(_ws(no_completed), _ws(answer())), requests=2
        ),
        Scenario(
            "ws: binary frame mid-stream, then ok",
            _ws_queue(_ws(cut(4) + [WsBinary(b"\x00\x01\x02")]), _ws(answer())),
            requests=2,
        ),
        Scenario(
            "ws: wrapped error 429 usage_limit_reached",
            _ws_queue(
                _ws(
                    [
                        _wrapped(
                            429,
                            type="usage_limit_reached",
                            message="The usage limit has been reached",
                            plan_type="pro",
                            resets_at=int(time.time()) + 3600,
                            headers=usage_headers,
                        )
                    ]
                )
            ),
            status="failed",
            text=None,
            error="usage limit",
            code="usage_limit_reached",
            requests=1,
            rate_limits=True,
        ),
        Scenario(
            "ws: wrapped error 400 invalid request",
            _ws_queue(
                _ws([_wrapped(400, type="invalid_request_error", message="Model does not support image inputs")])
            ),
            status="failed",
            text=None,
            error="does not support image inputs",
            requests=1,
        ),
        Scenario(
            "ws: wrapped error 500, then ok",
            _ws_queue(_ws([_wrapped(500, type="server_error", message="oops")]), _ws(answer())),
            requests=2,
        ),
        Scenario(
            "ws: wrapped error without status is ignored",
            _ws_queue(_ws([{"type": "error", "error": None}, *answer()])),
            requests=1,
        ),
        Scenario(
            "ws: handshake 426, falls back to HTTP",
            _ws_queue(_ws(status=426), http=(_answer(),)),
            requests=2,
            notice="Falling back from WebSockets",
        ),
        Scenario(
            "ws: every attempt closed, falls back to HTTP",
            _ws_queue(*(_ws(cut(3) + [WsClose(1011)]) for _ in range(2)), http=(_answer(),)),
            requests=3,
            agent=fast,
            notice="Falling back from WebSockets",
        ),
        Scenario(
            "ws: previous_response_not_found, reconnects with a full request",
            _ws_queue(
                _ws(
                    warm,
                    [
                        _wrapped(
                            400,
                            type="invalid_request_error",
                            code="previous_response_not_found",
                            message="Previous response not found.",
                        )
                    ],
                ),
                _ws(answer()),
            ),
            requests=1,
            warmup=True,
            full_request=True,
        ),
        Scenario(
            "ws: connection limit reached, reconnects",
            _ws_queue(
                _ws(
                    warm,
                    [
                        _wrapped(
                            400, type="invalid_request_error", code="websocket_connection_limit_reached", message=""
                        )
                    ],
                ),
                _ws(answer()),
            ),
            requests=1,
            warmup=True,
            full_request=True,
        ),
        Scenario(
            "ws: late events of the previous response on the reused socket (stale, discarded)",
            _ws_queue(_ws(_with_late_events(warm), answer())),
            requests=0,
            warmup=True,
            stale_events=3,
        ),
        Scenario(
            "ws: 40 MiB message (over the 32 MiB cap)",
            _ws_queue(_ws([*answer()[:3], Raw(_OPEN_DELTA[6:] + b"x" * (40 * MIB) + b'"}')])),
            status="failed",
            text=None,
            error="larger than this client accepts",
            code="stream_too_large",
            requests=1,
            max_seconds=20.0,  # no peak-RSS bound: the scripted server builds the 40 MiB frame in this process
        ),
        Scenario(
            "ws: lone surrogate escape in text",
            _ws_queue(
                _ws([Raw(json.dumps(e).encode()) for e in text_events(SURROGATE_TEXT, phase="final_answer", chunks=2)])
            ),
            text=SURROGATE_TEXT.replace("\ud83d", "\ufffd"),
            requests=1,
        ),
        Scenario(
            "ws: a response.completed naming another response mid-stream (stale, discarded)",
            _ws_queue(_ws(_with_foreign_completed(answer()))),
            requests=1,
            stale_events=1,
        ),
        Scenario(
            "ws: server closed the idle socket between turns",
            _ws_queue(_ws(warm), _ws(answer())),
            requests=1,
            warmup=True,
        ),
        Scenario(
            "ws: response.failed context_length_exceeded",
            _ws_queue(_ws(failed_events("context_length_exceeded", "Too long."))),
            status="failed",
            text=None,
            error="Too long",
            code="context_length_exceeded",
            requests=1,
        ),
        Scenario(
            "ws: response.failed server_error, then ok (new connection)",
            _ws_queue(_ws(failed_events("server_error", "boom")), _ws(answer())),
            requests=2,
        ),
        Scenario(
            "ws: response.incomplete",
            _ws_queue(_ws(incomplete_events("content_filter", text="partial"))),
            status="failed",
            text=None,
            error="reason: content_filter",
            requests=1,
        ),
        Scenario("ws: malformed JSON frames", _ws_queue(_ws(garbage)), requests=1),
        Scenario("ws: unknown event and item types", _ws_queue(_ws(unknown)), requests=1),
        Scenario(
            "ws: server stops sending (idle timeout 0.3 s), then ok",
            _ws_queue(_ws(cut(4) + [Hang()]), _ws(answer())),
            requests=2,
            agent={"idle_timeout": 0.3},
        ),
        Scenario(
            "ws: slow server (5 ms between frames)", _ws_queue(WsConn(requests=[answer()], delay=0.005)), requests=1
        ),
        Scenario(
            "ws: turn deadline (frames keep coming, turn_timeout 1 s)",
            _ws_queue(WsConn(requests=[list(text_events(ANSWER, phase="final_answer", chunks=20))], delay=0.2)),
            status="failed",
            text=None,
            error="deadline",
            code="turn_deadline",
            requests=1,
            agent={"idle_timeout": 0.5, "turn_timeout": 1.0},
        ),
        Scenario(
            "ws: huge event (10 MB delta)",
            _ws_queue(_ws(text_events("x" * HUGE_SIZE, phase="final_answer", chunks=1))),
            text="x" * HUGE_SIZE,
            requests=1,
            max_seconds=20.0,
        ),
    ]


# --------------------------------------------------------------------------- runner


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _watch_lag(stop: asyncio.Event, box: list[float]) -> None:
    """Record the worst lateness of a 10 ms ticker on the caller's loop."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t0 = loop.time()
        await asyncio.sleep(0.01)
        box[0] = max(box[0], loop.time() - t0 - 0.01)


def _user_count(agent: Agent, prompt: str) -> int:
    return sum(1 for m in agent.transcript() if m["role"] == "user" and m["text"] == prompt)


#: What a plain-language error never contains: reprs (``bytearray(b'..')``), exception class names,
#: errno texts (issue 15 item 5).
LIBRARY_TEXT = re.compile(r"bytearray\(|\bb'|\bb\"|\[Errno|Traceback|\b[A-Z]\w*(Error|Exception|Timeout)\b: ")


def _check_turn(turn: Turn, sc: Scenario, agent: Agent, prompt: str) -> list[str]:
    problems: list[str] = []
    if turn.status != sc.status:
        problems.append(f"status {turn.status!r} (error {turn.error!r}), expected {sc.status!r}")
    if sc.error and sc.error.lower() not in (turn.error or "").lower():
        problems.append(f"error {turn.error!r} lacks {sc.error!r}")
    errors = [e for e in turn.events if isinstance(e, ev.Error)]
    dones = [e for e in turn.events if isinstance(e, ev.TurnDone)]
    if len(dones) != 1:
        problems.append(f"{len(dones)} TurnDone events")
    if sc.status == "failed":
        if len(errors) != 1:
            problems.append(f"{len(errors)} Error events on a failed turn")
        elif sc.code and errors[0].code != sc.code:
            problems.append(f"error code {errors[0].code!r}, expected {sc.code!r}")
        if sc.rate_limits and not any(isinstance(e, ev.RateLimits) for e in turn.events):
            problems.append("no RateLimits event for a usage-limit error")
    elif errors:
        problems.append(f"Error events on a completed turn: {[e.message for e in errors]}")
    if sc.notice and not any(isinstance(e, ev.Notice) and sc.notice in e.message for e in turn.events):
        problems.append(f"no notice containing {sc.notice!r}")
    if sc.notice_contains and not any(
        isinstance(e, ev.Notice) and sc.notice_contains in e.message for e in turn.events
    ):
        problems.append(f"no notice containing {sc.notice_contains!r}")
    if sc.stale_events is not None and (turn.telemetry or {}).get("stale_events", 0) != sc.stale_events:
        problems.append(
            f"telemetry counts {(turn.telemetry or {}).get('stale_events', 0)} stale events, expected {sc.stale_events}"
        )
    for error in errors:
        if LIBRARY_TEXT.search(error.message):
            problems.append(f"library text or a repr in the user's error: {error.message!r}")
    last_retry = max((i for i, e in enumerate(turn.events) if isinstance(e, ev.Retry)), default=-1)
    after = turn.events[last_retry + 1 :]
    streamed = "".join(e.delta for e in after if isinstance(e, ev.TextDelta))
    done_msgs = [e for e in after if isinstance(e, ev.MessageDone)]
    if sc.text is not None:
        if turn.text != sc.text:
            problems.append(f"turn text {turn.text[:60]!r}, expected {sc.text[:60]!r}")
        if streamed != sc.text:
            problems.append(
                f"streamed text after last retry {streamed[:60]!r} (len {len(streamed)}), expected {sc.text[:60]!r}"
            )
        if len(done_msgs) != 1:
            problems.append(f"{len(done_msgs)} MessageDone after the last retry")
    if _user_count(agent, prompt) != 1:
        problems.append(f"user message in history {_user_count(agent, prompt)} times")
    assistant = [m["text"] for m in agent.transcript() if m["role"] == "assistant"]
    if sc.text is not None and assistant.count(sc.text) != 1:
        problems.append(f"answer in history {assistant.count(sc.text)} times")
    if sc.status == "failed" and any(t == ANSWER for t in assistant):
        problems.append("a failed turn left an answer in history")
    calls = {i.get("call_id") for i in agent.history if i.get("type") == "function_call"}
    outputs = {i.get("call_id") for i in agent.history if i.get("type") == "function_call_output"}
    if calls - outputs:
        problems.append(f"function calls without output: {calls - outputs}")
    return problems


async def run_scenario(sc: Scenario, loop: AgentLoop, *, transport: str = "sse") -> Outcome:
    """Run one scenario on a fresh server and agent; never raises for a scenario failure."""
    port = free_port() if sc.refused else 0
    server = ScriptedServer(port=port)
    base_url = f"http://127.0.0.1:{port}/v1"
    if not sc.refused:
        server.start()
        base_url = server.base_url
        sc.setup(server)
    kwargs: dict[str, Any] = {"max_retries": 3, **sc.agent}
    provider = "compatible" if transport == "sse" else "openai"  # "openai": a server that speaks the WebSocket
    agent = Agent(
        model="gpt-5-scripted",
        base_url=base_url,
        api_key="sk-fault-test",
        provider=provider,
        transport=transport,
        loop=loop,
        prewarm=False,
        web_search="disabled",
        **kwargs,
    )
    prompt = f"question for {sc.name}"
    problems: list[str] = []
    if sc.warmup:
        first = await asyncio.wait_for(agent.ask("warm-up question"), 10.0)
        if first.status != "completed" or first.text != WARM_ANSWER:
            problems.append(f"warm-up turn {first.status}: {first.error or first.text!r}")
    seen = _request_count(server)
    lag = [0.0]
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_lag(stop, lag))
    rss_base = None
    if sc.max_peak_rss is not None:
        gc.collect()
        rss_base = rss_bytes() if reset_peak_rss() else peak_rss_bytes()
    t0 = time.perf_counter()
    turn: Turn | None = None
    try:
        turn = await asyncio.wait_for(agent.ask(prompt), sc.max_seconds)
    except TimeoutError:
        problems.append(f"no outcome within {sc.max_seconds} s")
    except Exception as exc:  # noqa: BLE001 - a raising ask() is itself the finding
        problems.append(f"ask() raised {type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - t0
    peak = None
    if rss_base is not None and sc.max_peak_rss is not None:
        peak = max(0, peak_rss_bytes() - rss_base)
        if peak > sc.max_peak_rss:
            problems.append(f"peak RSS grew by {peak / MIB:.0f} MiB (limit {sc.max_peak_rss / MIB:.0f} MiB)")
    stop.set()
    await watcher
    if lag[0] > MAX_CALLER_LAG:
        problems.append(f"caller loop blocked {lag[0]:.3f} s")
    requests = _request_count(server) - seen
    if turn is not None:
        problems += _check_turn(turn, sc, agent, prompt)
        if sc.requests is not None and requests != sc.requests:
            problems.append(f"{requests} requests, expected {sc.requests}")
        if sc.full_request:
            frames = (
                [f for f in server.ws_connections[-1].frames if f.get("type") == "response.create"]
                if server.ws_connections
                else []
            )
            if (
                not frames
                or frames[-1].get("previous_response_id")
                or prompt not in _user_texts(frames[-1].get("input") or [])
            ):
                problems.append("the reconnect did not send a full request with the prompt")
    next_status = "not run"
    try:
        if sc.refused:
            server.start()
        before = len(server.requests)
        server.add_response(text_reply(NEXT_ANSWER, phase="final_answer"))
        if transport != "sse":
            _queue_ws_answer(server)
        nxt = await asyncio.wait_for(agent.ask("and the next question"), 10.0)
        next_status = nxt.status
        if nxt.status != "completed" or nxt.text != NEXT_ANSWER:
            problems.append(f"next turn {nxt.status}: {nxt.error or nxt.text!r}")
        else:
            sent = _last_input(server, before)
            if sent is not None and not _chained(server):
                if _user_texts(sent).count(prompt) != 1:
                    problems.append("next request does not carry the faulted prompt exactly once")
                if _user_texts(sent)[-1:] != ["and the next question"]:
                    problems.append("next request does not end with the new prompt")
    except TimeoutError:
        problems.append("next turn timed out")
        next_status = "timeout"
    finally:
        await loop.run(agent.session.aclose())
        bodies = sent_bodies(server)
        server.stop()
    return Outcome(
        scenario=sc.name,
        status=turn.status if turn else "no outcome",
        seconds=seconds,
        requests=requests,
        error=turn.error if turn else None,
        code=next((e.code for e in turn.events if isinstance(e, ev.Error)), None) if turn else None,
        retries=sum(1 for e in turn.events if isinstance(e, ev.Retry)) if turn else 0,
        caller_lag=lag[0],
        next_turn=next_status,
        problems=problems,
        peak_rss=peak,
        bodies=bodies,
    )


def sent_bodies(server: ScriptedServer) -> list[tuple[str, dict[str, Any]]]:
    """Every Responses request the client sent to ``server`` (HTTP bodies, WebSocket create frames)."""
    out: list[tuple[str, dict[str, Any]]] = [
        ("http", r.json) for r in server.find_requests("POST", "/responses") if isinstance(r.json, dict)
    ]
    for conn in server.ws_connections:
        out += [("ws", f) for f in conn.frames if isinstance(f, dict) and f.get("type") == "response.create"]
    return out


def _queue_ws_answer(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(requests=[text_events(NEXT_ANSWER, phase="final_answer")]))


def _last_input(server: ScriptedServer, since: int) -> list[Any] | None:
    """The ``input`` of the last Responses request (HTTP body or WebSocket frame) after ``since``."""
    for rec in reversed(server.requests[since:]):
        if rec.method == "POST" and isinstance(rec.json, dict):
            return list(rec.json.get("input") or [])
    for ws in reversed(server.ws_connections):
        for frame in reversed(ws.frames):
            if frame.get("type") == "response.create" and frame.get("generate") is not False:
                return list(frame.get("input") or [])
    return None


def _request_count(server: ScriptedServer) -> int:
    """Responses POSTs plus WebSocket handshakes the server has seen."""
    if not server.running:
        return 0
    return len(server.find_requests("POST", "/responses")) + sum(1 for r in server.requests if r.is_websocket)


def _chained(server: ScriptedServer) -> bool:
    """Whether the last WebSocket request was incremental (``previous_response_id``: input is a delta)."""
    for ws in reversed(server.ws_connections):
        for frame in reversed(ws.frames):
            if frame.get("type") == "response.create":
                return bool(frame.get("previous_response_id"))
    return False


def _user_texts(items: list[Any]) -> list[str]:
    out = []
    for item in items:
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, list):
                out.append("".join(str(p.get("text", "")) for p in content if isinstance(p, dict)))
            elif isinstance(content, str):
                out.append(content)
    return out


@contextlib.contextmanager
def agent_loop() -> Any:
    """A private agent loop for a batch of scenarios."""
    loop = AgentLoop(name="fault-matrix-loop")
    try:
        yield loop
    finally:
        loop.loop.call_soon_threadsafe(loop.loop.stop)
        loop.thread.join(2)
