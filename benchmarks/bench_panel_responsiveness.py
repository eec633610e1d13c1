"""Does a streaming side-panel turn block the kernel? ``1+1`` reply times, idle vs. while streaming.

A real ipykernel (jupyter_client) loads jupyter_agent and connects to the scripted server, which
streams one long answer at about ``--rate`` text deltas per second for ``--seconds`` seconds. The
benchmark opens the panel's comm exactly like JupyterLab does, starts the turn with a ``send``
message, and meanwhile executes ``1+1`` again and again, timing execute_request -> execute_reply.
The same is measured with the kernel idle first.

    .venv/bin/python benchmarks/bench_panel_responsiveness.py [--rate 5000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import threading
import time
import uuid
from typing import Any

from jupyter_client.manager import start_new_kernel

from jupyter_agent.testing import Ev, Reply, ScriptedServer
from jupyter_agent.testing.replies import _message_events, _number, completed_event, created_event


def stream_reply(rate: int, seconds: float) -> tuple[Reply, int]:
    """One answer of ``rate * seconds`` deltas, paced in 10 ms slices."""
    n = int(rate * seconds)
    text = "".join(f"w{i} " for i in range(n))
    msg, done = _message_events(text, "final_answer", 0, n)
    events: list[Any] = _number(
        [created_event("resp_bench", "gpt-bench"), *msg, completed_event("resp_bench", "gpt-bench", [done])]
    )
    per_slice = max(1, rate // 100)
    paced = [Ev(e, delay=0.01) if i and i % per_slice == 0 else Ev(e, delay=0.0) for i, e in enumerate(events)]
    return Reply(events=paced), n


class Kernel:
    def __init__(self) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_BASE_URL")
        }
        self.km, self.kc = start_new_kernel(kernel_name="python3", env=env)
        self.comm_id = uuid.uuid4().hex
        self.comm_msgs: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._iopub = threading.Thread(target=self._drain, daemon=True)
        self._iopub.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            if msg["msg_type"] == "comm_msg" and msg["content"].get("comm_id") == self.comm_id:
                self.comm_msgs.append(msg["content"]["data"])

    def execute(self, code: str, timeout: float = 60) -> tuple[str, float]:
        t0 = time.perf_counter()
        msg_id = self.kc.execute(code, silent=False, store_history=False)
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]["status"], time.perf_counter() - t0

    def comm(self, msg_type: str, content: dict[str, Any]) -> None:
        self.kc.shell_channel.send(self.kc.session.msg(msg_type, {"comm_id": self.comm_id, **content}))

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        evs = [m["event"] for m in list(self.comm_msgs) if m.get("type") == "event"]
        return [e for e in evs if kind is None or e["type"] == kind]

    def shutdown(self) -> None:
        self._stop.set()
        self._iopub.join(1)
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return (
        f"{name:<28} n={len(ms):4d}  median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   max {ms[-1]:7.2f} ms"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=5000, help="text deltas per second from the server")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the streamed answer")
    ap.add_argument("--idle-samples", type=int, default=50)
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
        deadline = time.monotonic() + 10
        while not any(m.get("type") == "history" for m in kernel.comm_msgs):
            if time.monotonic() > deadline:
                raise SystemExit("the panel comm did not answer hello")
            time.sleep(0.01)

        for _ in range(5):
            kernel.execute("1+1")  # warm-up
        idle = [kernel.execute("1+1")[1] for _ in range(args.idle_samples)]

        reply, n_deltas = stream_reply(args.rate, args.seconds)
        server.add_response(reply)
        kernel.comm("comm_msg", {"data": {"type": "send", "id": "bench", "text": "Stream a very long answer."}})
        while not kernel.events("text_delta"):
            time.sleep(0.001)
        t_start = time.perf_counter()
        busy: list[float] = []
        while not kernel.events("turn_done"):
            busy.append(kernel.execute("1+1")[1])
        t_stream = time.perf_counter() - t_start
        msgs_during = len(kernel.comm_msgs)
        done = kernel.events("turn_done")[-1]
        text = "".join(e["delta"] for e in kernel.events("text_delta"))
        assert done["status"] == "completed", done
        assert len(text.split()) == n_deltas, (len(text.split()), n_deltas)

        print(
            f"panel turn: {n_deltas} text deltas at ~{args.rate}/s from the server, streamed in {t_stream:.2f} s "
            f"({n_deltas / t_stream:.0f} deltas/s); {msgs_during} comm messages reached the front end "
            f"(deltas merged per {1000 / 50:.0f} ms frame); text complete: {len(text)} chars"
        )
        print(summary("1+1 reply, kernel idle", idle))
        print(summary("1+1 reply, panel streaming", busy))
        ratio = statistics.median(busy) / statistics.median(idle)
        print(f"median slowdown while streaming: x{ratio:.2f}")
        return 0
    finally:
        kernel.shutdown()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
