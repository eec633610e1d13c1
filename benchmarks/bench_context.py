"""Long-session figures (issue 14), side by side in one run.

1. A 300-turn scripted conversation where every turn runs a tool returning 20 KB, over SSE and
   WebSocket, with compaction (``compact_threshold`` 0.85 of a 128k window) and without (0): request
   bytes sent per turn and input tokens per turn at turns 1, 100, 200, 300. The scripted server
   counts a request's context as the characters of its full input (over WebSocket: the chain's
   previous context + the incremental input) and reports ``input_tokens`` = characters / 4.
2. The embedded model's time to first token after ``%load_ext`` in a fresh kernel, with the
   background load (default) and without (``JUPYTER_AGENT_LOCAL_PRELOAD=0``), asking at once and
   after a 2 s pause (the user typing).

Run: ``.venv/bin/python -m benchmarks.bench_context`` (``--turns N``, ``--skip-local``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from typing import Any

from jupyter_agent.agent import Agent
from jupyter_agent.testing import Reply, ScriptedServer
from jupyter_agent.testing.replies import function_call_events, text_events, usage

MODEL = "gpt-5"
WINDOW = 128_000
TOOL_OUTPUT = "".join(f"row {i:05d}: " + "x" * 40 + "\n" for i in range(400))[:20_000]  # 20 KB
MARKS = (1, 100, 200, 300)


class Counter:
    """The scripted model: a tool call for every prompt, an answer for every tool result."""

    def __init__(self) -> None:
        self.context: dict[str, int] = {}  # response id -> characters of its context incl. output
        self.n = 0
        self.requests: list[tuple[int, int]] = []  # (bytes sent, context characters)

    def __call__(self, rec: Any) -> Reply:
        body = json.loads(rec.body)
        items = body.get("input") or []
        chars = len(json.dumps(items)) + self.context.get(body.get("previous_response_id") or "", 0)
        self.requests.append((len(rec.body), chars))
        self.n += 1
        rid = f"resp_{self.n}"
        last = items[-1] if items else {}
        tokens = usage(max(1, chars // 4), 20)
        if last.get("type") == "function_call_output":
            evs = text_events(
                "Done; the rows look fine.", model=MODEL, response_id=rid, phase="final_answer", usage_obj=tokens
            )
            out = 80
        else:
            evs = function_call_events("dump", "{}", call_id=f"call_{self.n}", model=MODEL, response_id=rid)
            evs[-1]["response"]["usage"] = tokens
            out = 120
        self.context[rid] = chars + out
        return Reply(events=evs)


def conversation(transport: str, compact: bool, turns: int) -> dict[int, tuple[int, int]]:
    """Per turn: (request bytes sent, input tokens of its last request: the one with the tool output)."""
    counter = Counter()
    with ScriptedServer(responder=counter) as server:
        agent = Agent(
            model=MODEL,
            base_url=server.base_url,
            provider="openai",
            api_key="sk-bench",
            transport=transport,
            prewarm=False,
            web_search="disabled",
            context_window=WINDOW,
            compact_threshold=0.85 if compact else 0.0,
        )

        def dump() -> str:
            """Return the day's rows."""
            return TOOL_OUTPUT

        agent.add_tool(dump, approval="auto")
        out: dict[int, tuple[int, int]] = {}

        async def run() -> None:
            for t in range(1, turns + 1):
                before = len(counter.requests)
                turn = await agent.ask(f"Turn {t}: dump the rows and check them.")
                assert turn.status == "completed", turn.error
                sent = counter.requests[before:]
                out[t] = (sum(b for b, _ in sent), sent[-1][1] // 4)

        asyncio.run(run())
        agent.reset()
    return out


def local_ttft(preload: bool, pause: float) -> float:
    """Seconds from the end of ``%load_ext`` to the first answer token, in a fresh kernel."""
    from jupyter_client.manager import start_new_kernel

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
    env["JUPYTER_AGENT_LOCAL_PRELOAD"] = "1" if preload else "0"
    env["JUPYTER_AGENT_HISTORY_DIR"] = tempfile.mkdtemp()
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        kc.execute_interactive(
            "%load_ext jupyter_agent\nimport jupyter_agent.magics as M\na = M.get_agent()", timeout=120
        )
        time.sleep(pause)
        code = (
            "import time\nfrom jupyter_agent import events as ev\nfirst = []\nt0 = time.perf_counter()\n"
            "def sink(e):\n    if isinstance(e, ev.TextDelta) and not first:\n        first.append(time.perf_counter() - t0)\n"
            "await a.ask('Say hello.', sink=sink)\nprint('TTFT', first[0])"
        )
        lines: list[str] = []
        kc.execute_interactive(code, timeout=300, output_hook=lambda m: lines.append(m["content"].get("text", "")))
        text = "".join(lines)
        return float(text.split("TTFT", 1)[1].split()[0])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    marks = [m for m in MARKS if m <= args.turns] or [args.turns]
    runs = {}
    for transport in ("sse", "websocket"):
        for compact in (False, True):
            t0 = time.perf_counter()
            runs[(transport, compact)] = conversation(transport, compact, args.turns)
            print(
                f"  ran {transport:9} compaction={'on ' if compact else 'off'} in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
    print(f"\n{args.turns}-turn conversation, one 20 KB tool output per turn (window {WINDOW:,} tokens)")
    print(f"{'':28}" + "".join(f"{'turn ' + str(m):>22}" for m in marks))
    for (transport, compact), per_turn in runs.items():
        label = f"{transport} compaction {'on' if compact else 'off'}"
        print(f"{label + ' bytes':28}" + "".join(f"{per_turn[m][0]:>22,}" for m in marks))
        print(f"{label + ' tokens':28}" + "".join(f"{per_turn[m][1]:>22,}" for m in marks))
    if args.skip_local:
        return
    print("\nEmbedded model: time to first token after %load_ext (fresh kernel each)")
    for pause in (0.0, 2.0):
        row = []
        for preload in (False, True):
            row.append(
                f"{'background load' if preload else 'load on first question'}: {local_ttft(preload, pause):.2f} s"
            )
        print(f"  asked {'at once' if not pause else f'after {pause:.0f} s'}:  " + "   ".join(row))


if __name__ == "__main__":
    main()
