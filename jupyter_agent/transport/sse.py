"""HTTP + Server-Sent Events transport for ``POST {base}/responses``.

``SseTransport`` posts the request with httpx, reads the response headers first, then validates
each event's JSON once. Framing and body decoding (gzip from proxies) live in :mod:`.sse_decoding`
(``SseDecoder``, ``decoded_body``); a complete JSON Responses body (a server that ignored ``stream``) yields the same
events, and an HTML or other JSON 200 is a non-retryable "not an event stream" error.

Hostile streams are bounded (issue 15): `SseLimits` caps one line/event and the decompressed body
(gzip/deflate are inflated in bounded pieces, so a 1 MiB gzip bomb never becomes 1 GiB in
memory); a corrupt compressed body is a retryable stream failure; the idle timeout runs per *event*
(spec §3.4), so a server dribbling one byte at a time cannot keep a turn alive; an optional absolute
``deadline`` bounds the whole turn. Errors shown to users are plain language (``failures.plain``),
the library's text goes to the log.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ..protocol import errors as E
from ..protocol.responses import ResponseError, parse_event, parse_event_dict
from .base import ResponseHeaders, StreamState, Transport
from .failures import log_detail, plain
from .sse_decoding import (
    DEFAULT_LIMITS,
    INFLATE_PIECE,
    SseDecoder,
    SseLimitExceeded,
    SseLimits,
    _too_large,
    decoded_body,
)

__all__ = [
    "DEFAULT_LIMITS",
    "INFLATE_PIECE",
    "SseDecoder",
    "SseLimitExceeded",
    "SseLimits",
    "SseTransport",
    "decoded_body",
]

MAX_ERROR_BODY = 64 * 1024
MAX_JSON_BODY = 32 * 1024 * 1024
_NOT_A_STREAM = frozenset({"application/json", "text/html"})


class SseTransport(Transport):
    """One POST per request; the stream ends at the first completion."""

    name = "sse"

    def __init__(
        self, client: httpx.AsyncClient, url: str, *, metrics: Any | None = None, limits: SseLimits = DEFAULT_LIMITS
    ) -> None:
        self._client = client
        self._url = url
        self._metrics = metrics
        self._limits = limits

    async def stream(
        self, body: dict[str, Any], headers: dict[str, str], *, idle_timeout: float, deadline: float | None = None
    ) -> AsyncIterator[Any]:
        """Post ``body`` and yield its events. ``idle_timeout`` bounds the wait for each *event*
        (spec §3.4); ``deadline`` (event-loop clock) optionally bounds the whole attempt."""
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        request = self._client.build_request(
            "POST",
            self._url,
            content=payload,
            headers={**headers, "Accept": "text/event-stream", "Content-Type": "application/json"},
            timeout=httpx.Timeout(connect=15.0, read=_read_timeout(idle_timeout, deadline), write=30.0, pool=30.0),
        )
        clock = asyncio.get_running_loop().time
        response = await self._send(request, deadline)
        try:
            if response.status_code >= 300:
                body_bytes = await _read_bounded(response, MAX_ERROR_BODY)
                raise E.from_http_status(response.status_code, response.headers, body_bytes, url=self._url)
            yield ResponseHeaders.from_http(response.headers)
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype in _NOT_A_STREAM:
                # A server that ignored "stream": true (or a wrong base URL serving a web page).
                body_bytes = await _read_bounded(response, MAX_JSON_BODY)
                for event in _events_from_body(ctype, body_bytes, self._url):
                    yield event
                return
            decoder = SseDecoder(self._limits.max_event_bytes)
            state = StreamState()
            encoding = response.headers.get("content-encoding", "").strip().lower()
            plain_body = encoding in ("", "identity")
            # Proxies may gzip the event stream; an identity body is read without the extra generator.
            stream = response.aiter_raw() if plain_body else decoded_body(response, self._limits.max_body_bytes)
            body_bytes_seen = 0
            # Idle timeout per *event* (spec §3.4): the time spent waiting on the server since the last
            # event (not the consumer's time), checked as bytes arrive; total silence trips httpx's read
            # timeout. No timer per read: this loop is the throughput path.
            idle = 0.0
            while True:
                waited = time.perf_counter()
                try:
                    chunk = await stream.__anext__()
                    arrived = time.perf_counter()
                    idle += arrived - waited
                    if idle > idle_timeout:
                        raise E.IdleTimeout("idle timeout waiting for SSE")
                    if deadline is not None and clock() >= deadline:
                        raise _deadline_passed()
                    if plain_body:
                        body_bytes_seen += len(chunk)
                        if body_bytes_seen > self._limits.max_body_bytes:
                            raise _too_large(f"a body over {self._limits.max_body_bytes} bytes", self._limits)
                    events = decoder.feed(chunk)
                except StopAsyncIteration:
                    break
                except (
                    httpx.ReadTimeout,
                    SseLimitExceeded,
                    httpx.TransportError,
                    httpx.DecodingError,
                    zlib.error,
                ) as exc:
                    raise self._read_failure(exc, deadline) from None
                for data in events:
                    event = parse_event(data)
                    if event is None:
                        continue
                    idle = 0.0
                    if self._metrics is not None:
                        self._metrics.record_sse_event(time.perf_counter() - waited)
                    model = state.server_model(event)
                    if model is not None:
                        yield model
                    yield event
                    if state.check_terminal(event):
                        return
            try:
                tail = decoder.flush()
            except SseLimitExceeded as exc:
                raise _too_large(str(exc), self._limits) from None
            for event in _parsed(tail):
                model = state.server_model(event)
                if model is not None:
                    yield model
                yield event
                if state.check_terminal(event):
                    return
            raise state.end_of_stream()
        finally:
            await _close_quietly(response)

    async def _send(self, request: httpx.Request, deadline: float | None) -> httpx.Response:
        """Send the request; connection failures become plain-language ``AgentError``s (issue 15)."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client.send(request, stream=True)
        except TimeoutError:
            raise _deadline_passed() from None
        except httpx.ReadTimeout:
            raise E.IdleTimeout("idle timeout waiting for SSE") from None  # no response headers in time
        except httpx.TimeoutException as exc:
            log_detail(f"connecting to {self._url}", exc)
            raise E.StreamError(f"timeout connecting to {self._url}: {plain(exc)}") from None
        except httpx.TransportError as exc:
            log_detail(f"connecting to {self._url}", exc)
            raise E.StreamError(f"connection to {self._url} failed: {plain(exc)}") from None
        if self._metrics is not None:
            self._metrics.record_api_call(time.perf_counter() - started, response.status_code < 400)
        return response

    def _read_failure(self, exc: Exception, deadline: float | None) -> E.AgentError:
        """What a failed read of the event stream means for the user (spec §3.4, issue 15)."""
        if isinstance(exc, httpx.ReadTimeout):
            if deadline is not None and asyncio.get_running_loop().time() >= deadline:
                return _deadline_passed()
            return E.IdleTimeout("idle timeout waiting for SSE")
        if isinstance(exc, SseLimitExceeded):
            return _too_large(str(exc), self._limits)
        log_detail("reading the event stream", exc)
        return E.StreamError(f"stream disconnected before completion: {plain(exc)}")


