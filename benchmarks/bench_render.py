"""Cell-rendering throughput: does ``TurnView`` keep a cell at <= ~30 front-end updates/s?

Drives a ``TurnView`` (live widget mode, no kernel) with synthetic ``TextDelta`` streams at
100, 1,000 and 10,000 deltas/s, the way ``%%agent`` drives it (handle each event of a batch,
then ``flush()``). Front-end traffic is counted at the lowest level available without a
kernel: every comm message the widgets publish (``comm_open`` / ``comm_msg`` /
``comm_close``, through a counting ``comm.create_comm``) and every ``display`` /
``update_display`` bundle, as the JSON bytes that would go on the wire.

With ``--kernel`` (the default when run as a script; ``--no-kernel`` skips it) the same rates
run end to end in a real ipykernel: a ``%%agent`` cell against the scripted Responses server
(SSE), counting the iopub messages of the cell as a front end receives them (widget
``comm_msg`` updates, grouped into frames by their kernel timestamps; bytes = JSON of each
message content) and checking that the final rendering and ``Turn.text`` equal the streamed text.

Run: ``python -m benchmarks.bench_render`` (add ``--seconds 2``, ``--no-kernel``).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import comm
from comm import DummyComm

from jupyter_agent import events as ev
from jupyter_agent.ui import TurnView


@dataclass
class Wire:
    """What reached the (fake) front end."""

    messages: int = 0
    bytes: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    displays: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: str, payload: Any) -> None:
        self.messages += 1
        self.bytes += len(json.dumps(payload, default=str, ensure_ascii=False).encode())
        self.by_type[kind] = self.by_type.get(kind, 0) + 1


@contextmanager
def fake_frontend() -> Iterator[Wire]:
    """Count comm messages and display bundles instead of sending them to a kernel."""
    import IPython.display as ipd

    wire = Wire()

    class CountingComm(DummyComm):
        def publish_msg(
            self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
        ) -> None:
            wire.add(msg_type, {"data": data, "metadata": metadata})
            for b in buffers or ():
                wire.bytes += len(b)

    saved = comm.create_comm, ipd.display, ipd.update_display

    def display(*objs: Any, raw: bool = False, display_id: Any = None, **kw: Any) -> None:
        for obj in objs:
            wire.add("display_data", obj)
            wire.displays.append(obj)

    def update_display(obj: Any, *, display_id: Any, raw: bool = False, **kw: Any) -> None:
        wire.add("update_display_data", obj)

    comm.create_comm = lambda **kw: CountingComm(**kw)  # type: ignore[assignment]
    ipd.display, ipd.update_display = display, update_display  # type: ignore[assignment]
    try:
        yield wire
    finally:
        comm.create_comm, ipd.display, ipd.update_display = saved  # type: ignore[assignment]


def _words(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    vocab = [
        "the ",
        "model ",
        "streams ",
        "tokens ",
        "quickly",
        ", ",
        ".\n",
        ".\n\n",
        "`code` ",
        "**bold** ",
        "data ",
        "frame ",
        "42 ",
    ]
    return [rnd.choice(vocab) for _ in range(n)]


@dataclass
class Result:
    rate: int
    seconds: float
    deltas: int
    frames: int
    messages: int
    bytes: int
    max_frames_in_1s: int
    stream_messages: int
    stream_bytes: int
    identical: bool
    cpu_share: float


def run(rate: int, seconds: float = 2.0, tick: float = 0.001) -> Result:
    """Stream ``rate`` deltas/s for ``seconds``; the driver flushes after every batch."""
    total = int(rate * seconds)
    deltas = _words(total, rate)
    with fake_frontend() as wire:
        view = TurnView("bench-model", widgets=True)
        view.display()
        view.handle(ev.TurnStarted(prompt="bench", model="bench-model"))
        setup_msgs, setup_bytes = wire.messages, wire.bytes
        frame_times: list[float] = []
        busy = 0.0
        sent = 0
        start = time.monotonic()
        while sent < total:
            now = time.monotonic()
            due = min(total, int((now - start) * rate) + 1)
            t0 = time.perf_counter()
            for i in range(sent, due):
                view.handle(ev.TextDelta(delta=deltas[i], item_id="msg_1", phase="final_answer"))
            sent = max(sent, due)
            if view.flush():
                frame_times.append(now - start)
            busy += time.perf_counter() - t0
            time.sleep(tick)
        elapsed = time.monotonic() - start
        stream_msgs, stream_bytes = wire.messages - setup_msgs, wire.bytes - setup_bytes
        view.handle(ev.MessageDone(text="".join(deltas), item_id="msg_1", phase="final_answer"))
        view.handle(ev.TurnDone(text="".join(deltas)))
        view.flush(force=True)
        box = next(iter(view._block_widgets.values()))[1]
        seg = box._jpa_seg
        live_text = "".join(seg.sent[i] for i in range(len(seg.splits)))
        live_md0 = seg.widgets[0].outputs[0]["data"]["text/markdown"]
        view.finish()
    expected = "".join(deltas)
    final_md = wire.displays[-1]["text/markdown"]
    identical = (
        view.state.answer_text() == expected
        and live_text == expected
        and live_md0.startswith("**Final answer**\n\n")
        and final_md == f"**Final answer**\n\n{expected}".strip() + "\n"
    )
    window = max((sum(1 for t in frame_times if s <= t < s + 1.0) for s in frame_times), default=0)
    return Result(
        rate,
        elapsed,
        total,
        view.stats.frames,
        wire.messages,
        wire.bytes,
        window,
        stream_msgs,
        stream_bytes,
        identical,
        busy / elapsed,
    )


# --- end to end in a real kernel ---------------------------------------------------------

KERNEL_SETUP = """
%load_ext jupyter_agent
import jupyter_agent.magics as _M
from jupyter_agent.testing import ScriptedServer, Reply, Ev
from jupyter_agent.testing.replies import text_events
from benchmarks.bench_render import _words, paced_events

