"""Tests of the scripted Responses server (real sockets, httpx and websockets clients)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus

from jupyter_agent.testing import (
    Ev,
    Hang,
    Raw,
    RecordedRequest,
    Reply,
    ScriptedServer,
    ServerWebSocket,
    Sleep,
    WsAccept,
    WsBinary,
    WsClose,
    WsConn,
    echo_responder,
    error_reply,
    failed_reply,
    function_call_reply,
    incomplete_reply,
    text_events,
    text_reply,
    web_search_reply,
)


def parse_sse(raw: bytes) -> list[tuple[str | None, dict[str, Any] | None]]:
    """(event name, data JSON) per SSE block."""
    out: list[tuple[str | None, dict[str, Any] | None]] = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        name = data = None
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        out.append((name, data))
    return out


def post(server: ScriptedServer, path: str = "/responses", **kw: Any) -> httpx.Response:
    kw.setdefault("json", {"model": "gpt-5", "input": []})
    return httpx.post(server.base_url + path, timeout=5, **kw)


# --------------------------------------------------------------------------- HTTP basics


def test_base_url_and_queue_order(server: ScriptedServer) -> None:
    assert server.port > 0
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    server.add_responses(text_reply("one", response_id="r1"), [text_reply("two", response_id="r2")])
    assert server.pending_replies == 2
    ids = []
    for _ in range(2):
        events = parse_sse(post(server).content)
        ids.append(events[-1][1]["response"]["id"])  # type: ignore[index]
    assert ids == ["r1", "r2"]
    r = post(server)
    assert r.status_code == 500
    assert r.json()["error"]["message"] == "scripted server: no reply left"


def test_headers_and_sse_framing(server: ScriptedServer) -> None:
    hdrs = {
        "openai-model": "gpt-5-rerouted",
        "x-codex-primary-used-percent": "42.5",
        "x-ratelimit-remaining-requests": "99",
        "x-codex-turn-state": "ts-1",
    }
    server.add_response(Reply(headers=hdrs, events=[{"type": "response.in_progress"}, {"type": "x.y", "a": "é"}]))
    r = post(server)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream"
    for k, v in hdrs.items():
        assert r.headers[k] == v
    # type-only event has no data line; others are compact JSON
    assert r.content == b'event: response.in_progress\n\nevent: x.y\ndata: {"type":"x.y","a":"\xc3\xa9"}\n\n'


def test_azure_path_and_keep_alive(server: ScriptedServer) -> None:
    server.add_responses(text_reply("a"), text_reply("b"))
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
        r1 = client.post("/openai/v1/responses?api-version=preview", json={"n": 1})
        r2 = client.post("/v1/responses", json={"n": 2})
    assert r1.status_code == r2.status_code == 200
    reqs = server.requests
    assert [r.path for r in reqs] == ["/openai/v1/responses", "/v1/responses"]
    assert reqs[0].query == {"api-version": "preview"}
    assert reqs[0].peer == reqs[1].peer  # same TCP connection reused


def test_recording(server: ScriptedServer) -> None:
    server.add_responses(text_reply("x"), text_reply("y"))
    body = {"model": "gpt-5", "input": [{"type": "message", "role": "user", "content": []}]}
    threading.Timer(0.1, lambda: post(server, json=body, headers={"X-Codex-Turn-State": "abc"})).start()
    reqs = server.wait_for_requests(1, timeout=5)
    rec = reqs[0]
    assert rec.method == "POST" and rec.path == "/v1/responses"
    assert rec.json == body and json.loads(rec.body) == body
    assert rec.headers["x-codex-turn-state"] == "abc" and rec.headers["X-CODEX-TURN-STATE"] == "abc"
    assert rec.time > 0 and not rec.is_websocket
    post(server, json=None, content=b"not json", headers={"content-type": "text/plain"})
    assert server.requests[1].json is None and server.requests[1].body == b"not json"
    with pytest.raises(TimeoutError):
        server.wait_for_requests(3, timeout=0.2)


def test_error_reply_and_responder(server: ScriptedServer) -> None:
    server.add_response(
        error_reply(429, "slow down", type="usage_limit_reached", headers={"retry-after": "2"}, resets_at=5)
    )
    r = post(server)
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert r.json()["error"] == {
        "message": "slow down",
        "type": "usage_limit_reached",
        "param": None,
        "code": None,
        "resets_at": 5,
    }

    calls: list[RecordedRequest] = []

    def responder(req: RecordedRequest) -> Reply:
        calls.append(req)
        if req.json.get("boom"):
            raise ValueError("kaput")
        return text_reply(f"echo {req.json['n']}")

    server.responder = responder
    events = parse_sse(post(server, json={"n": 7}).content)
    assert any(d and d.get("delta") for _, d in events)
    assert events[-1][1]["response"]["output"][0]["content"][0]["text"] == "echo 7"  # type: ignore[index]
    r = post(server, json={"boom": True})
    assert r.status_code == 500 and "kaput" in r.json()["error"]["message"]
    assert isinstance(server.errors[0], ValueError)
    assert len(calls) == 2


def test_routes(server: ScriptedServer) -> None:
    usage = {"plan_type": "pro", "rate_limit": {"primary_window": {"used_percent": 12}}}
    server.add_route("GET", "/api/codex/usage", Reply(body=usage))
    server.add_route("GET", "/v1/models", lambda req: Reply(body={"data": [{"id": req.query.get("q", "m")}]}))
    server.add_route("GET", "/backend-api/*", Reply(body={"wham": True}))
    base = f"http://127.0.0.1:{server.port}"
    for _ in range(2):  # a Reply route is replayed every time
        r = httpx.get(base + "/api/codex/usage")
        assert r.status_code == 200 and r.json() == usage and r.headers["content-type"] == "application/json"
    assert httpx.get(base + "/v1/models?q=gpt-9").json() == {"data": [{"id": "gpt-9"}]}
    assert httpx.get(base + "/backend-api/wham/usage").json() == {"wham": True}
    assert httpx.get(base + "/nope").status_code == 404
    assert [r.path for r in server.find_requests(method="GET", path_suffix="/usage")] == ["/api/codex/usage"] * 2 + [
        "/backend-api/wham/usage"
    ]


def test_sse_file_replayed_byte_for_byte(server: ScriptedServer, recorded_streams: Path) -> None:
    path = recorded_streams / "text-basic-gpt-4.1-nano.sse"
    server.add_replies_from_sse_file(path, headers={"openai-model": "gpt-4.1-nano"})
    server.add_replies_from_sse_file(path, use_recorded_headers=True)
    r = post(server)
    assert r.content == path.read_bytes()
    assert r.headers["openai-model"] == "gpt-4.1-nano"
    r2 = post(server)
    assert r2.content == path.read_bytes()
    assert "x-request-id" in r2.headers


def test_reply_builders(server: ScriptedServer) -> None:
    server.add_responses(
        text_reply("Hello world", phase="final_answer", model="m1", response_id="resp_t", chunks=4),
        function_call_reply("python", '{"code":"1+1"}', call_id="call_9", preamble="Let me run it."),
        web_search_reply("weather seattle", call_id="ws_1"),
        failed_reply("insufficient_quota", "Quota exceeded"),
        incomplete_reply("content_filter"),
    )
    ev = [d for _, d in parse_sse(post(server).content)]
    assert ev[0]["type"] == "response.created" and ev[0]["response"]["model"] == "m1"
    assert "".join(e["delta"] for e in ev if e["type"] == "response.output_text.delta") == "Hello world"
    done = next(e for e in ev if e["type"] == "response.output_item.done")
    assert done["item"]["phase"] == "final_answer"
    assert ev[-1]["type"] == "response.completed" and ev[-1]["response"]["usage"]["total_tokens"] == 15
    assert [e["sequence_number"] for e in ev] == list(range(len(ev)))

    ev = [d for _, d in parse_sse(post(server).content)]
    items = [e["item"] for e in ev if e["type"] == "response.output_item.done"]
    assert items[0]["phase"] == "commentary"
    assert items[1] == {
        **items[1],
        "type": "function_call",
        "call_id": "call_9",
        "name": "python",
        "arguments": '{"code":"1+1"}',
    }

    ev = [d for _, d in parse_sse(post(server).content)]
    ws_done = next(e["item"] for e in ev if e["type"] == "response.output_item.done")
    assert ws_done["action"] == {"type": "search", "query": "weather seattle"} and ws_done["id"] == "ws_1"

    ev = [d for _, d in parse_sse(post(server).content)]
    assert ev[-1]["type"] == "response.failed"
    assert ev[-1]["response"]["error"] == {"code": "insufficient_quota", "message": "Quota exceeded"}

    ev = [d for _, d in parse_sse(post(server).content)]
    assert ev[-1]["type"] == "response.incomplete"
    assert ev[-1]["response"]["incomplete_details"]["reason"] == "content_filter"


# --------------------------------------------------------------------------- faults


def test_fault_reset_and_close_before_first_byte(server: ScriptedServer) -> None:
    server.add_responses(
        Reply(fault="reset_before_first_byte"), Reply(fault="close_before_first_byte"), text_reply("ok")
    )
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        post(server)
    with pytest.raises(httpx.RemoteProtocolError):
        post(server)
    assert post(server).status_code == 200
    assert len(server.requests) == 3 and server.requests[0].json == {"model": "gpt-5", "input": []}


def test_fault_drop_after(server: ScriptedServer) -> None:
    server.add_response(
        Reply(events=text_events("abcdef", chunks=3), fault=("drop_after", 2), headers={"openai-model": "m"})
    )
    got = bytearray()
    with httpx.stream("POST", server.base_url + "/responses", json={}, timeout=5) as r:
        assert r.status_code == 200 and r.headers["openai-model"] == "m"
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in r.iter_raw():
                got += chunk
    assert [d["type"] for _, d in parse_sse(bytes(got))] == ["response.created", "response.output_item.added"]  # type: ignore[index]


def test_fault_hang_after_then_server_still_serves(server: ScriptedServer) -> None:
    server.add_responses(Reply(events=text_events("abc"), fault=("hang_after", 1)), text_reply("next"))
    got = bytearray()
    t0 = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        with httpx.stream("POST", server.base_url + "/responses", json={}, timeout=httpx.Timeout(5, read=0.4)) as r:
            for chunk in r.iter_raw():
                got += chunk
    assert time.monotonic() - t0 >= 0.4
    assert [d["type"] for _, d in parse_sse(bytes(got))] == ["response.created"]  # type: ignore[index]
    assert post(server).status_code == 200
    assert server.errors == []


def test_fault_slow_and_delays(server: ScriptedServer) -> None:
    events = [{"type": "a", "v": 1}, {"type": "b", "v": 2}]
    server.add_response(Reply(events=events, fault="slow", slow_interval=0.001))
    pieces = []
    with httpx.stream("POST", server.base_url + "/responses", json={}, timeout=5) as r:
        for chunk in r.iter_raw():
            pieces.append(chunk)
    body = b"".join(pieces)
    assert [d for _, d in parse_sse(body)] == events
    assert len(pieces) > 5  # arrived in many small pieces

    server.add_response(Reply(events=[{"type": "a"}, Ev({"type": "b"}, delay=0.3), {"type": "c"}], delay=0.05))
    t0 = time.monotonic()
    post(server)
    assert time.monotonic() - t0 >= 0.35

    server.add_response(Reply(events=[Raw(b"data: {not json\n\n"), {"type": "ok"}]))
    assert post(server).content == b"data: {not json\n\nevent: ok\n\n"


def test_client_disconnect_mid_stream_does_not_break_server(server: ScriptedServer) -> None:
    server.add_response(Reply(events=[{"type": "e", "i": i} for i in range(50)], delay=0.02))
    server.add_response(text_reply("after"))
    with httpx.stream("POST", server.base_url + "/responses", json={}, timeout=5) as r:
        next(r.iter_raw())  # read the first piece and hang up
    time.sleep(0.2)
    assert post(server).status_code == 200
    assert server.errors == []


# --------------------------------------------------------------------------- WebSocket scripts


async def test_ws_script_headers_frames_deflate(server: ScriptedServer) -> None:
    ev1 = text_events("hi", response_id="resp-1")
    server.add_ws_connection(
        WsConn(
            headers={
                "openai-model": "gpt-5-ws",
                "x-models-etag": "etag-1",
                "x-reasoning-included": "true",
                "x-codex-turn-state": "t",
            },
            requests=[ev1, [{"type": "response.completed", "response": {"id": "resp-2"}}]],
        )
    )
    url = server.ws_base_url + "/responses?x=1"
    async with connect(
        url, additional_headers={"OpenAI-Beta": "responses_websockets=2026-02-06", "session_id": "s1"}
    ) as ws:
        h = ws.response.headers
        assert (h["openai-model"], h["x-models-etag"], h["x-reasoning-included"], h["x-codex-turn-state"]) == (
            "gpt-5-ws",
            "etag-1",
            "true",
            "t",
        )
        await ws.send(json.dumps({"type": "response.create", "input": [1]}))
        got = [json.loads(await ws.recv()) for _ in ev1]
        assert got == ev1
        await ws.send(json.dumps({"type": "response.create", "previous_response_id": "resp-1"}))
        assert json.loads(await ws.recv())["response"]["id"] == "resp-2"
        with pytest.raises(ConnectionClosedOK):
            await ws.recv()
    rec = server.wait_for_ws_connections(1)[0]
    assert rec.wait_closed(2)
    assert rec.path == "/v1/responses" and rec.query == {"x": "1"} and rec.status == 101
    assert rec.headers["openai-beta"] == "responses_websockets=2026-02-06" and rec.headers["session_id"] == "s1"
    assert rec.deflate and rec.extensions[0].startswith("permessage-deflate")
    assert [f["type"] for f in rec.frames] == ["response.create", "response.create"]
    assert rec.frames[1]["previous_response_id"] == "resp-1"
    assert rec.close_code == 1000 and rec.closed_at is not None and rec.closed_at >= rec.opened_at
    assert server.requests[0].is_websocket


async def test_ws_refusals(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(status=426, headers={"x-why": "upgrade"}))
    server.add_ws_connection(WsConn(status=401, body={"error": {"message": "bad key"}}, accept_delay=0.1))
    with pytest.raises(InvalidStatus) as e426:
        async with connect(server.ws_base_url + "/responses"):
            pass
    assert e426.value.response.status_code == 426 and e426.value.response.headers["x-why"] == "upgrade"
    t0 = time.monotonic()
    with pytest.raises(InvalidStatus) as e401:
        async with connect(server.ws_base_url + "/responses"):
            pass
    assert e401.value.response.status_code == 401 and time.monotonic() - t0 >= 0.1
    assert json.loads(e401.value.response.body)["error"]["message"] == "bad key"
    with pytest.raises(InvalidStatus) as e500:  # no script left
        async with connect(server.ws_base_url + "/responses"):
            pass
    assert e500.value.response.status_code == 500
    assert [c.status for c in server.ws_connections] == [426, 401, 500]
    # the HTTP path is unaffected
    server.add_response(text_reply("ok"))
    async with httpx.AsyncClient() as client:
        assert (await client.post(server.base_url + "/responses", json={})).status_code == 200


async def test_ws_binary_close_sleep_entries(server: ScriptedServer) -> None:
    server.add_ws_connection(
        WsConn(
            requests=[
                [
                    {"type": "a"},
                    Sleep(0.2),
                    WsBinary(b"\x00\x01"),
                    Raw(b"{broken"),
                    WsClose(4001, "bye"),
                    {"type": "never"},
                ]
            ]
        )
    )
    async with connect(server.ws_base_url + "/responses") as ws:
        await ws.send("{}")
        t0 = time.monotonic()
        assert json.loads(await ws.recv()) == {"type": "a"}
        assert await ws.recv() == b"\x00\x01"
        assert time.monotonic() - t0 >= 0.2
        assert await ws.recv() == "{broken"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye")
    assert server.ws_connections[0].wait_closed(2)


async def test_ws_hang_and_keep_open(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(requests=[[{"type": "a"}, Hang()]]))
    server.add_ws_connection(WsConn(requests=[[Ev({"type": "b"}, delay=0.05)]], close_after_requests=False))
    async with connect(server.ws_base_url + "/responses") as ws:
        await ws.send("{}")
        assert json.loads(await ws.recv()) == {"type": "a"}
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)
    async with connect(server.ws_base_url + "/responses") as ws:
        await ws.send('{"n":1}')
        assert json.loads(await ws.recv()) == {"type": "b"}
        await ws.send('{"n":2}')  # beyond the script: recorded, connection stays open
        await asyncio.sleep(0.1)
        assert not server.ws_connections[1].closed
        await ws.ping()
    recs = server.ws_connections
    assert recs[0].wait_closed(2) and recs[1].wait_closed(2)
    assert recs[1].frames == [{"n": 1}, {"n": 2}] and recs[1].close_code == 1000


async def test_add_ws_route(server: ScriptedServer) -> None:
    seen: list[RecordedRequest] = []

    async def handler(ws: ServerWebSocket, hs: RecordedRequest) -> None:
        seen.append(hs)
        await ws.send(json.dumps({"type": "session.created", "path": hs.path}))
        while True:
            msg = await ws.recv()
            if msg == "quit":
                await ws.close(4000, "done")
                assert ws.closed
                return
            await ws.send(msg if isinstance(msg, bytes) else "echo:" + msg)

    def pre_accept(hs: RecordedRequest) -> WsAccept | dict[str, str] | None:
        if hs.headers.get("authorization") != "Bearer ok":
            return WsAccept(401, headers={"x-reason": "auth"})
        return {"x-session": "sess-1"}

    server.add_ws_route("/v1/realtime", handler, pre_accept=pre_accept, headers={"x-static": "1"})
    server.add_ws_route("/ws", handler)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.url("/v1/realtime?model=rt", "ws")):
            pass
    assert refused.value.response.status_code == 401 and refused.value.response.headers["x-reason"] == "auth"
    async with connect(
        server.url("/v1/realtime?model=rt", "ws"), additional_headers={"Authorization": "Bearer ok"}
    ) as ws:
        assert ws.response.headers["x-session"] == "sess-1" and ws.response.headers["x-static"] == "1"
        assert json.loads(await ws.recv())["path"] == "/v1/realtime"
        await ws.send('{"type":"input_audio_buffer.append"}')
        assert await ws.recv() == 'echo:{"type":"input_audio_buffer.append"}'
        await ws.send(b"\xff\x00")
        assert await ws.recv() == b"\xff\x00"
        await ws.send("quit")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
    async with connect(server.url("/ws", "ws")) as ws:
        assert json.loads(await ws.recv())["path"] == "/ws"
    assert [h.query for h in seen] == [{"model": "rt"}, {}]
    rec = server.ws_connections[1]
    assert rec.wait_closed(2)
    assert rec.frames[0] == {"type": "input_audio_buffer.append"} and rec.frames[1] == {"_binary": b"\xff\x00"}
    assert rec.deflate and rec.response_headers["x-session"] == "sess-1"
    assert server.errors == []


# --------------------------------------------------------------------------- responder over WS, CLI, stop


async def test_echo_responder_http_and_ws() -> None:
    with ScriptedServer(responder=echo_responder) as server:
        body = {
            "model": "m",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ping 1"}]}],
        }
        async with httpx.AsyncClient() as client:
            r = await client.post(server.base_url + "/responses", json=body)
        done = [d for _, d in parse_sse(r.content) if d and d["type"] == "response.output_item.done"][0]
        assert done["item"]["content"][0]["text"] == 'You said: "ping 1"' and done["item"]["phase"] == "final_answer"
        async with connect(server.ws_base_url + "/responses") as ws:
            await ws.send(json.dumps({"type": "response.create", **body, "generate": False}))
            types = [json.loads(await ws.recv())["type"] for _ in range(2)]
            assert types == ["response.created", "response.completed"]
            await ws.send(json.dumps({"type": "response.create", **body}))
            frames = []
            while not frames or frames[-1]["type"] != "response.completed":
                frames.append(json.loads(await ws.recv()))
            assert "".join(f.get("delta", "") for f in frames) == 'You said: "ping 1"'


def test_cli_echo_server() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "jupyter_agent.testing", "--port", "0", "--echo"], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
            body = {"model": "m", "input": "hello cli"}
            r = httpx.post(url + "/responses", json=body, timeout=5)
            assert 'You said: \\"hello cli\\"' in r.text
        finally:
            proc.terminate()
            assert proc.wait(5) == 0


def test_stop_is_prompt_with_hung_connections() -> None:
    server = ScriptedServer().start()
    server.add_response(Reply(events=[{"type": "a"}], fault=("hang_after", 1)))
    server.add_ws_connection(WsConn(requests=[[{"type": "a"}, Hang()]]))
    errors: list[BaseException] = []

    def http_client() -> None:
        try:
            with httpx.stream("POST", server.base_url + "/responses", json={}, timeout=10) as r:
                for _ in r.iter_raw():
                    pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    async def ws_client() -> None:
        try:
            async with connect(server.ws_base_url + "/responses") as ws:
                await ws.send("{}")
                await ws.recv()
                await ws.recv()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t1 = threading.Thread(target=http_client)
    t2 = threading.Thread(target=lambda: asyncio.run(ws_client()))
    t1.start()
    t2.start()
    server.wait_for(lambda: len(server._requests) >= 2 and all(r.messages for r in server._ws_records), timeout=5)
    time.sleep(0.1)
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 1.0
    assert not server.running
    t1.join(5)
    t2.join(5)
    assert not t1.is_alive() and not t2.is_alive()
    assert len(errors) == 2  # both clients saw their connection end
    with pytest.raises(httpx.ConnectError):
        httpx.post(server.base_url + "/responses", json={}, timeout=2)


def test_expect_continue_gzip_body_and_route_prefix_segments(server: ScriptedServer) -> None:
    import gzip
    import socket

    server.add_response(text_reply("ok"))
    payload = json.dumps({"model": "gpt-5", "input": "x" * 2000}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(payload)
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(payload)
        assert sock.recv(64).startswith(b"HTTP/1.1 200 OK\r\n")
    assert server.wait_for_requests(1)[0].json["input"] == "x" * 2000

    server.add_response(text_reply("ok"))
    post(server, json=None, content=gzip.compress(payload), headers={"content-encoding": "gzip"})
    assert server.requests[1].json["model"] == "gpt-5"

    async def handler(ws: ServerWebSocket, hs: RecordedRequest) -> None:
        await ws.send(hs.path)

    server.add_ws_route("/ws", handler)

    async def paths() -> list[int]:
        got = []
        for p in ("/ws", "/ws/sub", "/wsx"):
            try:
                async with connect(server.url(p, "ws")) as ws:
                    assert await ws.recv() == p
                    got.append(101)
            except InvalidStatus as exc:
                got.append(exc.response.status_code)
        return got

    assert asyncio.run(paths()) == [101, 101, 404]


async def test_ws_client_disconnect_mid_stream_leaks_nothing(server: ScriptedServer) -> None:
    server.add_ws_connection(WsConn(requests=[[{"type": "e", "i": i} for i in range(40)]], delay=0.02))
    server.add_response(Reply(events=[{"type": "e", "i": i} for i in range(40)], delay=0.02))
    async with connect(server.ws_base_url + "/responses") as ws:
        await ws.send("{}")
        assert json.loads(await ws.recv())["i"] == 0
    async with httpx.AsyncClient() as client:
        async with client.stream("POST", server.base_url + "/responses", json={}) as r:
            async for _ in r.aiter_raw():
                break
    rec = server.ws_connections[0]
    assert await asyncio.to_thread(rec.wait_closed, 2)
    ok = await asyncio.to_thread(server.wait_for, lambda: server.open_connections == 0, 3)
    assert ok, server.open_connections
    assert server.errors == []
