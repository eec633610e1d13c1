"""Outbound proxies: ``HTTPS_PROXY`` / ``NO_PROXY`` are honoured by the SSE (httpx) and WebSocket
(websockets) transports, and loopback servers are reached directly even with a proxy set.

The proxy is a tiny ``CONNECT`` proxy on 127.0.0.1 written here. It plays the corporate proxy and
the remote API at once: it accepts ``CONNECT api.example.test:443``, answers the TLS handshake with
a throw-away certificate for that name (the client trusts it through ``SSL_CERT_FILE``) and relays
the decrypted bytes to the scripted Responses server on 127.0.0.1. ``api.example.test`` does not
resolve here, so a request that skips the proxy cannot succeed by accident.
"""

from __future__ import annotations

import asyncio
import socket
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from jupyter_agent.testing import ScriptedServer
from jupyter_agent.testing.replies import text_reply
from jupyter_agent.transport.proxy import httpx_client_options, is_loopback, ws_proxy_option

HOST = "api.example.test"
KEY = "sk-proxy-test-0123456789abcdef"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={HOST}"]
        + ["-addext", f"subjectAltName=DNS:{HOST}", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


class ConnectProxy:
    """``CONNECT`` proxy on 127.0.0.1 that terminates TLS for ``HOST`` and relays to ``upstream``."""

    def __init__(self, upstream: tuple[str, int], cert: Path, key: Path) -> None:
        self.connects: list[str] = []
        self.refused: list[str] = []
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                client: socket.socket = self.request
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = client.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                method, target = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
                if method != "CONNECT" or target.rsplit(":", 1)[0] != HOST:
                    proxy.refused.append(f"{method} {target}")
                    client.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                    return
                proxy.connects.append(target)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                with tls.wrap_socket(client, server_side=True) as inner, socket.create_connection(upstream) as up:
                    relay = threading.Thread(target=_pipe, args=(up, inner), daemon=True)
                    relay.start()
                    _pipe(inner, up)
                    relay.join(10)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass  # the other direction closed the sockets
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # already closed


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def proxy(server: ScriptedServer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch):
    port = int(server.base_url.split(":")[2].split("/")[0])
    p = ConnectProxy(("127.0.0.1", port), *certificate)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", p.url)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    yield p
    p.close()


@pytest.mark.parametrize("transport", ["sse", "websocket"])
def test_a_turn_goes_through_the_https_proxy(proxy: ConnectProxy, server: ScriptedServer, transport: str) -> None:
    from jupyter_agent.agent import Agent

    agent = Agent(
        model="gpt-test",
        base_url=f"https://{HOST}/v1",
        provider="compatible",
        transport=transport,
        prewarm=False,
        api_key=KEY,
    )
    server.add_response(text_reply("Through the proxy.", phase="final_answer"))
    turn = agent.start("Hello via proxy").result(30)
    assert turn.text == "Through the proxy.", turn
    assert proxy.connects and set(proxy.connects) == {f"{HOST}:443"}
    assert proxy.refused == []
    request = server.requests[-1]
    assert request.headers.get("authorization") == f"Bearer {KEY}"
    assert "Hello via proxy" in str(request.json["input"])


async def test_no_proxy_sends_the_host_direct(proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the host in NO_PROXY nothing reaches the proxy: the (unresolvable) host is dialled directly."""
    monkeypatch.setenv("NO_PROXY", f"localhost,{HOST}")
    async with httpx.AsyncClient(**httpx_client_options()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"https://{HOST}/v1/models")
    url = f"wss://{HOST}/v1/responses"
    with pytest.raises(OSError):
        await asyncio.wait_for(connect(url, open_timeout=10, **ws_proxy_option(url)), 15)
    assert proxy.connects == [] and proxy.refused == []
    # without NO_PROXY the same client construction goes through the proxy
    monkeypatch.delenv("NO_PROXY")
    async with httpx.AsyncClient(**httpx_client_options()) as client:
        await client.get(f"https://{HOST}/v1/models")
    assert proxy.connects == [f"{HOST}:443"]


@pytest.mark.parametrize("transport", ["sse", "websocket"])
def test_loopback_servers_skip_the_proxy(
    proxy: ConnectProxy, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """The embedded model and local servers listen on 127.0.0.1: never through a proxy."""
    from jupyter_agent.agent import Agent

    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    assert is_loopback(server.base_url)
    agent = Agent(model="gpt-test", base_url=server.base_url, provider="compatible", transport=transport, prewarm=False)
    server.add_response(text_reply("Direct.", phase="final_answer"))
    assert agent.start("Hi").result(30).text == "Direct."
    assert proxy.connects == [] and proxy.refused == []
