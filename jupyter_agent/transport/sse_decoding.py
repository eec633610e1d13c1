"""Framing and decoding of an SSE response body, bounded (issue 15 item 2).

``SseDecoder`` is an incremental WHATWG-style decoder (CR, LF and CRLF line ends, also split across
chunks; ``:`` comments; several ``data:`` lines joined with ``\\n``; the ``event:`` name is ignored
because the JSON ``type`` is the discriminator; a leading BOM is skipped; a long line arriving in
many chunks is joined once). ``decoded_body`` content-decodes a body, inflating gzip/deflate in
bounded pieces. ``SseLimits`` says how much one event and one body may be.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from ..protocol import errors as E

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
