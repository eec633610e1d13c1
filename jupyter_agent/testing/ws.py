"""Server side of one WebSocket connection, on our own asyncio streams (websockets sans-I/O)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed, InvalidState
from websockets.frames import Frame, Opcode
from websockets.protocol import SEND_EOF, State
from websockets.server import ServerProtocol

__all__ = ["ServerWebSocket"]

_CLOSED = object()


class ServerWebSocket:
    """An accepted server-side WebSocket.

    ``await recv()`` returns the next message (``str`` for text, ``bytes`` for binary) and raises
    `websockets.exceptions.ConnectionClosed` once the connection is closed; ``await send(msg)``;
    ``await close(code, reason)``; ``.closed``; ``await wait_closed()``. Pings are answered.
    """

    def __init__(
        self,
        proto: ServerProtocol,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_message: Callable[[str | bytes], None] | None = None,
        on_pong: Callable[[bytes], None] | None = None,
    ) -> None:
        self._proto = proto
        self._reader = reader
        self._writer = writer
        self._on_message = on_message
        self._on_pong = on_pong
        self._incoming: asyncio.Queue[object] = asyncio.Queue()
        self._done = asyncio.Event()
        self._frag: list[bytes] = []
        self._frag_op: Opcode | None = None
        self._pump = asyncio.get_running_loop().create_task(self._run_pump())

    # ------------------------------------------------------------------ public API

    @property
    def closed(self) -> bool:
        """True once a close frame was exchanged or the TCP connection ended."""
        return self._done.is_set() or self._proto.state is not State.OPEN

    @property
    def close_code(self) -> int | None:
        """Close code received from the client (else the one sent), None if no close frame."""
        p = self._proto
        if p.close_rcvd is not None:
            return p.close_rcvd.code
        return p.close_sent.code if p.close_sent is not None else None

    async def recv(self) -> str | bytes:
        """Next message; raises ConnectionClosed when the connection is closed."""
        item = await self._incoming.get()
        if item is _CLOSED:
            self._incoming.put_nowait(_CLOSED)  # later recv() calls raise too
            raise self._close_exc()
        assert isinstance(item, (str, bytes))
        return item

    async def send(self, message: str | bytes) -> None:
        """Send a text (str) or binary (bytes) message."""
        try:
            if isinstance(message, str):
                self._proto.send_text(message.encode())
            else:
                self._proto.send_binary(message)
        except InvalidState:
            raise self._close_exc() from None
        await self._flush()

    async def ping(self, data: bytes = b"ping") -> None:
        """Send a ping control frame; the pong is reported to ``on_pong``."""
        try:
            self._proto.send_ping(data)
        except InvalidState:
            raise self._close_exc() from None
        await self._flush()

    async def send_raw_text(self, payload: bytes) -> None:
        """Send a text frame with an arbitrary (possibly invalid UTF-8) payload."""
        try:
            self._proto.send_text(payload)
        except InvalidState:
            raise self._close_exc() from None
        await self._flush()

    async def close(self, code: int = 1000, reason: str = "", timeout: float = 1.0) -> None:
        """Start the closing handshake and wait (bounded) for the TCP connection to end."""
        if self._proto.state is State.OPEN:
            with contextlib.suppress(Exception):
                self._proto.send_close(code, reason)
                await self._flush()
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except TimeoutError:
            pass
        await self.abort()

    async def wait_closed(self) -> None:
        """Wait until the connection ended (client close, EOF, or `close`)."""
        await self._done.wait()

    async def abort(self) -> None:
        """Drop the TCP connection without a closing handshake."""
        if not self._writer.is_closing():
            self._writer.close()
        if not self._pump.done() and self._pump is not asyncio.current_task():
            self._pump.cancel()
            with contextlib.suppress(BaseException):
                await self._pump
        self._finish()

    # ------------------------------------------------------------------ internals

    def _close_exc(self) -> ConnectionClosed:
        self._mark_closed()
        return self._proto.close_exc

    def _mark_closed(self) -> None:
        if self._proto.state is not State.CLOSED:
            with contextlib.suppress(Exception):
                self._proto.receive_eof()
            self._proto.data_to_send()
            if self._proto.state is not State.CLOSED:
                self._proto.state = State.CLOSED

    def _finish(self) -> None:
        self._mark_closed()
        if not self._done.is_set():
            self._done.set()
            self._incoming.put_nowait(_CLOSED)

    async def _flush(self) -> None:
        for chunk in self._proto.data_to_send():
            if chunk is SEND_EOF or chunk == b"":
                if not self._writer.is_closing():
                    with contextlib.suppress(Exception):
                        if self._writer.can_write_eof():
                            self._writer.write_eof()
                continue
            if self._writer.is_closing():
                raise ConnectionResetError("websocket transport closed")
            self._writer.write(chunk)
        try:
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise ConnectionResetError(str(exc)) from exc

    async def _run_pump(self) -> None:
        try:
            while True:
                data = await self._reader.read(65536)
                if data:
                    self._proto.receive_data(data)
                else:
                    self._proto.receive_eof()
                for ev in self._proto.events_received():
                    if isinstance(ev, Frame):  # after the handshake only frames arrive
                        self._on_frame(ev.opcode, bytes(ev.data), ev.fin)
                with contextlib.suppress(ConnectionError):
                    await self._flush()
                if not data or self._proto.state is State.CLOSED or self._proto.eof_sent:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._finish()

    def _on_frame(self, opcode: Opcode, data: bytes, fin: bool) -> None:
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            self._frag_op = opcode
            self._frag = [bytes(data)]
        elif opcode is Opcode.CONT:
            self._frag.append(bytes(data))
        else:
            if opcode is Opcode.PONG and self._on_pong is not None:
                self._on_pong(bytes(data))
            return
        if not fin:
            return
        payload = b"".join(self._frag)
        self._frag = []
        msg: str | bytes = payload.decode("utf-8", "replace") if self._frag_op is Opcode.TEXT else payload
        if self._on_message is not None:
            self._on_message(msg)
        self._incoming.put_nowait(msg)


def now() -> float:
    """Wall-clock timestamp used in records."""
    return time.time()
