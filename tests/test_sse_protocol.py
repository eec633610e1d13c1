"""Spec §3 (HTTP + SSE transport) and the request shape of "Common data shapes".

Unit tests of the decoder/parser/classifier, and socket tests of ``SseTransport`` and
``Agent(transport="sse")`` against the scripted server on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import json
import random
import time
from typing import Any

import httpx
import pytest

from jupyter_agent import events as ev
from jupyter_agent.protocol import errors as E
from jupyter_agent.protocol import responses as R
from jupyter_agent.testing import Raw, Reply, ScriptedServer, error_reply, failed_reply, function_call_reply, text_reply
from jupyter_agent.transport.base import ResponseHeaders
from jupyter_agent.transport.sse import SseDecoder, SseTransport
from tests.sse_support import API_KEY, FIXTURES, assert_no_secret, make_agent, of_type, server  # noqa: F401

MSG_COMMENTARY = {
    "type": "response.output_item.done",
    "item": {
        "type": "message",
        "role": "assistant",
        "id": "msg_1",
        "content": [{"type": "output_text", "text": "Hi"}],
        "phase": "commentary",
    },
}
MSG_2 = {
    "type": "response.output_item.done",
    "item": {
        "type": "message",
        "role": "assistant",
        "id": "msg_2",
        "content": [{"type": "output_text", "text": "Bye"}],
    },
}
USAGE = {
    "input_tokens": 10,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 3,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 13,
}
COMPLETED = {"type": "response.completed", "response": {"id": "resp_1", "usage": USAGE}}


def failed(code: str | None, message: str | None) -> dict[str, Any]:
    error = {k: v for k, v in (("code", code), ("message", message)) if v is not None}
    return {"type": "response.failed", "response": {"id": "resp_f", "status": "failed", "error": error}}


async def collect(server: ScriptedServer, reply: Reply, *, idle: float = 5.0) -> tuple[list[Any], E.AgentError | None]:
    """Stream one scripted reply through the real SSE transport."""
    server.add_response(reply)
    out: list[Any] = []
    async with httpx.AsyncClient() as client:
        transport = SseTransport(client, server.base_url + "/responses")
        try:
            async for event in transport.stream({"model": "gpt-5", "input": []}, {}, idle_timeout=idle):
                out.append(event)
        except E.AgentError as error:
            return out, error
    return out, None


def wire(events: list[Any]) -> list[Any]:
    return [e for e in events if not isinstance(e, ResponseHeaders)]


# --- §3.3 parsing ------------------------------------------------------------------------


async def test_parses_items_and_completed(server: ScriptedServer) -> None:
    events, error = await collect(server, Reply(events=[MSG_COMMENTARY, MSG_2, COMPLETED]))
    assert error is None
    assert isinstance(events[0], ResponseHeaders)
    first, second, done = wire(events)
    assert isinstance(first, R.OutputItemDone) and isinstance(first.item, R.MessageItem)
    assert first.item.phase == "commentary" and first.item.text == "Hi"
    assert isinstance(second.item, R.MessageItem) and second.item.phase is None
    assert isinstance(done, R.ResponseCompleted)
    assert done.response.id == "resp_1"
    assert done.response.usage is not None and done.response.usage.total_tokens == 13


async def test_error_when_missing_completed(server: ScriptedServer) -> None:
    events, error = await collect(server, Reply(events=[MSG_COMMENTARY]))
    assert len(wire(events)) == 1
    assert isinstance(error, E.StreamError) and error.retryable
    assert error.message == "stream closed before response.completed"


async def test_response_done_emits_incremental_completed(server: ScriptedServer) -> None:
    events, error = await collect(
        server, Reply(events=[MSG_2, {"type": "response.done", "response": {"id": "resp_d", "usage": USAGE}}])
    )
    assert error is None
    done = wire(events)[-1]
    assert isinstance(done, R.ResponseDone) and done.response is not None and done.response.id == "resp_d"


async def test_response_done_without_payload_emits_completed(server: ScriptedServer) -> None:
    events, error = await collect(server, Reply(events=[Raw(b'data: {"type":"response.done"}\n\n')]))
    assert error is None
    [done] = wire(events)
    assert isinstance(done, R.ResponseDone) and done.response is None


async def test_emits_completed_without_stream_end(server: ScriptedServer) -> None:
    # The server never ends the body after response.completed: the client must not wait for it.
    reply = Reply(events=[MSG_2, COMPLETED, MSG_2], fault=("hang_after", 2))
    events, error = await collect(server, reply, idle=30.0)
    assert error is None
    assert isinstance(wire(events)[-1], R.ResponseCompleted)


async def test_error_when_error_event(server: ScriptedServer) -> None:
    message = (
        "Rate limit reached for gpt-5.1 in organization org-AAA on tokens per min (TPM): Limit 30000, "
        "Used 22999, Requested 12528. Please try again in 11.054s. Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    _, error = await collect(server, Reply(events=[failed("rate_limit_exceeded", message)]))
    assert isinstance(error, E.StreamError) and error.retryable
    assert error.delay == pytest.approx(11.054)
    assert error.message == message


@pytest.mark.parametrize(
    "message",
    [
        "Your input exceeds the context window of this model. Please adjust your input and try again.",
        "Your input exceeds the context window of this model.\nPlease adjust your input and try again.\n",
    ],
)
async def test_context_window_error_is_fatal(server: ScriptedServer, message: str) -> None:
    _, error = await collect(server, Reply(events=[failed("context_length_exceeded", message)]))
    assert isinstance(error, E.ContextWindowExceeded) and not error.retryable
    assert error.message == message


async def test_quota_exceeded_error_is_fatal(server: ScriptedServer) -> None:
    _, error = await collect(server, Reply(events=[failed("insufficient_quota", "You exceeded your current quota")]))
    assert isinstance(error, E.QuotaExceeded) and not error.retryable
    assert error.message == "Quota exceeded. Check your plan and billing details."


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Invalid prompt: your prompt was flagged.", "Invalid prompt: your prompt was flagged."),
        (None, "Invalid request."),
    ],
)
async def test_invalid_prompt_without_type_is_invalid_request(
    server: ScriptedServer, message: str | None, expected: str
) -> None:
    _, error = await collect(server, Reply(events=[failed("invalid_prompt", message)]))
    assert isinstance(error, E.InvalidRequest) and not error.retryable
    assert error.message == expected


@pytest.mark.parametrize(
    ("code", "cls", "retryable", "text"),
    [
        ("usage_not_included", E.UsageNotIncluded, False, E.USAGE_NOT_INCLUDED_MESSAGE),
        ("server_is_overloaded", E.ServerOverloaded, False, E.OVERLOADED_MESSAGE),
        ("slow_down", E.ServerOverloaded, False, E.OVERLOADED_MESSAGE),
        ("rate_limit_exceeded", E.StreamError, True, "slow"),
        ("something_new", E.StreamError, True, "slow"),
    ],
)
def test_failed_code_classification(code: str, cls: type, retryable: bool, text: str) -> None:
    error = E.from_failed_response(R.ResponseError(code=code, message="slow"))
    assert type(error) is cls and error.retryable is retryable and error.message == text
    assert error.delay is None  # "slow" names no delay


def test_failed_without_error_is_retryable() -> None:
    error = E.from_failed_response(None)
    assert error.retryable and error.message == "response.failed event received"


def test_retry_delay_only_for_rate_limit_exceeded() -> None:
    error = E.from_failed_response(R.ResponseError(code="server_error", message="try again in 3s"))
    assert error.delay is None


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("Rate limit reached for gpt-5 in organization org- on tokens per min. Please try again in 28ms.", 0.028),
        ("Rate limit reached for gpt-5 in organization org- on requests per min. Please try again in 1.898s.", 1.898),
        ("Requests to the Responses API have exceeded token rate limit. Try again in 35 seconds.", 35.0),
        ("Please TRY AGAIN IN 2 second", 2.0),
        ("no delay here", None),
        (None, None),
    ],
)
def test_try_parse_retry_after(message: str | None, seconds: float | None) -> None:
    got = E.parse_retry_delay(message)
    assert got == (pytest.approx(seconds) if seconds is not None else None)


EVENT_KINDS: list[tuple[dict[str, Any], type]] = [
    ({"type": "response.created", "response": {"id": "r"}}, R.ResponseCreated),
    ({"type": "response.in_progress", "response": {"id": "r"}}, R.ResponseInProgress),
    (
        {
            "type": "response.output_item.added",
            "item": {"type": "web_search_call", "id": "ws", "status": "in_progress"},
        },
        R.OutputItemAdded,
    ),
    (MSG_2, R.OutputItemDone),
    ({"type": "response.output_text.delta", "item_id": "m", "delta": "x"}, R.OutputTextDelta),
    ({"type": "response.reasoning_summary_text.delta", "delta": "s", "summary_index": 0}, R.ReasoningSummaryTextDelta),
    ({"type": "response.reasoning_text.delta", "delta": "t", "content_index": 1}, R.ReasoningTextDelta),
    ({"type": "response.reasoning_summary_part.added", "summary_index": 2}, R.ReasoningSummaryPartAdded),
    ({"type": "codex.response.metadata", "headers": {"openai-model": "gpt-5.2"}}, R.MetadataEvent),
    ({"type": "responsesapi.websocket_timing", "timing_metrics": {}}, R.TimingEvent),
    ({"type": "response.new_tool_event", "foo": 1}, R.UnknownEvent),
    # A known type whose payload does not fit is unknown, never an error.
    ({"type": "response.reasoning_summary_text.delta", "delta": "s"}, R.UnknownEvent),
    ({"type": "response.output_item.done", "item": {"type": "function_call"}}, R.UnknownEvent),
]


@pytest.mark.parametrize(("data", "cls"), EVENT_KINDS, ids=[f"{i}-{d['type']}" for i, (d, _) in enumerate(EVENT_KINDS)])
def test_table_driven_event_kinds(data: dict[str, Any], cls: type) -> None:
    event = R.parse_event(json.dumps(data))
    assert type(event) is cls


def test_unknown_item_type_becomes_other_item() -> None:
    event = R.parse_event(
        json.dumps({"type": "response.output_item.done", "item": {"type": "code_interpreter_call", "id": "ci"}})
    )
    assert isinstance(event, R.OutputItemDone) and isinstance(event.item, R.OtherItem)


def test_unparseable_data_is_skipped() -> None:
    assert R.parse_event(b"{not json") is None
    assert R.parse_event(b"[1, 2]") is None
    assert R.parse_event(b'{"no_type": 1}') is None
    assert R.parse_event(b'{"type":"response.output_text.delta","delta":"\xff"}') is None  # not UTF-8
    assert R.parse_event(b"[" * 100_000) is None  # absurd nesting
    assert R.parse_event(b'{"type":"x","a":' + b"[" * 100_000) is None
    assert R.parse_event(b"") is None


async def test_incomplete_content_filter_is_one_request(server: ScriptedServer, make_agent: Any) -> None:
    from jupyter_agent.testing import incomplete_reply

    server.add_response(incomplete_reply("content_filter", text="Partial"))
    turn = await make_agent(max_retries=2).ask("hi")
    assert turn.status == "failed" and len(server.requests) == 1
    assert of_type(turn.events, ev.Error)[0].message == "Incomplete response returned, reason: content_filter"


def test_malformed_completed_is_a_protocol_error() -> None:
    with pytest.raises(E.ProtocolError, match=r"^failed to parse ResponseCompleted"):
        R.parse_event(b'{"type":"response.completed","response":{"usage":null}}')


def test_decoder_handles_split_crlf_comments_and_multiline_data() -> None:
    raw = b': keepalive\r\nevent: x\r\ndata: {"a":\r\ndata: 1}\r\n\r\ndata: {"b":2}\n\n'
    out: list[bytes] = []
    decoder = SseDecoder()
    for i in range(len(raw)):  # one byte at a time: every split point
        out += decoder.feed(raw[i : i + 1])
    out += decoder.flush()
    assert [json.loads(d) for d in out] == [{"a": 1}, {"b": 2}]


def test_decoder_strips_a_leading_bom_only() -> None:
    decoder = SseDecoder()
    out = decoder.feed(b'\xef\xbb\xbfdata: {"a":1}\n\n') + decoder.feed(b'\xef\xbb\xbfdata: {"b":2}\n\n')
    assert out == [b'{"a":1}']  # a BOM later in the stream is part of a line (an unknown field)


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.sse")))
def test_decoder_is_split_invariant_on_recordings(name: str) -> None:
    raw = (FIXTURES / f"{name}.sse").read_bytes()
    expected = [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]
    rng = random.Random(name)
    for variant in (raw, raw.replace(b"\n", b"\r\n"), raw.replace(b"\n", b"\r")):
        decoder = SseDecoder()
        out: list[bytes] = []
        i = 0
        while i < len(variant):
            step = rng.choice((1, 2, 7, 64, 1500, 65536))
            out += decoder.feed(variant[i : i + step])
            i += step
        out += decoder.flush()
        assert out == expected


def test_decoder_long_line_in_many_chunks() -> None:
    payload = b'{"type":"x","blob":"' + b"A" * 300_000 + b'"}'
    data = b"data: " + payload + b"\n\n"
    decoder = SseDecoder()
    out: list[bytes] = []
    for i in range(0, len(data), 1000):
        out += decoder.feed(data[i : i + 1000])
    assert out == [payload]


async def test_event_name_is_ignored_and_bad_lines_skipped(server: ScriptedServer) -> None:
    body = (
        b"event: response.completed\ndata: {not json}\n\n"
        b"event: totally.wrong\ndata: " + json.dumps(MSG_2).encode() + b"\n\n"
        b"data: " + json.dumps({"type": "response.new_tool_event"}).encode() + b"\n\n"
        b"data: " + json.dumps(COMPLETED).encode() + b"\n\n"
    )
    events, error = await collect(server, Reply(events=[Raw(body)]))
    assert error is None
    assert [type(e) for e in wire(events)] == [R.OutputItemDone, R.UnknownEvent, R.ResponseCompleted]


async def test_slow_byte_by_byte_stream_parses(server: ScriptedServer) -> None:
    events, error = await collect(server, Reply(events=[MSG_2, COMPLETED], fault="slow", slow_interval=0.0))
    assert error is None and [type(e) for e in wire(events)] == [R.OutputItemDone, R.ResponseCompleted]


async def test_unknown_events_do_not_reach_the_agent_output(server: ScriptedServer, make_agent: Any) -> None:
    reply = text_reply("Hello")
    reply.events.insert(2, {"type": "response.new_tool_event", "data": {"x": 1}})
    reply.events.insert(3, Raw(b"data: {broken\n\n"))
    server.add_response(reply)
    turn = await make_agent().ask("hi")
    assert turn.status == "completed" and turn.text == "Hello"
    assert not of_type(turn.events, ev.Error)


# --- §3.2 response headers ----------------------------------------------------------------


async def test_headers_are_read_before_any_event(server: ScriptedServer) -> None:
    reply = Reply(
        headers={
            "openai-model": "gpt-5.2",
            "x-codex-other-primary-used-percent": "20",
            "x-codex-primary-used-percent": "12.5",
            "x-codex-primary-window-minutes": "300",
            "X-Models-Etag": "etag-1",
            "x-reasoning-included": "false",
            "x-codex-turn-state": "ts-1",
            "x-request-id": "req_9",
        },
        events=[COMPLETED],
    )
    events, error = await collect(server, reply)
    assert error is None
    head = events[0]
    assert isinstance(head, ResponseHeaders)
    assert head.server_model == "gpt-5.2"
    assert [s.limit_id for s in head.rate_limits] == ["codex", "codex_other"]
    assert head.rate_limits[0].primary is not None and head.rate_limits[0].primary.used_percent == 12.5
    assert head.models_etag == "etag-1"
    assert head.reasoning_included is True  # presence, not value
    assert head.turn_state == "ts-1" and head.request_id == "req_9"


async def test_default_codex_family_always_present(server: ScriptedServer) -> None:
    events, _ = await collect(server, Reply(events=[COMPLETED]))
    head = events[0]
    assert [s.limit_id for s in head.rate_limits] == ["codex"]
    assert head.rate_limits[0].primary is None and head.reasoning_included is False and head.server_model is None


async def test_agent_emits_server_model_before_rate_limits(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(
        text_reply(
            "ok",
            headers={
                "openai-model": "gpt-5",
                "x-codex-primary-used-percent": "50",
                "x-codex-primary-window-minutes": "60",
            },
        )
    )
    turn = await make_agent().ask("hi")
    kinds = [type(e) for e in turn.events if isinstance(e, (ev.ServerModel, ev.RateLimits, ev.TextDelta))]
    assert kinds[:3] == [ev.ServerModel, ev.RateLimits, ev.TextDelta]


# --- §3.4 stream end and idle timeout -------------------------------------------------------


async def test_idle_timeout(server: ScriptedServer) -> None:
    events, error = await collect(server, Reply(events=[MSG_2, COMPLETED], fault=("hang_after", 1)), idle=0.3)
    assert len(wire(events)) == 1
    assert isinstance(error, E.IdleTimeout) and error.retryable
    assert error.message == "idle timeout waiting for SSE"


async def test_idle_timeout_before_response_headers(server: ScriptedServer) -> None:
    _, error = await collect(server, Reply(events=[COMPLETED], first_byte_delay=2.0), idle=0.2)
    assert isinstance(error, E.IdleTimeout) and error.message == "idle timeout waiting for SSE"


async def test_failed_then_hang_is_reported_at_once(server: ScriptedServer) -> None:
    # The client reports the failure when it arrives; it does not wait for the body to end.
    events, error = await collect(
        server, Reply(events=[failed("insufficient_quota", "q"), COMPLETED], fault=("hang_after", 1)), idle=30.0
    )
    assert isinstance(error, E.QuotaExceeded)


async def test_connection_dropped_mid_stream_is_retryable(server: ScriptedServer) -> None:
    _, error = await collect(server, Reply(events=[MSG_2, MSG_2, COMPLETED], fault=("drop_after", 1)))
    assert isinstance(error, E.StreamError) and error.retryable


async def test_connection_refused_before_first_byte_is_retryable(server: ScriptedServer) -> None:
    _, error = await collect(server, Reply(fault="reset_before_first_byte"))
    assert isinstance(error, E.StreamError) and error.retryable


async def test_agent_idle_timeout_message(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(Reply(events=[MSG_2, COMPLETED], fault=("hang_after", 1)))
    turn = await make_agent(idle_timeout=0.3).ask("hi")
    assert turn.status == "failed"
    assert of_type(turn.events, ev.Error)[-1].message == "idle timeout waiting for SSE"


# --- §3.5 HTTP status table ----------------------------------------------------------------


async def test_status_400_is_invalid_request(server: ScriptedServer) -> None:
    _, error = await collect(server, error_reply(400, "Model does not support image inputs"))
    assert isinstance(error, E.InvalidRequest) and not error.retryable
    assert error.message == "Model does not support image inputs" and error.status == 400


async def test_status_400_invalid_image(server: ScriptedServer) -> None:
    _, error = await collect(server, error_reply(400, "Invalid image data in message 3"))
    assert isinstance(error, E.InvalidRequest) and "image" in error.message and not error.retryable


async def test_status_401_names_no_key(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(
        error_reply(401, f"Incorrect API key provided: {API_KEY}", type="invalid_request_error", code="invalid_api_key")
    )
    agent = make_agent(max_retries=3)
    turn = await agent.ask("hi")
    assert turn.status == "failed" and len(server.requests) == 1
    [error] = of_type(turn.events, ev.Error)
    assert error.code == "unauthorized" and "401" in error.message
    assert_no_secret([e.to_dict() for e in turn.events])
    assert API_KEY not in (turn.error or "")


USAGE_LIMIT_HEADERS = {
    "x-codex-primary-used-percent": "100.0",
    "x-codex-primary-window-minutes": "15",
    "x-codex-secondary-used-percent": "87.5",
    "x-codex-secondary-window-minutes": "60",
}


async def test_status_429_usage_limit(server: ScriptedServer) -> None:
    reply = error_reply(
        429,
        "The usage limit has been reached",
        type="usage_limit_reached",
        plan_type="pro",
        resets_at=None,
        headers=USAGE_LIMIT_HEADERS,
    )
    _, error = await collect(server, reply)
    assert isinstance(error, E.UsageLimitReached) and not error.retryable
    assert "usage limit" in error.message
    assert error.rate_limits[0].limit_id == "codex" and error.rate_limits[0].primary.used_percent == 100.0


async def test_status_429_usage_not_included(server: ScriptedServer) -> None:
    _, error = await collect(server, error_reply(429, "nope", type="usage_not_included"))
    assert isinstance(error, E.UsageNotIncluded) and not error.retryable
    assert error.message == E.USAGE_NOT_INCLUDED_MESSAGE


async def test_status_429_other_retries_then_reports_limit(server: ScriptedServer, make_agent: Any) -> None:
    for _ in range(3):
        server.add_response(
            error_reply(
                429,
                "Rate limit reached",
                type="requests",
                code="rate_limit_exceeded",
                headers={"retry-after-ms": "20", "x-request-id": "req_42"},
            )
        )
    turn = await make_agent(max_retries=2).ask("hi")
    assert len(server.requests) == 3
    retries = of_type(turn.events, ev.Retry)
    assert [r.attempt for r in retries] == [1, 2] and all(r.delay == pytest.approx(0.02) for r in retries)
    [error] = of_type(turn.events, ev.Error)
    assert error.message == "exceeded retry limit, last status: 429 Too Many Requests, request id: req_42"


async def test_status_500_is_retryable_high_demand(server: ScriptedServer) -> None:
    _, error = await collect(server, error_reply(500, "boom", type="server_error"))
    assert isinstance(error, E.StreamError) and error.retryable
    assert error.message == E.HIGH_DEMAND_MESSAGE


@pytest.mark.parametrize("code", ["server_is_overloaded", "slow_down"])
async def test_status_503_overloaded_is_fatal(server: ScriptedServer, code: str) -> None:
    _, error = await collect(server, error_reply(503, "busy", type="server_error", code=code))
    assert isinstance(error, E.ServerOverloaded) and not error.retryable
    assert error.message == E.OVERLOADED_MESSAGE


async def test_other_status_is_unexpected_and_retryable(server: ScriptedServer) -> None:
    reply = Reply(status=502, headers={"x-request-id": "req_7", "cf-ray": "ray-1"}, body="<html>bad gateway</html>")
    _, error = await collect(server, reply)
    assert isinstance(error, E.StreamError) and error.retryable and error.status == 502
    assert "502" in error.message and "bad gateway" in error.message
    assert "req_7" in error.message and "ray-1" in error.message
    assert server.base_url + "/responses" in error.message


async def test_503_without_overload_code_is_retryable(server: ScriptedServer) -> None:
    _, error = await collect(server, error_reply(503, "maintenance", type="server_error"))
    assert isinstance(error, E.StreamError) and error.retryable


@pytest.mark.parametrize(("headers", "delay"), [({"retry-after-ms": "30"}, 0.03), ({"retry-after": "0.25"}, 0.25)])
async def test_retry_after_headers_are_honoured(
    server: ScriptedServer, make_agent: Any, headers: dict[str, str], delay: float
) -> None:
    server.add_response(error_reply(429, "Rate limit reached", code="rate_limit_exceeded", headers=headers))
    server.add_response(text_reply("ok"))
    turn = await make_agent(max_retries=1).ask("hi")
    assert turn.status == "completed" and turn.text == "ok"
    [retry] = of_type(turn.events, ev.Retry)
    assert retry.delay == pytest.approx(delay)
    first, second = server.requests
    assert second.time - first.time >= delay * 0.9


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (E.retry_after_from_headers({"Retry-After": when}) or 0) <= 31
    assert E.retry_after_from_headers({"retry-after": "soon"}) is None


# --- §3.7 usage-limit messages -------------------------------------------------------------


def test_usage_limit_messages() -> None:
    reset = dt.datetime.now().replace(hour=23, minute=59, second=0, microsecond=0).timestamp()
    at = "try again at 23:59."
    msg = E.usage_limit_message
    assert msg(limit_name="gpt-5.2-codex-sonic", plan_type="plus", resets_at=reset) == (
        f"You've hit your usage limit for gpt-5.2-codex-sonic. Switch to another model now, or {at}"
    )
    assert msg(limit_name="CODEX", plan_type=None, resets_at=reset, promo="Upgrade for more") == (
        f"You've hit your usage limit. Upgrade for more, or {at}"
    )
    assert "Upgrade to Pro" in msg(limit_name=None, plan_type="plus", resets_at=reset)
    assert "send a request to your admin" in msg(limit_name=None, plan_type="team", resets_at=reset)
    assert "send a request to your admin" in msg(limit_name=None, plan_type="business", resets_at=reset)
    assert "Upgrade to Plus" in msg(limit_name=None, plan_type="free", resets_at=reset)
    assert "Upgrade to Plus" in msg(limit_name=None, plan_type="go", resets_at=reset)
    assert "credits" in msg(limit_name=None, plan_type="pro", resets_at=reset)
    assert (
        msg(limit_name=None, plan_type="enterprise", resets_at=reset)
        == "You've hit your usage limit. Try again at 23:59."
    )
    assert msg(limit_name=None, plan_type=None, resets_at=None) == "You've hit your usage limit. Try again later."


def test_usage_limit_message_uses_bucket_named_by_active_limit() -> None:
    headers = {
        **USAGE_LIMIT_HEADERS,
        "x-codex-bengalfox-primary-used-percent": "100",
        "x-codex-bengalfox-limit-name": "gpt-5.2-codex-sonic",
        "x-codex-active-limit": "codex_bengalfox",
    }
    body = {"error": {"type": "usage_limit_reached", "message": "limit", "plan_type": "plus"}}
    error = E.from_http_status(429, headers, json.dumps(body))
    assert "usage limit for gpt-5.2-codex-sonic" in error.message and "Upgrade to Pro" not in error.message
    # Without a limit-name header the id is not used as a name.
    headers.pop("x-codex-bengalfox-limit-name")
    error = E.from_http_status(429, headers, json.dumps(body))
    assert "codex_bengalfox" not in error.message and "Upgrade to Pro" in error.message


# --- request body and headers (Common data shapes, §3.1) -----------------------------------

KEY_ORDER = [
    "model",
    "instructions",
    "input",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "store",
    "stream",
]


async def test_request_body_shape_without_reasoning(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(text_reply("ok"))
    agent = make_agent(model="gpt-4.1")
    await agent.ask("hello")
    body = server.requests[0].json
    assert list(body) == [*KEY_ORDER, "prompt_cache_key"]
    assert body["reasoning"] is None and "include" not in body and "text" not in body
    assert body["store"] is False and body["stream"] is True and body["tool_choice"] == "auto"
    assert body["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}]
    assert body["prompt_cache_key"] == agent.session.conversation_id


async def test_request_body_shape_with_reasoning(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(text_reply("ok"))
    await make_agent(reasoning_effort="medium").ask("hello")
    body = server.requests[0].json
    assert list(body) == [*KEY_ORDER, "include", "prompt_cache_key"]
    assert body["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]


async def test_reasoning_summary_none_is_omitted(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(text_reply("ok"))
    await make_agent(reasoning_effort="low", reasoning_summary=None).ask("hello")
    assert server.requests[0].json["reasoning"] == {"effort": "low"}


async def test_request_headers(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(text_reply("ok"))
    agent = make_agent()
    turn = await agent.ask("hello")
    req = server.requests[0]
    assert req.method == "POST" and req.path == "/v1/responses"
    h = req.headers
    assert h["accept"] == "text/event-stream" and h["content-type"] == "application/json"
    assert h["authorization"] == f"Bearer {API_KEY}"
    assert h["session_id"] == agent.session.conversation_id
    assert h["originator"] == "jupyter_agent"
    assert h["user-agent"].startswith("jupyter_agent/")
    assert json.loads(h["x-codex-turn-metadata"]) == {"turn_id": turn.id}
    assert "openai-beta" not in h and "x-codex-turn-state" not in h and "api-key" not in h


async def test_azure_store_true_and_ids_reattached(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(function_call_reply("lookup", '{"q":"x"}', call_id="call_9", preamble="Looking it up."))
    server.add_response(text_reply("done", phase="final_answer"))

    def lookup(q: str) -> str:
        return "found"

    agent = make_agent(provider="azure", tools=[lookup])
    turn = await agent.ask("hello")
    assert turn.status == "completed"
    first, second = (r.json for r in server.requests)
    assert first["store"] is True and second["store"] is True
    assert server.requests[0].headers["api-key"] == API_KEY and "authorization" not in server.requests[0].headers
    replayed = [i for i in second["input"] if i.get("type") in ("message", "function_call") and i.get("role") != "user"]
    assert [i["type"] for i in replayed] == ["message", "function_call"]
    assert all(i["id"].startswith(("msg_", "fc_")) for i in replayed)
    assert replayed[0]["phase"] == "commentary"


async def test_non_azure_ids_are_never_sent(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(function_call_reply("lookup", '{"q":"x"}', preamble="Looking it up."))
    server.add_response(text_reply("done"))

    def lookup(q: str) -> str:
        return "found"

    await make_agent(tools=[lookup]).ask("hello")
    second = server.requests[1].json
    assert second["store"] is False
    assert all("id" not in i for i in second["input"])


async def test_failed_request_bodies_carry_no_secret(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(failed_reply("invalid_prompt", "bad"))
    agent = make_agent()
    turn = await agent.ask("hi")
    assert turn.status == "failed"
    assert API_KEY not in server.requests[0].body.decode()
    assert_no_secret(agent.history)
    assert API_KEY not in repr(agent.resolved_provider()) and API_KEY not in repr(agent.session.provider.api_key)


# --- robustness: compressed bodies, echoed secrets ----------------------------------------------


async def test_gzip_encoded_stream_is_decoded(server: ScriptedServer) -> None:
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in (MSG_2, COMPLETED))
    reply = Reply(headers={"Content-Encoding": "gzip"}, events=[Raw(gzip.compress(body))])
    events, error = await collect(server, reply)
    assert error is None
    assert [type(e) for e in wire(events)] == [R.OutputItemDone, R.ResponseCompleted]


async def test_gzip_encoded_error_body_is_decoded(server: ScriptedServer) -> None:
    body = json.dumps(
        {"error": {"message": "Model does not support image inputs", "type": "invalid_request_error"}}
    ).encode()
    reply = Reply(
        status=400, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}, body=gzip.compress(body)
    )
    _, error = await collect(server, reply)
    assert isinstance(error, E.InvalidRequest) and error.message == "Model does not support image inputs"


async def test_server_echoing_the_key_is_redacted(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(error_reply(500, "x", type="server_error"))  # the Retry reason is checked too
    server.add_response(error_reply(400, f"Bad key {API_KEY} in request", type="invalid_request_error"))
    agent = make_agent(max_retries=1)
    turn = await agent.ask("hi")
    assert turn.status == "failed"
    [error] = of_type(turn.events, ev.Error)
    assert error.message.startswith("Bad key ") and error.message.endswith(" in request")
    assert API_KEY not in (turn.error or "")
    assert_no_secret([e.to_dict() for e in turn.events])


# --- servers that do not stream ------------------------------------------------------------------


async def test_complete_json_response_is_accepted(server: ScriptedServer, make_agent: Any) -> None:
    body = {
        "id": "resp_json",
        "object": "response",
        "status": "completed",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc"},
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "phase": "final_answer",
                "content": [{"type": "output_text", "text": "Not streamed."}],
            },
        ],
        "usage": USAGE,
    }
    server.add_response(Reply(body=body))
    agent = make_agent()
    turn = await agent.ask("hi")
    assert turn.status == "completed" and turn.text == "Not streamed."
    assert [(m.text, m.phase) for m in of_type(turn.events, ev.MessageDone)] == [("Not streamed.", "final_answer")]
    assert of_type(turn.events, ev.UsageEvent)[0].usage.total_tokens == 13
    assert [h["type"] for h in agent.history] == ["message", "reasoning", "message"]


async def test_complete_json_incomplete_and_error_bodies(server: ScriptedServer) -> None:
    body = {"id": "r", "status": "incomplete", "output": [], "incomplete_details": {"reason": "content_filter"}}
    _, error = await collect(server, Reply(body=body))
    assert error is not None and error.message == "Incomplete response returned, reason: content_filter"
    _, error = await collect(server, Reply(body={"error": {"code": "insufficient_quota", "message": "q"}}))
    assert isinstance(error, E.QuotaExceeded)


async def test_html_page_is_a_clear_non_retryable_error(server: ScriptedServer, make_agent: Any) -> None:
    server.add_response(Reply(body="<html><body>Welcome to nginx!</body></html>", content_type="text/html"))
    turn = await make_agent(max_retries=3).ask("hi")
    assert turn.status == "failed" and len(server.requests) == 1
    [error] = of_type(turn.events, ev.Error)
    assert error.code == "not_an_event_stream" and "text/html" in error.message and server.base_url in error.message


async def test_redirect_is_an_unexpected_status(server: ScriptedServer) -> None:
    _, error = await collect(
        server, Reply(status=307, headers={"location": "https://elsewhere.example/v1/responses"}, body="")
    )
    assert isinstance(error, E.StreamError) and error.status == 307 and "307" in error.message


@pytest.mark.parametrize(
    ("reply", "cls", "retryable", "needle"),
    [
        (
            error_reply(429, "You exceeded your current quota", type="insufficient_quota", code="insufficient_quota"),
            E.QuotaExceeded,
            False,
            "Quota exceeded",
        ),
        (
            error_reply(403, "Project does not have access to model gpt-5", type="invalid_request_error"),
            E.InvalidRequest,
            False,
            "does not have access",
        ),
        (
            error_reply(404, "The model gpt-6 does not exist", type="invalid_request_error", code="model_not_found"),
            E.InvalidRequest,
            False,
            "does not exist",
        ),
        (Reply(status=404, body=""), E.InvalidRequest, False, "check the base URL"),
        (
            error_reply(400, "maximum context length exceeded", code="context_length_exceeded"),
            E.ContextWindowExceeded,
            False,
            "context length",
        ),
        (
            error_reply(500, "boom", type="server_error", headers={"retry-after": "0.05"}),
            E.StreamError,
            True,
            "high demand",
        ),
    ],
)
async def test_more_statuses(server: ScriptedServer, reply: Reply, cls: type, retryable: bool, needle: str) -> None:
    _, error = await collect(server, reply)
    assert type(error) is cls and error.retryable is retryable
    assert needle in error.message
    if reply.status == 500:
        assert error.delay == pytest.approx(0.05)


async def test_reasoning_deltas_reach_the_agent(server: ScriptedServer, make_agent: Any) -> None:
    reply = text_reply("Answer")
    reply.events[1:1] = [
        {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "summary_index": 0},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 0, "delta": "Think"},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 1, "delta": "More"},
        {"type": "response.reasoning_text.delta", "item_id": "rs_1", "content_index": 2, "delta": "raw"},
    ]
    server.add_response(reply)
    turn = await make_agent().ask("hi")
    got = [(r.kind, r.index, r.delta, r.item_id) for r in of_type(turn.events, ev.ReasoningDelta)]
    assert got == [("summary", 0, "Think", "rs_1"), ("summary", 1, "More", "rs_1"), ("content", 2, "raw", "rs_1")]
    assert turn.text == "Answer"
