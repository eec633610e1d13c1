"""Conversation persistence cost: what an append costs the agent loop (write + flush; the fsync
runs on the store's own thread), how soon everything is fsync'ed, and how
long ``%agent resume`` takes to read a long conversation back.

Appends realistic history items (user prompt, commentary, a function call and its ~2 kB output,
a final answer) to a ``ConversationStore`` on the same file system as the real store would use
(``--dir``, default: a temporary directory under the Jupyter data dir's parent), then reads the
file back with ``read_conversation`` and checks every item survived.

Run: ``python -m benchmarks.bench_persistence`` (``--items 4000``, ``--dir PATH``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from jupyter_agent.store import ConversationStore, default_root, read_conversation


def _items(n: int) -> list[dict]:
    out: list[dict] = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            out.append(
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"question {i} " * 8}]}
            )
        elif kind == 1:
            out.append(
                {
                    "type": "message",
                    "role": "assistant",
                    "phase": "commentary",
                    "content": [{"type": "output_text", "text": "Let me look at the data first."}],
                }
            )
        elif kind == 2:
            out.append(
                {
                    "type": "function_call",
                    "call_id": f"c{i}",
                    "name": "run_python",
                    "arguments": '{"code": "df.describe()"}',
                    "status": "completed",
                }
            )
        elif kind == 3:
            out.append({"type": "function_call_output", "call_id": f"c{i - 1}", "output": "x " * 1000})
        else:
            out.append(
                {
                    "type": "message",
                    "role": "assistant",
                    "phase": "final_answer",
                    "content": [{"type": "output_text", "text": f"The answer is {i}. " * 20}],
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--dir", default=None, help="directory on the file system to measure")
    args = parser.parse_args()
    base = Path(args.dir) if args.dir else default_root().parent
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        store = ConversationStore(tmp, "/bench/notebook.ipynb", secrets=lambda: ["sk-bench-not-a-real-key-000"])
        items = _items(args.items)
        lat: list[float] = []
        t_all = time.perf_counter()
        for item in items:
            t0 = time.perf_counter()
            store.append("bench", item)
            lat.append((time.perf_counter() - t0) * 1000)
        total = time.perf_counter() - t_all
        t0 = time.perf_counter()
        assert store.sync(60), "fsync did not finish"
        durable_ms = (time.perf_counter() - t0) * 1000
        store.close()
        path = store.path_for("bench")
        t0 = time.perf_counter()
        conv = read_conversation(path)
        load_ms = (time.perf_counter() - t0) * 1000
        assert conv.items == items, "items lost or changed"
        lat.sort()
        size_mb = path.stat().st_size / 1e6
        print(f"file system: {base}")
        print(
            f"append (write+flush; fsync on the store thread), {len(items)} items: p50 {statistics.median(lat):.3f} ms, "
            f"p99 {lat[int(len(lat) * 0.99) - 1]:.3f} ms, max {lat[-1]:.3f} ms, {len(items) / total:,.0f} items/s; "
            f"all fsync'ed {durable_ms:.1f} ms after the last append"
        )
        print(f"resume read: {len(conv.items)} items, {size_mb:.2f} MB in {load_ms:.1f} ms")


if __name__ == "__main__":
    main()
