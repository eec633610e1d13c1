"""`ScriptedServer`: a real HTTP/1.1 + WebSocket server on 127.0.0.1 that replays scripted replies.

It runs its own asyncio loop in a daemon thread, so it can be used from sync code, from
pytest-asyncio tests and from inside a Jupyter kernel. See the package docstring for the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Union

from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.server import ServerProtocol

from .compact import compact_reply
from .script import (
    Ev,
    Hang,
    Headers,
    Raw,
    RecordedRequest,
    Reply,
    Responder,
    Sleep,
    WsAccept,
    WsBinary,
    WsClose,
    WsConn,
    WsDrop,
    WsPing,
    WsRecord,
    encode_sse_event,
)
from .ws import ServerWebSocket

__all__ = ["ScriptedServer", "WsHandler", "PreAccept"]

log = logging.getLogger("jupyter_agent.testing")

WsHandler = Callable[[ServerWebSocket, RecordedRequest], Awaitable[None]]
PreAccept = Callable[[RecordedRequest], Union[WsAccept, dict[str, str], Awaitable[Any], None]]
RouteTarget = Union[Reply, Callable[[RecordedRequest], Reply]]

_MAX_HEAD = 64 * 1024
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}


@dataclass
class _WsRoute:
    prefix: str
    handler: WsHandler
    pre_accept: PreAccept | None
    headers: dict[str, str]


def _error_body(message: str, type_: str = "server_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


class ScriptedServer:
    """Scripted Responses server (HTTP+SSE and WebSocket on one port)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        responder: Responder | None = None,
    ) -> None:
        self.host = host
        self._want_port = port
        self.port: int = 0
        self.responder = responder
        self._lock = threading.RLock()  # reentrant: wait_for predicates may read the public records
        self._cond = threading.Condition(self._lock)
        self._replies: deque[Reply] = deque()
        self._ws_scripts: deque[WsConn] = deque()
        self._routes: dict[tuple[str, str], RouteTarget] = {}
        self._ws_routes: list[_WsRoute] = []
        self._requests: list[RecordedRequest] = []
        self._ws_records: list[WsRecord] = []
        #: Handshake answer for WebSocket connections served by ``responder`` (no script queued):
        #: e.g. ``WsAccept(delay=0.05, headers={"openai-model": "gpt-5"})``.
        self.ws_accept = WsAccept()
        self._errors: list[BaseException] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_evt: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ScriptedServer:
        """Bind and serve in a daemon thread; returns self once listening."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="scripted-responses-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("scripted server did not start")
        if self._start_error is not None:
            raise RuntimeError(f"scripted server failed to start: {self._start_error}") from self._start_error
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Close the listener and every connection (hung ones too) and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._stop_evt is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._stop_evt.set)
        thread.join(timeout)
        self._thread = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def ws_base_url(self) -> str:
        """``ws://127.0.0.1:PORT/v1``."""
        return f"ws://{self.host}:{self.port}/v1"

    def url(self, path: str = "/", scheme: str = "http") -> str:
        """Absolute URL of ``path`` on this server (``scheme="ws"`` for WebSocket URLs)."""
        if not path.startswith("/"):
            path = "/" + path
        return f"{scheme}://{self.host}:{self.port}{path}"

    # ------------------------------------------------------------------ scripting

    def add_response(self, reply: Reply) -> ScriptedServer:
        """Queue one reply for ``POST .../responses``."""
        with self._lock:
            self._replies.append(reply)
        return self

    def add_responses(self, *replies: Reply | Iterable[Reply]) -> ScriptedServer:
        """Queue several replies (varargs or one iterable)."""
        for r in replies:
            if isinstance(r, Reply):
                self.add_response(r)
            else:
                for x in r:
                    self.add_response(x)
        return self

    def add_replies_from_sse_file(
        self,
        path: str | Path,
        headers: dict[str, str] | None = None,
        *,
        status: int | None = None,
        use_recorded_headers: bool = False,
        **reply_kwargs: Any,
    ) -> Reply:
        """Queue a reply that replays a recorded ``.sse`` body byte-for-byte.

        ``use_recorded_headers`` also sends the sidecar ``.json``'s ``response_headers`` (minus
        hop-by-hop ones) and status; ``headers`` override them.
        """
        p = Path(path)
        data = p.read_bytes()
        hdrs: dict[str, str] = {}
        rec_status = 200
        side = p.with_suffix(".json")
        if use_recorded_headers and side.exists():
            meta = json.loads(side.read_text())
            rec_status = int(meta.get("response_status") or 200)
            for k, v in (meta.get("response_headers") or {}).items():
                if k.lower() not in _HOP_BY_HOP:
                    hdrs[k] = v if isinstance(v, str) else ", ".join(map(str, v))
        hdrs.update(headers or {})
        hdrs.setdefault("content-type", "text/event-stream; charset=utf-8")
        reply = Reply(status=status or rec_status, headers=hdrs, events=[Raw(data)], **reply_kwargs)
        self.add_response(reply)
        return reply

    def add_route(self, method: str, path: str, target: RouteTarget) -> ScriptedServer:
        """Serve ``method path`` (exact path; a trailing ``*`` makes it a prefix) with a `Reply`
        (replayed every time) or ``fn(RecordedRequest) -> Reply``."""
        with self._lock:
            self._routes[(method.upper(), path)] = target
        return self

    def add_ws_connection(self, conn: WsConn) -> ScriptedServer:
        """Queue one WebSocket connection script for the ``/responses`` endpoint."""
        with self._lock:
            self._ws_scripts.append(conn)
        return self

    def add_ws_connections(self, *conns: WsConn) -> ScriptedServer:
        """Queue several WebSocket connection scripts."""
        for c in conns:
            self.add_ws_connection(c)
        return self

    def add_ws_route(
        self,
        path_prefix: str,
        handler: WsHandler,
        *,
        pre_accept: PreAccept | None = None,
        headers: dict[str, str] | None = None,
    ) -> ScriptedServer:
        """Mount a WebSocket endpoint: upgrades whose path is ``path_prefix`` or below it (longest
        prefix wins, checked before the ``/responses`` scripts) are accepted and handed to
        ``await handler(ws, handshake)``. ``headers`` are added to every 101 response;
        ``pre_accept(handshake)`` (sync or async) may return a `WsAccept` (status/headers/body/delay;
        status != 101 refuses), a dict of extra headers, or None."""
        with self._lock:
            self._ws_routes.append(_WsRoute(path_prefix, handler, pre_accept, dict(headers or {})))
            self._ws_routes.sort(key=lambda r: len(r.prefix), reverse=True)
        return self

    @property
    def open_connections(self) -> int:
        """TCP connections currently being served (HTTP keep-alive and WebSocket)."""
        return sum(1 for t in list(self._tasks) if not t.done())

    @property
    def pending_replies(self) -> int:
        """Replies still queued for ``/responses``."""
        with self._lock:
            return len(self._replies)

    # ------------------------------------------------------------------ recording

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every HTTP request received, in order (WebSocket handshakes included)."""
        with self._lock:
            return list(self._requests)

    @property
    def api_requests(self) -> list[RecordedRequest]:
        """``requests`` without the client's context-window lookups (``GET .../models``, issue 14)."""
        return [r for r in self.requests if not (r.method == "GET" and r.path.endswith("/models"))]

    def find_requests(self, method: str | None = None, path_suffix: str | None = None) -> list[RecordedRequest]:
        """Recorded requests filtered by method and/or path suffix (``"/responses"``)."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and (path_suffix is None or r.path.endswith(path_suffix))
        ]

    @property
    def ws_connections(self) -> list[WsRecord]:
        """Every WebSocket handshake (refused ones too, with their ``status``), in order."""
        with self._lock:
            return list(self._ws_records)

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions raised inside the server (handlers, responders)."""
        with self._lock:
            return list(self._errors)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate()`` (evaluated under the recording lock) is true."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait for at least ``n`` recorded requests; raises TimeoutError otherwise."""
        if not self.wait_for(lambda: len(self._requests) >= n, timeout):
            raise TimeoutError(f"expected {n} requests, got {len(self._requests)}")
        return self.requests

    def wait_for_ws_connections(self, n: int, timeout: float = 5.0) -> list[WsRecord]:
        """Wait for at least ``n`` WebSocket handshakes; raises TimeoutError otherwise."""
        if not self.wait_for(lambda: len(self._ws_records) >= n, timeout):
            raise TimeoutError(f"expected {n} websocket connections, got {len(self._ws_records)}")
        return self.ws_connections

    def clear(self) -> None:
        """Forget queued scripts and recordings (routes stay)."""
        with self._lock:
            self._replies.clear()
            self._ws_scripts.clear()
            self._requests.clear()
            self._ws_records.clear()
            self._errors.clear()

    def _record(self, rec: RecordedRequest) -> None:
        with self._cond:
            self._requests.append(rec)
            self._cond.notify_all()

    def _record_ws(self, rec: WsRecord) -> None:
        with self._cond:
            self._ws_records.append(rec)
            self._cond.notify_all()

    def _on_ws_message(self, rec: WsRecord, msg: str | bytes) -> None:
        with self._cond:
            rec._add_message(msg)
            self._cond.notify_all()

    def _on_ws_pong(self, rec: WsRecord, data: bytes) -> None:
        with self._cond:
            rec.pongs.append(data)
            self._cond.notify_all()

    def _close_ws_record(self, rec: WsRecord, code: int | None) -> None:
        with self._cond:
            if rec.closed_at is None:
                rec.closed_at = time.time()
                rec.close_code = code
            rec._closed_evt.set()
            self._cond.notify_all()

    def _error(self, exc: BaseException) -> None:
        log.warning("scripted server: %r", exc)
        with self._cond:
            self._errors.append(exc)
            self._cond.notify_all()

    # ------------------------------------------------------------------ loop thread

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.set_exception_handler(self._loop_exception)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._start_error = exc
        finally:
            self._ready.set()
            leftover = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in leftover:
                t.cancel()
            if leftover:
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(asyncio.wait(leftover, timeout=0.2))
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        exc = ctx.get("exception")
        if isinstance(exc, (ConnectionError, asyncio.CancelledError)):
            return
        log.debug("scripted server loop: %s", ctx.get("message"), exc_info=exc)

    async def _serve(self) -> None:
        self._stop_evt = asyncio.Event()
        server = await asyncio.start_server(self._on_conn, self.host, self._want_port, limit=_MAX_HEAD)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop_evt.wait()
        finally:
            server.close()
            for w in list(self._writers):
                with contextlib.suppress(Exception):
                    w.transport.abort()
            tasks = [t for t in self._tasks if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=0.5)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 0.2)

    async def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._http_loop(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionClosed):
            pass
        except Exception as exc:  # noqa: BLE001 - never crash the server
            self._error(exc)
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    # ------------------------------------------------------------------ HTTP

    async def _http_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            except asyncio.LimitOverrunError:
                await self._write_simple(writer, 431, _error_body("request header too large"), False)
                return
            try:
                method, target, version, headers = _parse_head(head)
            except ValueError as exc:
                await self._write_simple(writer, 400, _error_body(f"bad request: {exc}"), False)
                return
            if method == "GET" and headers.get("upgrade", "").lower() == "websocket":
                await self._handle_ws(head, target, headers, reader, writer)
                return
            if headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await writer.drain()
            body = await _read_body(reader, headers)
            peer = writer.get_extra_info("peername")
            rec = RecordedRequest.build(method, target, headers, body, tuple(peer[:2]) if peer else None)
            self._record(rec)
            conn_hdr = headers.get("connection", "").lower()
            keep_alive = ("close" not in conn_hdr) if version == "HTTP/1.1" else ("keep-alive" in conn_hdr)
            reply = await self._pick_reply(rec)
            if not await self._send_reply(reader, writer, reply, keep_alive, method == "HEAD"):
                return

    async def _pick_reply(self, rec: RecordedRequest) -> Reply:
        with self._lock:
            target = self._routes.get((rec.method, rec.path))
            if target is None:
                for (m, p), t in self._routes.items():
                    if m == rec.method and p.endswith("*") and rec.path.startswith(p[:-1]):
                        target = t
                        break
            queued = None
            if target is None and rec.path.endswith("/responses") and rec.method == "POST" and self._replies:
                queued = self._replies.popleft()
        if queued is not None:
            return queued
        fn: Callable[[RecordedRequest], Any] | None = None
        if target is not None:
            if isinstance(target, Reply):
                return target
            fn = target
        elif rec.path.endswith("/responses/compact") and rec.method == "POST":
            fn = compact_reply  # the real endpoint's shape (openai-api.md §1.1); a route overrides it
        elif rec.path.endswith("/responses") and rec.method == "POST":
            if self.responder is None:
                return Reply(status=500, body=_error_body("scripted server: no reply left"))
            fn = self.responder
        else:
            return Reply(
                status=404, body=_error_body(f"scripted server: no route for {rec.method} {rec.path}", "not_found")
            )
        try:
            out = fn(rec)
            if inspect.isawaitable(out):
                out = await out
            if not isinstance(out, Reply):
                raise TypeError(f"responder returned {type(out).__name__}, expected Reply")
            return out
        except Exception as exc:  # noqa: BLE001 - a test responder bug becomes a 500 and is recorded
            self._error(exc)
            return Reply(status=500, body=_error_body(f"scripted server: responder failed: {exc!r}"))

    async def _write_simple(self, writer: asyncio.StreamWriter, status: int, body: Any, keep_alive: bool) -> None:
        await self._send_reply(None, writer, Reply(status=status, body=body), keep_alive, False)

    async def _send_reply(
        self,
        reader: asyncio.StreamReader | None,
        writer: asyncio.StreamWriter,
        reply: Reply,
        keep_alive: bool,
        head_only: bool,
    ) -> bool:
        """Write one reply; returns whether the connection may serve another request."""
        if reply.first_byte_delay:
            await asyncio.sleep(reply.first_byte_delay)
        fault = reply.fault
        if fault == "reset_before_first_byte":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if fault == "close_before_first_byte":
            writer.close()
            return False
        limit: int | None = None
        hang = False
        if isinstance(fault, tuple):
            kind, n = fault
            limit = int(n)
            hang = kind == "hang_after"
        slow = fault == "slow"

        hdrs = Headers(reply.headers)
        if "content-type" not in hdrs:
            hdrs["Content-Type"] = reply.default_content_type()
        streaming = reply.body is None
        chunked = streaming and reply.chunked
        if not streaming:
            payload = reply.body_bytes()
            hdrs["Content-Length"] = str(len(payload))
            hdrs.pop("transfer-encoding", None)
        elif chunked:
            hdrs["Transfer-Encoding"] = "chunked"
            hdrs.pop("content-length", None)
            hdrs.setdefault("Cache-Control", "no-cache")
        else:
            keep_alive = False
            hdrs.setdefault("Cache-Control", "no-cache")
        if not keep_alive:
            hdrs["Connection"] = "close"
        head = f"HTTP/1.1 {reply.status} {_reason(reply.status)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        writer.write(head.encode("latin-1"))
        await writer.drain()
        if head_only:
            return keep_alive

        async def emit(data: bytes) -> None:
            pieces = [data[i : i + 1] for i in range(len(data))] if slow else [data]
            for piece in pieces:
                if not piece:
                    continue
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                await writer.drain()
                if slow:
                    await asyncio.sleep(reply.slow_interval)

        if not streaming:
            await emit(payload if limit is None else payload[:limit])
        else:
            for i, item in enumerate(reply.events):
                if limit is not None and i >= limit:
                    break
                if isinstance(item, Ev):
                    delay = reply.delay if item.delay is None else item.delay
                    data = encode_sse_event(item.data)
                elif isinstance(item, Raw):
                    delay, data = (reply.delay if i else 0.0), item.data
                else:
                    delay, data = (reply.delay if i else 0.0), encode_sse_event(item)
                if delay:
                    await asyncio.sleep(delay)
                await emit(data)
        if limit is not None:
            if hang:
                await _wait_client_gone(reader)
            writer.close()
            return False
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        if not keep_alive:
            with contextlib.suppress(Exception):
                if writer.can_write_eof():
                    writer.write_eof()
            return False
        return True

    # ------------------------------------------------------------------ WebSocket

    async def _handle_ws(
        self,
        head: bytes,
        target: str,
        headers: Headers,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        peer = writer.get_extra_info("peername")
        hs = RecordedRequest.build("GET", target, headers, b"", tuple(peer[:2]) if peer else None)
        self._record(hs)
        with self._lock:
            route = next((r for r in self._ws_routes if _prefix_match(hs.path, r.prefix)), None)
            conn: WsConn | None = None
            if route is None and hs.path.endswith("/responses") and self._ws_scripts:
                conn = self._ws_scripts.popleft()
        if route is not None:
            accept = WsAccept(headers=dict(route.headers))
            if route.pre_accept is not None:
                try:
                    res = route.pre_accept(hs)
                    if inspect.isawaitable(res):
                        res = await res
                except Exception as exc:  # noqa: BLE001 - a test hook bug becomes a 500 and is recorded
                    self._error(exc)
                    res = WsAccept(status=500, body=_error_body(f"pre_accept failed: {exc!r}"))
                if isinstance(res, WsAccept):
                    accept = WsAccept(res.status, {**accept.headers, **res.headers}, res.body, res.delay)
                elif isinstance(res, dict):
                    accept.headers.update(res)
        elif conn is not None:
            accept = WsAccept(conn.status, dict(conn.headers), conn.body, conn.accept_delay)
        elif hs.path.endswith("/responses") and self.responder is not None:
            dflt = self.ws_accept
            accept = WsAccept(dflt.status, dict(dflt.headers), dflt.body, dflt.delay)
        elif hs.path.endswith("/responses"):
            accept = WsAccept(500, body=_error_body("scripted server: no websocket connection left"))
        else:
            accept = WsAccept(404, body=_error_body(f"scripted server: no websocket route for {hs.path}", "not_found"))
        if accept.delay:
            await asyncio.sleep(accept.delay)

        record = WsRecord(path=hs.path, headers=headers, query=hs.query, opened_at=time.time(), handshake=hs)
        if accept.status != 101:
            record.status = accept.status
            record.response_headers = Headers(accept.headers)
            self._record_ws(record)
            body = accept.body if accept.body is not None else _error_body(_reason(accept.status))
            await self._send_reply(
                None, writer, Reply(status=accept.status, headers=accept.headers, body=body), False, False
            )
            self._close_ws_record(record, None)
            return

        proto = ServerProtocol(extensions=[ServerPerMessageDeflateFactory()], max_size=16 * 2**20)
        proto.receive_data(head)
        events = proto.events_received()
        response = proto.accept(events[0]) if events else proto.reject(400, "bad handshake\n")  # type: ignore[arg-type]
        if response.status_code == 101:
            for k, v in accept.headers.items():
                response.headers[k] = v
        proto.send_response(response)
        for chunk in proto.data_to_send():
            if chunk:
                writer.write(chunk)
        await writer.drain()
        record.status = response.status_code
        record.response_headers = Headers(list(response.headers.raw_items()))
        record.extensions = response.headers.get_all("Sec-WebSocket-Extensions")
        self._record_ws(record)
        if response.status_code != 101:
            self._close_ws_record(record, None)
            return

        ws = ServerWebSocket(
            proto,
            reader,
            writer,
            on_message=lambda m: self._on_ws_message(record, m),
            on_pong=lambda d: self._on_ws_pong(record, d),
        )
        try:
            if route is not None:
                await route.handler(ws, hs)
                await ws.close(1000)
            elif conn is not None:
                await self._play_ws_script(ws, conn)
            else:
                await self._ws_responder_loop(ws, hs)
        except (ConnectionClosed, ConnectionError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a script bug is recorded, the socket closed
            self._error(exc)
            with contextlib.suppress(Exception):
                await ws.close(1011, "scripted server error")
        finally:
            await ws.abort()
            self._close_ws_record(record, ws.close_code)

    async def _send_ws_item(self, ws: ServerWebSocket, item: Any, default_delay: float) -> bool:
        """Send one scripted item; returns False when the script must stop here."""
        if isinstance(item, Sleep):
            await asyncio.sleep(item.seconds)
        elif isinstance(item, Hang):
            await ws.wait_closed()
            return False
        elif isinstance(item, WsClose):
            await ws.close(item.code, item.reason)
            return False
        elif isinstance(item, WsBinary):
            await ws.send(item.data)
        elif isinstance(item, WsPing):
            await ws.ping(item.data)
        elif isinstance(item, WsDrop):
            await ws.abort()
            return False
        elif isinstance(item, Raw):
            if default_delay:
                await asyncio.sleep(default_delay)
            await ws.send_raw_text(item.data)
        elif isinstance(item, Ev):
            delay = default_delay if item.delay is None else item.delay
            if delay:
                await asyncio.sleep(delay)
            await ws.send(json.dumps(item.data))
        elif isinstance(item, dict):
            if default_delay:
                await asyncio.sleep(default_delay)
            await ws.send(json.dumps(item))
        else:
            raise TypeError(f"unsupported websocket script item: {item!r}")
        return True

    async def _play_ws_script(self, ws: ServerWebSocket, conn: WsConn) -> None:
        for req_items in conn.requests:
            await ws.recv()
            for i, item in enumerate(req_items):
                if not await self._send_ws_item(ws, item, conn.delay if i else 0.0):
                    return
        if conn.close_after_requests:
            await ws.close(1000)
        else:
            await ws.wait_closed()

    async def _ws_responder_loop(self, ws: ServerWebSocket, hs: RecordedRequest) -> None:
        assert self.responder is not None
        while True:
            msg = await ws.recv()
            body = msg.encode() if isinstance(msg, str) else msg
            req = RecordedRequest.build("WS", hs.target, hs.headers, body)
            reply = await self._call_responder(req)
            if reply.body is not None or reply.status >= 400:
                raw = reply.body if isinstance(reply.body, dict) else {}
                err = raw.get("error", {"message": str(reply.body)})
                frame = {"type": "error", "status": reply.status, "error": err, "headers": dict(reply.headers)}
                await ws.send(json.dumps(frame))
                continue
            for i, item in enumerate(reply.events):
                if not await self._send_ws_item(ws, item, reply.delay if i else 0.0):
                    return

    async def _call_responder(self, req: RecordedRequest) -> Reply:
        assert self.responder is not None
        try:
            out: Any = self.responder(req)
            if inspect.isawaitable(out):
                out = await out
            if not isinstance(out, Reply):
                raise TypeError(f"responder returned {type(out).__name__}, expected Reply")
            return out
        except Exception as exc:  # noqa: BLE001 - a test responder bug becomes a 500 and is recorded
            self._error(exc)
            return Reply(status=500, body=_error_body(f"scripted server: responder failed: {exc!r}"))

    # ------------------------------------------------------------------ thread helpers

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the server loop (thread-safe)."""
        if self._loop is None:
            raise RuntimeError("server not started")
        self._loop.call_soon_threadsafe(fn, *args)


def _prefix_match(path: str, prefix: str) -> bool:
    """Segment-aware prefix match: ``/ws`` matches ``/ws`` and ``/ws/x`` but not ``/wsx``."""
    base = prefix.rstrip("/")
    return path == prefix or path == base or path.startswith(base + "/")


async def _wait_client_gone(reader: asyncio.StreamReader | None) -> None:
    """Wait until the client closes its side (or forever, until cancelled by stop())."""
    if reader is None:
        await asyncio.Event().wait()
        return
    with contextlib.suppress(ConnectionError, OSError):
        while await reader.read(65536):
            pass


def _parse_head(head: bytes) -> tuple[str, str, str, Headers]:
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError(f"bad request line {lines[0]!r}")
    method, target, version = parts
    headers = Headers()
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError(f"bad header line {line!r}")
        headers.add(name, value.strip())
    return method.upper(), target, version, headers


async def _read_body(reader: asyncio.StreamReader, headers: Headers) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return bytes(out)
            out += await reader.readexactly(size)
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""