_server = ScriptedServer().start()
%agent connect --base-url $_server.base_url --provider compatible --model bench-model --transport sse
_agent = _M.get_agent()

def _queue(rate, seconds):
    text = "".join(_words(int(rate * seconds), rate))
    _server.add_response(Reply(events=paced_events(text_events(text, phase="final_answer", chunks=1), _words(int(rate * seconds), rate), rate)))
    return text
"""


def paced_events(events: list[dict[str, Any]], deltas: list[str], rate: int) -> list[Any]:
    """Replace the single text delta of ``events`` by ``deltas`` sent at ``rate`` per second
    (sleeping every few deltas, at least 5 ms at a time, so the pace holds at 10,000/s)."""
    from jupyter_agent.testing import Ev

    i = next(k for k, e in enumerate(events) if e["type"] == "response.output_text.delta")
    template = events[i]
    every = max(1, int(rate * 0.005))
    out: list[Any] = list(events[:i])
    for n, d in enumerate(deltas):
        e = {**template, "delta": d}
        out.append(Ev(e, delay=every / rate) if n % every == 0 else e)
    out.extend(events[i + 1 :])
    return out


@dataclass
class KernelResult:
    rate: int
    achieved_rate: float
    stream_seconds: float
    frames: int
    max_frames_in_1s: int
    comm_msgs: int
    comm_bytes: int
    total_msgs: int
    total_bytes: int
    identical: bool


def _execute(kc: Any, code: str, timeout: float = 120.0) -> list[dict[str, Any]]:
    msg_id = kc.execute(code)
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            kc.get_shell_msg(timeout=10)
            return out
        if msg["msg_type"] not in ("status", "execute_input"):
            out.append(msg)
    raise TimeoutError(code[:60])


def _frames(times: list[float], gap: float = 0.010) -> list[float]:
    """Group message times into frames (messages less than ``gap`` apart belong to one frame)."""
    frames: list[float] = []
    last: float | None = None
    for t in sorted(times):
        if last is None or t - last > gap:
            frames.append(t)
        last = t
    return frames


def streamed_text(msgs: list[dict[str, Any]]) -> str:
    """The answer as the live view streamed it: the last non-empty markdown of each text segment
    (ipywidgets ``Output``), in the order of the last ``children`` list made only of segments."""
    outputs: dict[str, str] = {}
    children: list[list[str]] = []
    for m in msgs:
        if m["msg_type"] not in ("comm_open", "comm_msg"):
            continue
        state = (m["content"].get("data") or {}).get("state") or {}
        cid = m["content"]["comm_id"]
        if state.get("outputs"):
            outputs[cid] = state["outputs"][0]["data"]["text/markdown"]
        if isinstance(state.get("children"), list) and state["children"]:
            children.append([c.removeprefix("IPY_MODEL_") for c in state["children"]])
    boxes = [ids for ids in children if all(i in outputs for i in ids)]
    if not boxes:
        return ""
    md = [outputs[i] for i in boxes[-1]]
    md[0] = md[0].removeprefix("**Final answer**\n\n")
    return "".join(md)


def run_kernel(rates: list[int], seconds: float) -> list[KernelResult]:
    from jupyter_client.manager import start_new_kernel

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(root), env=env)
    results = []
    try:
        setup = _execute(kc, KERNEL_SETUP)
        errors = [m for m in setup if m["msg_type"] == "error"]
        if errors:
            raise RuntimeError(errors[0]["content"]["evalue"])
        for rate in rates:
            _execute(kc, f"_expected = _queue({rate}, {seconds})")
            msgs = _execute(kc, "%%agent\nbench")
            check = _execute(kc, "print(_agent.turns[-1].text == _expected, len(_expected))")
            expected = "".join(_words(int(rate * seconds), rate))
            comm = [m for m in msgs if m["msg_type"] == "comm_msg"]
            times = [m["header"]["date"].timestamp() for m in comm]
            frames = _frames(times)
            window = max((sum(1 for t in frames if s <= t < s + 1.0) for s in frames), default=0)
            span = (max(times) - min(times)) if len(times) > 1 else 0.0
            finals = [
                m["content"]["data"]["text/markdown"]
                for m in msgs
                if m["msg_type"] == "display_data" and "text/markdown" in m["content"].get("data", {})
            ]
            size = lambda ms: sum(len(json.dumps(m["content"], default=str, ensure_ascii=False).encode()) for m in ms)  # noqa: E731 - a one-line local helper
            identical = (
                len(finals) == 1
                and finals[0].startswith(f"**Final answer**\n\n{expected}\n\n")
                and streamed_text(msgs) == expected
                and "True" in "".join(m["content"].get("text", "") for m in check)
            )
            results.append(
                KernelResult(
                    rate,
                    int(rate * seconds) / span if span else 0.0,
                    span,
                    len(frames),
                    window,
                    len(comm),
                    size(comm),
                    len(msgs),
                    size(msgs),
                    identical,
                )
            )
        _execute(kc, "_server.stop()")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return results


def main(argv: list[str] | None = None) -> list[Result]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--rates", type=int, nargs="*", default=[100, 1_000, 10_000])
    p.add_argument(
        "--kernel",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure end to end in a real ipykernel (default: yes)",
    )
    args = p.parse_args(argv)
    results = [run(rate, args.seconds) for rate in args.rates]
    print(
        f"TurnView rendering, {args.seconds:g} s per rate. Front end = comm/display messages counted at the comm layer;"
    )
    print(
        "'stream' = while deltas flow; 'total' adds opening the view (widget comm_open) and finish() (final display, close)."
    )
    header = (
        f"{'deltas/s':>9} {'deltas':>7} {'updates/s':>9} {'max in 1 s':>10} {'stream msgs/s':>13} "
        f"{'stream bytes':>12} {'total msgs':>10} {'total bytes':>11} {'cpu':>4}  final text identical"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.rate:>9,} {r.deltas:>7,} {r.frames / r.seconds:>9.1f} {r.max_frames_in_1s:>10} "
            f"{r.stream_messages / r.seconds:>13.1f} {r.stream_bytes:>12,} {r.messages:>10,} {r.bytes:>11,} "
            f"{r.cpu_share:>4.0%}  {'yes' if r.identical else 'NO'}"
        )
    if args.kernel:
        print()
        print("End to end in a real ipykernel: %%agent cell <- scripted server (SSE) at the given delta rate;")
        print(
            "front end = the cell's iopub messages (widget comm_msg updates; frames = updates less than 10 ms apart)."
        )
        header = (
            f"{'deltas/s':>9} {'achieved':>9} {'stream s':>8} {'frames/s':>8} {'max in 1 s':>10} {'comm msgs':>9} "
            f"{'comm bytes':>10} {'total msgs':>10} {'total bytes':>11}  final text identical"
        )
        print(header)
        print("-" * len(header))
        for k in run_kernel(args.rates, args.seconds):
            per_s = k.frames / k.stream_seconds if k.stream_seconds else 0.0
            print(
                f"{k.rate:>9,} {k.achieved_rate:>9,.0f} {k.stream_seconds:>8.2f} {per_s:>8.1f} {k.max_frames_in_1s:>10} "
                f"{k.comm_msgs:>9,} {k.comm_bytes:>10,} {k.total_msgs:>10,} {k.total_bytes:>11,}  "
                f"{'yes' if k.identical else 'NO'}"
            )
    return results


if __name__ == "__main__":
    main()
