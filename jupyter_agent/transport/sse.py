"""HTTP + Server-Sent Events transport for ``POST {base}/responses``.

``SseDecoder`` is an incremental WHATWG-style decoder (CR, LF and CRLF line ends, also split
across chunks; ``:`` comments; several ``data:`` lines joined with ``\\n``; the ``event:`` name
is ignored because the JSON ``type`` is the discriminator; a leading BOM is skipped; a long line
arriving in many chunks is joined once). ``SseTransport`` posts the request with httpx, reads the
response headers first, then validates each event's JSON once. Bodies are content-decoded (gzip
from proxies); a complete JSON Responses body (a server that ignored ``stream``) yields the same
events, and an HTML or other JSON 200 is a non-retryable "not an event stream" error.

Hostile streams are bounded (issue 15): `SseLimits` caps one line/event and the decompressed body
(gzip/deflate are inflated here in bounded pieces, so a 1 MiB gzip bomb never becomes 1 GiB in
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
from dataclasses import dataclass
from typing import Any

import httpx

from ..protocol import errors as E
from ..protocol.responses import ResponseError, parse_event, parse_event_dict
from .base import ResponseHeaders, StreamState, Transport
from .failures import log_detail, plain

MAX_ERROR_BODY = 64 * 1024
MAX_JSON_BODY = 32 * 1024 * 1024
_NOT_A_STREAM = frozenset({"application/json", "text/html"})
#: Largest piece handed to the decoder when inflating: bounds the memory one compressed chunk can claim.
INFLATE_PIECE = 64 * 1024
_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SseLimits:
    """What one SSE response may make the client hold (issue 15 item 2).

    ``max_event_bytes`` (default 32 MiB) caps one line and one event's joined ``data`` (the largest
    legitimate events are whole responses in ``response.completed``; a 10 MB text delta passes).
    ``max_body_bytes`` (default 512 MiB) caps the decoded body of one response, compressed or not.
    Past either, the attempt fails with ``StreamTooLarge`` (not retried).
    """

    max_event_bytes: int = 32 * _MIB
    max_body_bytes: int = 512 * _MIB


DEFAULT_LIMITS = SseLimits()


class SseLimitExceeded(ValueError):
    """Raised by `SseDecoder` when a line or an event exceeds ``max_event_bytes``."""


class SseDecoder:
    """Bytes in, complete event ``data`` payloads (bytes) out; a line or event over ``max_event_bytes`` raises."""

    __slots__ = ("_parts", "_parts_len", "_data", "_data_len", "_pending_cr", "_started", "max_event_bytes")

    def __init__(self, max_event_bytes: int = DEFAULT_LIMITS.max_event_bytes) -> None:
        #: Pieces of the current incomplete line, joined once the line ends (a long line
        #: arriving in many chunks costs linear time, not quadratic).
        self._parts: list[bytes] = []
        self._parts_len = 0
        self._data: list[bytes] = []
        self._data_len = 0
        self._pending_cr = False
        self._started = False
        self.max_event_bytes = max_event_bytes

    def _too_large(self, what: str) -> SseLimitExceeded:
        self._parts.clear()
        self._data.clear()
        self._parts_len = self._data_len = 0
        return SseLimitExceeded(f"{what} larger than {self.max_event_bytes} bytes")

    def feed(self, chunk: bytes) -> list[bytes]:
        if not self._started and chunk:
            self._started = True
            if chunk.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM before the first line is ignored
                chunk = chunk[3:]
        if self._pending_cr:
            chunk = b"\r" + chunk
            self._pending_cr = False
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                # A CR at the end may be half of a CRLF split across chunks.
                chunk = chunk[:-1]
                self._pending_cr = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        limit = self.max_event_bytes
        if end < 0:
            if chunk:
                self._parts_len += len(chunk)
                if self._parts_len > limit:
                    raise self._too_large("a line")
                self._parts.append(chunk)
            return []
        head, tail = chunk[:end], chunk[end + 1 :]
        if self._parts:
            self._parts.append(head)
            head = b"".join(self._parts)
            self._parts.clear()
        self._parts_len = len(tail)
        if tail:
            if self._parts_len > limit:
                raise self._too_large("a line")
            self._parts.append(tail)
        lines = head.split(b"\n")
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    out.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data.clear()
                    self._data_len = 0
                continue
            if len(line) > limit:
                raise self._too_large("a line")
            if line.startswith(b"data:"):
                value = line[5:]
                self._data_len += len(value)
                if self._data_len > limit:
                    raise self._too_large("an event")
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b":"):
                continue
            elif line == b"data":
                data.append(b"")
            # event:, id:, retry: and unknown fields carry nothing the client needs.
        return out

    def flush(self) -> list[bytes]:
        """End of stream: a final event without the blank line is still dispatched."""
        out = self.feed(b"\n\n") if (self._parts or self._data or self._pending_cr) else []
        self._parts.clear()
        self._pending_cr = False
        self._data.clear()
        self._parts_len = self._data_len = 0
        return out


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


def _too_large(detail: str, limits: SseLimits) -> E.StreamTooLarge:
    return E.StreamTooLarge(
        f"The server sent more than this client accepts ({detail}; limits: {_size(limits.max_event_bytes)} "
        f"per event, {_size(limits.max_body_bytes)} per response), so the response was stopped."
    )


def _size(n: int) -> str:
    return f"{n // _MIB} MiB" if n >= _MIB and n % _MIB == 0 else f"{n} bytes"


async def decoded_body(response: httpx.Response, max_bytes: int) -> AsyncIterator[bytes]:
    """The response body, content-decoded in pieces of at most ``INFLATE_PIECE`` bytes.

    gzip and deflate are inflated here with ``max_length`` so one compressed chunk (up to ~1000:1)
    never expands into memory at once; other encodings (br, zstd) go through httpx. More than
    ``max_bytes`` decoded raises `StreamTooLarge`; corrupt data raises ``zlib.error``/``httpx.DecodingError``.
    """
    encoding = response.headers.get("content-encoding", "").strip().lower()
    total = 0
    if encoding not in ("gzip", "x-gzip", "deflate"):
        source = response.aiter_raw() if encoding in ("", "identity") else response.aiter_bytes()
        async for chunk in source:
            total += len(chunk)
            if total > max_bytes:
                raise _too_large(f"a body over {max_bytes} bytes", SseLimits(max_body_bytes=max_bytes))
            yield chunk
        return
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    first = True
    async for raw in response.aiter_raw():
        data = raw
        while data:
            try:
                piece = inflater.decompress(data, INFLATE_PIECE)
            except zlib.error:
                if not (first and encoding == "deflate"):
                    raise
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # some servers send raw deflate
                piece = inflater.decompress(data, INFLATE_PIECE)
            first = False
            data = inflater.unconsumed_tail
            total += len(piece)
            if total > max_bytes:
                raise _too_large(f"a decompressed body over {max_bytes} bytes", SseLimits(max_body_bytes=max_bytes))
            if piece:
                yield piece
            if inflater.eof:
                break
    tail = inflater.flush()
    if tail:
        yield tail


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
