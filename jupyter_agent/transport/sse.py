"""HTTP + Server-Sent Events transport for ``POST {base}/responses``.

``SseDecoder`` is an incremental WHATWG-style decoder (CR, LF and CRLF line ends, also split
across chunks; ``:`` comments; several ``data:`` lines joined with ``\\n``; the ``event:`` name
is ignored because the JSON ``type`` is the discriminator; a leading BOM is skipped; a long line
arriving in many chunks is joined once). ``SseTransport`` posts the request with httpx, reads the
response headers first, then validates each event's JSON once. Bodies are content-decoded (gzip
from proxies); a complete JSON Responses body (a server that ignored ``stream``) yields the same
events, and an HTML or other JSON 200 is a non-retryable "not an event stream" error.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ..protocol import errors as E
from ..protocol.responses import ResponseError, parse_event, parse_event_dict
from .base import ResponseHeaders, StreamState, Transport

MAX_ERROR_BODY = 64 * 1024
MAX_JSON_BODY = 32 * 1024 * 1024
_NOT_A_STREAM = frozenset({"application/json", "text/html"})


class SseDecoder:
    """Bytes in, complete event ``data`` payloads (bytes) out."""

    __slots__ = ("_parts", "_data", "_pending_cr", "_started")

    def __init__(self) -> None:
        #: Pieces of the current incomplete line, joined once the line ends (a long line
        #: arriving in many chunks costs linear time, not quadratic).
        self._parts: list[bytes] = []
        self._data: list[bytes] = []
        self._pending_cr = False
        self._started = False

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
        if end < 0:
            if chunk:
                self._parts.append(chunk)
            return []
        head, tail = chunk[:end], chunk[end + 1 :]
        if self._parts:
            self._parts.append(head)
            head = b"".join(self._parts)
            self._parts.clear()
        if tail:
            self._parts.append(tail)
        lines = head.split(b"\n")
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    out.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data.clear()
                continue
            if line.startswith(b"data:"):
                value = line[5:]
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
        return out


class SseTransport(Transport):
    """One POST per request; the stream ends at the first completion."""

    name = "sse"

    def __init__(self, client: httpx.AsyncClient, url: str, *, metrics: Any | None = None) -> None:
        self._client = client
        self._url = url
        self._metrics = metrics

    async def stream(self, body: dict[str, Any], headers: dict[str, str], *, idle_timeout: float) -> AsyncIterator[Any]:
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        request = self._client.build_request(
            "POST",
            self._url,
            content=payload,
            headers={**headers, "Accept": "text/event-stream", "Content-Type": "application/json"},
            timeout=httpx.Timeout(connect=15.0, read=idle_timeout, write=30.0, pool=30.0),
        )
        started = time.perf_counter()
        try:
            response = await self._client.send(request, stream=True)
        except httpx.ReadTimeout:
            raise E.IdleTimeout("idle timeout waiting for SSE") from None  # no response headers in time
        except httpx.TimeoutException as exc:
            raise E.StreamError(f"timeout connecting to {self._url}: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            raise E.StreamError(f"connection to {self._url} failed: {_describe(exc)}") from None
        if self._metrics is not None:
            self._metrics.record_api_call(time.perf_counter() - started, response.status_code < 400)
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
            decoder = SseDecoder()
            state = StreamState()
            stream = response.aiter_bytes()  # decoded: proxies may gzip the event stream
            while True:
                waited = time.perf_counter()
                try:
                    chunk = await stream.__anext__()
                except StopAsyncIteration:
                    break
                except httpx.ReadTimeout:
                    raise E.IdleTimeout("idle timeout waiting for SSE") from None
                except httpx.TransportError as exc:
                    raise E.StreamError(f"stream disconnected before completion: {_describe(exc)}") from None
                for data in decoder.feed(chunk):
                    event = parse_event(data)
                    if event is None:
                        continue
                    if self._metrics is not None:
                        self._metrics.record_sse_event(time.perf_counter() - waited)
                    model = state.server_model(event)
                    if model is not None:
                        yield model
                    yield event
                    if state.check_terminal(event):
                        return
            for data in decoder.flush():
                event = parse_event(data)
                if event is None:
                    continue
                model = state.server_model(event)
                if model is not None:
                    yield model
                yield event
                if state.check_terminal(event):
                    return
            raise state.end_of_stream()
        finally:
            await _close_quietly(response)


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
        async for chunk in response.aiter_bytes():
            out += chunk
            if len(out) >= limit:
                break
    except httpx.TransportError:
        pass
    return bytes(out[:limit])


async def _close_quietly(response: httpx.Response) -> None:
    try:
        await asyncio.shield(response.aclose())
    except BaseException:  # noqa: BLE001 - closing must never mask the real outcome
        pass


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]
