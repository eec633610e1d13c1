"""Does a streaming ``%%agent`` cell block the kernel? Panel-comm round trips while a cell streams.

A real ipykernel (jupyter_client) loads jupyter_agent and connects to the scripted server, which
streams one long answer at about ``--rate`` text deltas per second. A ``%%agent`` cell consumes the
turn with a top-level ``await`` on the kernel thread. Shell requests are sequential in Jupyter,
so a ``1+1`` sent during the cell runs when the cell ends (its reply time is printed as such);
what must stay responsive is everything the kernel handles *while* the cell awaits: the side
panel's comm requests (``history``, Stop, approvals). The benchmark times comm round trips
(``history`` request -> ``history`` reply on iopub), idle and while the cell streams.

    .venv/bin/python -m benchmarks.bench_cell_responsiveness [--rate 5000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from jupyter_agent.testing import ScriptedServer

from .bench_panel_responsiveness import Kernel, stream_reply, summary


def comm_round_trip(kernel: Kernel, timeout: float = 30.0) -> float:
    before = sum(1 for m in list(kernel.comm_msgs) if m.get("type") == "history")
    t0 = time.perf_counter()
    kernel.comm("comm_msg", {"data": {"type": "history"}})
    deadline = time.monotonic() + timeout
    while sum(1 for m in list(kernel.comm_msgs) if m.get("type") == "history") <= before:
        if time.monotonic() > deadline:
            raise SystemExit("no history reply: the kernel did not process the comm message")
        time.sleep(0.0005)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--idle-samples", type=int, default=30)
    args = ap.parse_args()

    server = ScriptedServer().start()
    kernel = Kernel()
    try:
        for code in (
            "%load_ext jupyter_agent",
            f"%agent connect --base-url {server.base_url} --provider compatible --model gpt-bench --transport sse",
        ):
            status, _ = kernel.execute(code)
            assert status == "ok", code
        kernel.comm("comm_open", {"target_name": "jupyter_agent", "data": {"type": "hello", "version": 1}})
        comm_round_trip(kernel)
        idle = [comm_round_trip(kernel) for _ in range(args.idle_samples)]

        reply, n_deltas = stream_reply(args.rate, args.seconds)
        server.add_response(reply)
        t0 = time.perf_counter()
        cell_id = kernel.kc.execute("%%agent\nStream a very long answer.", silent=False, store_history=False)
        while not kernel.events("text_delta"):
            time.sleep(0.001)
        busy: list[float] = []
        while not kernel.events("turn_done"):
            busy.append(comm_round_trip(kernel))
        t_one = time.perf_counter()
        one_id = kernel.kc.execute("1+1", silent=False, store_history=False)
        replies: dict[str, float] = {}
        while len(replies) < 2:
            msg = kernel.kc.get_shell_msg(timeout=60)
            pid = msg["parent_header"].get("msg_id")
            if pid in (cell_id, one_id):
                replies[pid] = time.perf_counter()
                assert msg["content"]["status"] == "ok", msg["content"]
        done = kernel.events("turn_done")[-1]
        assert done["status"] == "completed", done
        print(f"%%agent cell: {n_deltas} deltas at ~{args.rate}/s, cell finished after {replies[cell_id] - t0:.2f} s")
        print(summary("comm round trip, idle", idle))
        print(summary("comm round trip, cell streams", busy))
        print(f"median slowdown while the cell streams: x{statistics.median(busy) / statistics.median(idle):.2f}")
        print(
            f"1+1 sent as the turn ended replied {1000 * (replies[one_id] - t_one):.1f} ms later "
            "(shell requests wait for the running cell)"
        )
        return 0
    finally:
        kernel.shutdown()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
