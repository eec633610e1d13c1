"""Cell-rendering throughput: does ``TurnView`` keep a cell at <= ~30 front-end updates/s?

Drives a ``TurnView`` (live widget mode, no kernel) with synthetic ``TextDelta`` streams at
100, 1,000 and 10,000 deltas/s, the way ``%%agent`` drives it (handle each event of a batch,
then ``flush()``). Front-end traffic is counted at the lowest level available without a
kernel: every comm message the widgets publish (``comm_open`` / ``comm_msg`` /
``comm_close``, through a counting ``comm.create_comm``) and every ``display`` /
``update_display`` bundle, as the JSON bytes that would go on the wire.

Run: ``python -m benchmarks.bench_render`` (add ``--seconds 2``).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

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
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any) -> None:
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
    vocab = ["the ", "model ", "streams ", "tokens ", "quickly", ", ", ".\n", ".\n\n", "`code` ", "**bold** ", "data ", "frame ", "42 "]
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
    return Result(rate, elapsed, total, view.stats.frames, wire.messages, wire.bytes, window,
                  stream_msgs, stream_bytes, identical, busy / elapsed)


def main(argv: list[str] | None = None) -> list[Result]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--rates", type=int, nargs="*", default=[100, 1_000, 10_000])
    args = p.parse_args(argv)
    results = [run(rate, args.seconds) for rate in args.rates]
    print(f"TurnView rendering, {args.seconds:g} s per rate. Front end = comm/display messages counted at the comm layer;")
    print("'stream' = while deltas flow; 'total' adds opening the view (widget comm_open) and finish() (final display, close).")
    header = (f"{'deltas/s':>9} {'deltas':>7} {'updates/s':>9} {'max in 1 s':>10} {'stream msgs/s':>13} "
              f"{'stream bytes':>12} {'total msgs':>10} {'total bytes':>11} {'cpu':>4}  final text identical")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.rate:>9,} {r.deltas:>7,} {r.frames / r.seconds:>9.1f} {r.max_frames_in_1s:>10} "
              f"{r.stream_messages / r.seconds:>13.1f} {r.stream_bytes:>12,} {r.messages:>10,} {r.bytes:>11,} "
              f"{r.cpu_share:>4.0%}  {'yes' if r.identical else 'NO'}")
    return results


if __name__ == "__main__":
    main()
