"""``python -m jupyter_agent.testing [--port 8000] [--echo]``: serve the scripted server offline."""

from __future__ import annotations

import argparse
import signal
import threading

from .replies import echo_responder
from .server import ScriptedServer


def main(argv: list[str] | None = None) -> int:
    """Run until interrupted; prints the base URL."""
    ap = argparse.ArgumentParser(prog="python -m jupyter_agent.testing", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = ephemeral (default)")
    ap.add_argument("--echo", action="store_true", help="answer prompts by quoting them (default without --replay)")
    ap.add_argument(
        "--replay", action="append", default=[], metavar="FILE.sse", help="queue a recorded SSE body (repeatable)"
    )
    args = ap.parse_args(argv)
    responder = echo_responder if (args.echo or not args.replay) else None
    server = ScriptedServer(host=args.host, port=args.port, responder=responder)
    for path in args.replay:
        server.add_replies_from_sse_file(path)
    server.start()
    print(server.base_url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
