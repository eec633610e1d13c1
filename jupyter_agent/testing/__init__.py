"""Scripted Responses server for tests, example notebooks and offline use.

A real HTTP/1.1 + WebSocket server on 127.0.0.1 (one port) running its own asyncio loop in a daemon
thread, so it works from sync code, pytest-asyncio tests and a busy Jupyter kernel::

    from jupyter_agent.testing import ScriptedServer, Reply, WsConn, text_reply

    with ScriptedServer() as server:                  # or server = ScriptedServer().start(); server.stop()
        server.add_response(text_reply("Hi", phase="final_answer"))
        ...  # client talks to server.base_url == "http://127.0.0.1:PORT/v1"
        assert server.requests[0].json["model"] == "gpt-5"

HTTP ``POST .../responses`` (any path ending in ``/responses``) replays queued `Reply` objects in
order; then ``responder(RecordedRequest) -> Reply`` if given; else 500 ``scripted server: no reply
left``. `Reply` supports status, headers, SSE events (dicts, `Ev` with delay, `Raw` bytes), a plain
``body`` for errors, and faults (``"reset_before_first_byte"``, ``"close_before_first_byte"``,
``("drop_after", n)``, ``("hang_after", n)``, ``"slow"``). ``add_route(method, path, Reply|fn)``
serves other endpoints (usage, ``/v1/models``).

WebSocket ``GET .../responses`` upgrades play queued `WsConn` scripts (wire spec §12): record the
handshake, answer with the scripted headers (permessage-deflate is accepted), then for each scripted
request read one client frame and send its events (`WsBinary`, `WsPing`, `WsDrop`, `WsClose`, `Sleep`,
`Hang` are special entries; pongs land in `WsRecord.pongs`). WebSocket handshakes served by ``responder`` (no script
queued) answer with ``server.ws_accept`` (a `WsAccept`: delay, headers, refusal status). Records:
``server.requests`` (`RecordedRequest`, handshakes included) and ``server.ws_connections`` (`WsRecord`).

Extension hook — custom WebSocket endpoints (e.g. realtime at ``/v1/realtime`` and ``/ws``)::

    async def handler(ws: ServerWebSocket, handshake: RecordedRequest) -> None:
        msg = await ws.recv()            # str | bytes; raises websockets ConnectionClosed on close
        await ws.send('{"type": "session.created"}')
        await ws.close(1000, "bye")      # also: ws.closed, await ws.wait_closed()

    def pre_accept(handshake: RecordedRequest) -> WsAccept | dict[str, str] | None:
        return WsAccept(101, headers={"x-session": "1"})   # status != 101 refuses the upgrade

    server.add_ws_route("/v1/realtime", handler, pre_accept=pre_accept, headers={"x-static": "1"})

Routes match by path prefix (longest first) before the ``/responses`` scripts; frames the client sends
are recorded in the connection's `WsRecord` too. When the handler returns the socket is closed (1000).

Reply builders (``replies.py``): ``text_reply(text, model=, phase=, response_id=, chunks=)``,
``function_call_reply(name, arguments_json, call_id=, preamble=)``, ``web_search_reply(query, answer=,
action=)``, ``failed_reply(code, message)``, ``incomplete_reply(reason)``, ``error_reply(status, message,
type=, code=)``; the matching ``*_events`` functions return plain event lists for `WsConn` scripts.
``echo_responder`` quotes the last user input as a ``final_answer``; ``add_replies_from_sse_file``
replays a recorded ``.sse`` body byte-for-byte.

CLI: ``python -m jupyter_agent.testing --port 8000 --echo`` serves an echo bot (HTTP and WebSocket);
``--replay FILE.sse`` queues recorded streams.
"""

from __future__ import annotations

from .replies import (
    completed_event,
    created_event,
    echo_responder,
    error_reply,
    failed_events,
    failed_reply,
    function_call_events,
    function_call_reply,
    incomplete_events,
    incomplete_reply,
    last_user_text,
    text_events,
    text_reply,
    usage,
    web_search_events,
    web_search_reply,
)
from .script import (
    Ev,
    Hang,
    Headers,
    Raw,
    RecordedRequest,
    Reply,
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
from .server import ScriptedServer
from .ws import ServerWebSocket

__all__ = [
    "ScriptedServer",
    "ServerWebSocket",
    "Reply",
    "Ev",
    "Raw",
    "Headers",
    "RecordedRequest",
    "WsConn",
    "WsBinary",
    "WsPing",
    "WsDrop",
    "WsClose",
    "Sleep",
    "Hang",
    "WsAccept",
    "WsRecord",
    "encode_sse_event",
    "text_events",
    "text_reply",
    "function_call_events",
    "function_call_reply",
    "web_search_events",
    "web_search_reply",
    "failed_events",
    "failed_reply",
    "incomplete_events",
    "incomplete_reply",
    "error_reply",
    "created_event",
    "completed_event",
    "usage",
    "last_user_text",
    "echo_responder",
]
