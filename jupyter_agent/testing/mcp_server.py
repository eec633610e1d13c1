"""A small MCP server (the SDK's ``MCPServer``, formerly FastMCP) for tests, benchmarks and notebooks.

    python -m jupyter_agent.testing.mcp_server                 # stdio
    python -m jupyter_agent.testing.mcp_server --http          # streamable HTTP on 127.0.0.1, prints the URL

Tools: ``add``, ``lookup`` (a small fixed fact table), ``chart`` (a PNG), ``fail`` (an error result),
``sleep``, ``crash`` (the process exits in the middle of the call) and ``getenv`` (echoes an
environment variable: a hostile server for the secret canary tests). Options make it misbehave on
purpose: ``--slow-list SECONDS`` delays ``tools/list``; ``--exit-at-start`` dies before speaking;
``--require-token-env VAR`` (HTTP) answers 401 unless ``Authorization: Bearer $VAR`` is sent;
``--pid-file PATH`` records the process id (tests check that the process goes away).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.utilities.types import Image

FACTS = {
    "jupiter": "Jupiter has 97 known moons (2026 count used by this demo server).",
    "saturn": "Saturn has 274 known moons (2026 count used by this demo server).",
    "answer": "The answer is 42.",
}


def png_bytes(width: int = 4, height: int = 4, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A tiny solid-colour PNG, written by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


class DemoServer(MCPServer):
    """``MCPServer`` with an optional delay on ``tools/list`` (the slow-server scenario)."""

    slow_list: float = 0.0

    async def list_tools(self) -> Any:
        if self.slow_list:
            await asyncio.sleep(self.slow_list)
        return await super().list_tools()


def build_server(slow_list: float = 0.0) -> DemoServer:
    app = DemoServer("jupyter-agent-demo", instructions="Demo tools for jupyter_agent tests.")
    app.slow_list = slow_list

    @app.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @app.tool()
    def lookup(topic: str) -> str:
        """Look a fact up in the demo knowledge base (topics: jupiter, saturn, answer)."""
        return FACTS.get(topic.lower(), f"No fact about {topic!r}.")

    @app.tool()
    def chart(colour: str = "red") -> Image:
        """A small chart image (a solid square of the colour)."""
        rgb = {"red": (200, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 200)}.get(colour, (128, 128, 128))
        return Image(data=png_bytes(rgb=rgb), format="png")

    @app.tool()
    def fail(message: str) -> str:
        """Always fails with ``message``."""
        raise ValueError(message)

    @app.tool()
    async def sleep(seconds: float) -> str:
        """Sleep, then say so."""
        await asyncio.sleep(seconds)
        return f"slept {seconds} s"

    @app.tool()
    def crash() -> str:
        """Exit the server process in the middle of the call."""
        sys.stderr.write("demo server: crashing on purpose\n")
        sys.stderr.flush()
        os._exit(3)

    @app.tool()
    def getenv(name: str) -> str:
        """Return an environment variable of the server process (a hostile tool for secret tests)."""
        return os.environ.get(name, "(unset)")

    return app


def _serve_http(app: DemoServer, token_env: str | None) -> None:
    import uvicorn
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import PlainTextResponse

    web = app.streamable_http_app()
    token = os.environ.get(token_env) if token_env else None
    if token_env and not token:
        raise SystemExit(f"--require-token-env: {token_env} is not set")

    async def check(request: Any, call_next: Any) -> Any:
        if token is not None and request.headers.get("authorization") != f"Bearer {token}":
            return PlainTextResponse("missing or wrong bearer token", status_code=401)
        return await call_next(request)

    if token is not None:
        web.add_middleware(BaseHTTPMiddleware, dispatch=check)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    print(f"http://127.0.0.1:{port}/mcp", flush=True)
    server = uvicorn.Server(uvicorn.Config(web, log_level="warning", lifespan="on"))
    asyncio.run(server.serve(sockets=[sock]))


def command(*extra: str) -> list[str]:
    """The command line that starts this server with ``extra`` options."""
    return [sys.executable, "-m", "jupyter_agent.testing.mcp_server", *extra]


def spawn_http(*extra: str, env: dict[str, str] | None = None) -> tuple[str, Any]:
    """Start the server over streamable HTTP in a subprocess; returns ``(url, Popen)`` (terminate it when done)."""
    import subprocess

    proc = subprocess.Popen(
        command("--http", *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise RuntimeError("the MCP demo server did not start")
    return url, proc


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m jupyter_agent.testing.mcp_server")
    p.add_argument("--http", action="store_true", help="streamable HTTP on 127.0.0.1 (prints the URL)")
    p.add_argument("--slow-list", type=float, default=0.0, help="delay tools/list by SECONDS")
    p.add_argument("--exit-at-start", action="store_true", help="exit with an error before serving")
    p.add_argument("--require-token-env", help="HTTP: require 'Authorization: Bearer $VAR'")
    p.add_argument("--pid-file", help="write the process id here")
    opts = p.parse_args(argv)
    if opts.pid_file:
        Path(opts.pid_file).write_text(str(os.getpid()))
    if opts.exit_at_start:
        sys.stderr.write("demo server: refusing to start (--exit-at-start)\n")
        raise SystemExit(2)
    app = build_server(opts.slow_list)
    if opts.http:
        _serve_http(app, opts.require_token_env)
    else:
        app.run("stdio")


if __name__ == "__main__":
    main()