def _parsed(payloads: list[Any]) -> list[Any]:
    """The events among decoded payloads (``parse_event`` gives None for what is not one)."""
    return [event for event in map(parse_event, payloads) if event is not None]


def _read_timeout(idle_timeout: float, deadline: float | None) -> float:
    """httpx's per-read timeout: the idle timeout, or less when the turn deadline comes first."""
    if deadline is None:
        return idle_timeout
    return max(0.001, min(idle_timeout, deadline - asyncio.get_running_loop().time()))


def _deadline_passed() -> E.TurnDeadline:
    return E.TurnDeadline("The turn took longer than its deadline (turn_timeout) and was stopped.")


def _events_from_body(ctype: str, body: bytes, url: str) -> list[Any]:
    """A complete (non-streamed) Responses JSON body as the events a stream would have carried."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        raise E.from_failed_response(ResponseError.model_validate(data["error"]))
    if not (isinstance(data, dict) and isinstance(data.get("output"), list) and data.get("id")):
        raise E.AgentError(
            f"The server at {url} did not answer with an event stream (Content-Type: {ctype}). "
            "Check the base URL: it should be a Responses API endpoint such as https://api.openai.com/v1.",
            code="not_an_event_stream",
        )
    events: list[Any] = [
        parse_event_dict({"type": "response.output_item.done", "item": item})
        for item in data["output"]
        if isinstance(item, dict)
    ]
    status = data.get("status")
    terminal = {"failed": "response.failed", "incomplete": "response.incomplete"}.get(str(status), "response.completed")
    events.append(parse_event_dict({"type": terminal, "response": data}))
    state = StreamState()
    out = []
    for event in events:
        if event is None:
            continue
        out.append(event)
        if state.check_terminal(event):
            return out
    raise state.end_of_stream()


async def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    out = bytearray()
    try:
        async for chunk in decoded_body(response, DEFAULT_LIMITS.max_body_bytes):
            out += chunk
            if len(out) >= limit:
                break
    except (httpx.TransportError, httpx.DecodingError, zlib.error, E.StreamTooLarge):
        pass  # an error body or a non-stream body is read best-effort, bounded by ``limit``
    return bytes(out[:limit])


async def _close_quietly(response: httpx.Response) -> None:
    try:
        await asyncio.shield(response.aclose())
    except BaseException:  # noqa: BLE001 - closing must never mask the real outcome
        pass
