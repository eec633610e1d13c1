"""Property-based tests (hypothesis) of the SSE decoder and the streaming path.

* Any chunking of a valid stream, with any of the three line ends, decodes to the same events.
* Arbitrary bytes never make the decoder raise; ``parse_event`` only ever raises its documented
  ``ProtocolError`` (malformed ``response.completed``).
* Arbitrary bytes served in arbitrary chunks through ``SseTransport`` (the real streaming path,
  over an httpx in-process transport) end in events or an ``AgentError``, nothing else.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_agent.protocol import errors as E
from jupyter_agent.protocol.responses import parse_event
from jupyter_agent.transport.sse import SseDecoder, SseTransport

PROFILE = settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
event_types = st.sampled_from(
    [
        "response.created",
        "response.output_text.delta",
        "response.output_item.added",
        "response.completed",
        "response.in_progress",
        "codex.rate_limits",
        "response.new_tool_event",
        "error",
    ]
)
events = st.builds(
    lambda t, extra: {**extra, "type": t},
    event_types,
    st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=4),
)
eols = st.sampled_from([b"\n", b"\r\n", b"\r"])


def encode(evs: list[dict[str, Any]], eol: bytes, comments: bool, multiline: bool) -> bytes:
    out = b""
    for ev in evs:
        payload = json.dumps(ev, ensure_ascii=False).encode()
        if comments:
            out += b": keep-alive" + eol
        out += b"event: " + ev["type"].encode() + eol + b"id: 7" + eol
        if multiline:  # newlines between JSON tokens: one data line per line of indented JSON
            for line in json.dumps(ev, ensure_ascii=False, indent=1).encode().split(b"\n"):
                out += b"data: " + line + eol
        else:
            out += b"data: " + payload + eol
        out += eol
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


def decode(chunks: list[bytes]) -> list[bytes]:
    decoder = SseDecoder()
    out: list[bytes] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out + decoder.flush()


@PROFILE
@given(st.lists(events, max_size=8), eols, st.booleans(), st.booleans(), st.lists(st.integers(0, 10**6), max_size=30))
def test_any_chunking_gives_identical_events(
    evs: list[dict[str, Any]], eol: bytes, comments: bool, multiline: bool, cuts: list[int]
) -> None:
    stream = encode(evs, eol, comments, multiline)
    whole = decode([stream])
    assert [json.loads(d) for d in whole] == evs
    assert decode(split(stream, cuts)) == whole
    assert decode([stream[i : i + 1] for i in range(len(stream))]) == whole


@PROFILE
@given(st.binary(max_size=400), st.lists(st.integers(0, 10**6), max_size=20))
def test_arbitrary_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    for payload in decode(split(data, cuts)):
        assert isinstance(payload, bytes)
        try:
            parse_event(payload)
        except E.ProtocolError:
            pass


sse_noise = st.lists(
    st.sampled_from(
        [
            b"data: ",
            b"data:",
            b"\n",
            b"\r\n",
            b"\r",
            b"{",
            b"}",
            b'"type"',
            b":",
            b'"response.completed"',
            b'"response.output_text.delta"',
            b'"delta"',
            b'"x"',
            b",",
            b'"response"',
            b"event: e",
            b"\xff",
            b"null",
        ]
    )
    | st.binary(max_size=8),
    max_size=60,
).map(b"".join)


@PROFILE
@given(sse_noise, st.lists(st.integers(0, 10**6), max_size=20))
def test_sse_like_noise_only_documented_errors(data: bytes, cuts: list[int]) -> None:
    for payload in decode(split(data, cuts)):
        try:
            parse_event(payload)
        except E.ProtocolError as exc:
            assert "ResponseCompleted" in str(exc)


async def _stream_through_transport(chunks: list[bytes]) -> tuple[list[Any], BaseException | None]:
    async def body() -> AsyncIterator[bytes]:
        for c in chunks:
            yield c

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        transport = SseTransport(client, "http://scripted.invalid/v1/responses")
        seen: list[Any] = []
        try:
            async for item in transport.stream({"model": "m", "input": []}, {}, idle_timeout=5.0):
                seen.append(item)
        except E.AgentError as exc:
            return seen, exc
        return seen, None


@settings(max_examples=80, derandomize=True, deadline=None)
@given(sse_noise | st.binary(max_size=300), st.lists(st.integers(0, 10**6), max_size=10))
def test_streaming_path_ends_in_events_or_agent_error(data: bytes, cuts: list[int]) -> None:
    seen, error = asyncio.run(_stream_through_transport(split(data, cuts)))
    # A stream of noise has no response.completed: it must end in an AgentError, never silently.
    assert error is not None or any(type(e).__name__ in ("ResponseCompleted", "ResponseDone") for e in seen)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=10),
    st.lists(st.integers(0, 10**6), max_size=15),
    eols,
)
def test_streaming_path_any_chunking_same_text(deltas: list[str], cuts: list[int], eol: bytes) -> None:
    evs: list[dict[str, Any]] = [
        {"type": "response.output_text.delta", "item_id": "m1", "output_index": 0, "content_index": 0, "delta": d}
        for d in deltas
    ]
    evs.append({"type": "response.completed", "response": {"id": "resp_1"}})
    seen, error = asyncio.run(_stream_through_transport(split(encode(evs, eol, True, False), cuts)))
    assert error is None
    assert "".join(getattr(e, "delta", "") for e in seen if type(e).__name__ == "OutputTextDelta") == "".join(deltas)


known_types = st.sampled_from(
    sorted(__import__("jupyter_agent.protocol.responses", fromlist=["_EVENT_MODELS"])._EVENT_MODELS)
)
field_keys = st.sampled_from(
    ["type", "delta", "item_id", "response", "item", "output_index", "sequence_number", "error", "headers", "status"]
)
typed_events = st.builds(
    lambda t, fields, first: {"type": t, **fields} if first else {**fields, "type": t},
    known_types | st.text(max_size=12),
    st.dictionaries(
        field_keys, json_values | st.just({"id": "r1"}) | st.just({"type": "message", "content": []}), max_size=4
    ),
    st.booleans(),
)


def _outcome(data: bytes | str) -> Any:
    try:
        return ("ok", parse_event(data))
    except E.ProtocolError as exc:
        return ("error", str(exc))


@PROFILE
@given(typed_events, st.booleans())
def test_fast_path_equals_union_path(event: dict[str, Any], compact: bool) -> None:
    raw = json.dumps(event, separators=(",", ":") if compact else (", ", ": "), ensure_ascii=False)
    # bytes take the type-first fast path; str goes straight to the discriminated union
    assert _outcome(raw.encode()) == _outcome(raw)
    repeated = raw[:-1] + (', "type": "response.completed"}' if len(event) > 0 else "")
    if repeated:
        assert _outcome(repeated.encode()) == _outcome(repeated)
