"""Property tests of the cell renderer: any sequence of agent events, in any order and with odd
values, renders without raising (live widgets, markdown, plain text), and the streamed text of a
message equals the concatenation of its deltas."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_agent import events as ev
from jupyter_agent.ui import TurnView

ids = st.sampled_from(["", "m1", "m2", "ws_1", "call_1"])
phases = st.sampled_from([None, "commentary", "final_answer", "something_new"])
texts = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(["```", "\n\n", "<b>", "**", "\\", "\x00"])
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6).map(float)
optional_ints = st.none() | st.integers(-(10**6), 10**9)
windows = st.none() | st.builds(
    ev.RateLimitWindow,
    used_percent=numbers,
    window_minutes=optional_ints,
    resets_at=st.none() | st.floats(0, 4e9),
    limit=optional_ints,
    remaining=optional_ints,
)
snapshots = st.builds(
    ev.RateLimitSnapshot,
    limit_id=st.sampled_from(["codex", "codex_other", "requests", "tokens", "x"]),
    limit_name=st.none() | texts,
    primary=windows,
    secondary=windows,
    credits=st.none()
    | st.builds(
        ev.Credits,
        st.booleans(),
        st.booleans(),
        st.none() | texts | st.sampled_from(["12.5", "-3", "inf", "nan", "1e400"]),
    ),
    source=st.sampled_from(["codex", "platform", "realtime"]),
    captured_at=st.floats(0, time.time() + 1e6),
)
events = st.one_of(
    st.builds(ev.TurnStarted, prompt=texts, model=texts),
    st.builds(ev.TextDelta, delta=texts, item_id=ids, phase=phases),
    st.builds(ev.MessageDone, text=texts, item_id=ids, phase=phases),
    st.builds(
        ev.ReasoningDelta,
        delta=texts,
        item_id=ids,
        kind=st.sampled_from(["summary", "content"]),
        index=st.integers(-2, 3),
    ),
    st.builds(
        ev.WebSearch,
        item_id=ids,
        status=st.sampled_from(["in_progress", "completed", "searching", ""]),
        action=st.none() | st.sampled_from(["search", "open_page", "find_in_page", "other"]),
        detail=texts,
    ),
    st.builds(ev.ToolCall, call_id=ids, name=texts, arguments=texts | st.just('{"a": [1, 2]}')),
    st.builds(ev.ToolResult, call_id=ids, name=texts, output=texts, is_error=st.booleans()),
    st.builds(ev.ApprovalRequest, call_id=ids, name=texts, arguments=texts),
    st.builds(
        ev.ApprovalResolved,
        call_id=ids,
        decision=st.sampled_from(["approve", "approve_always", "deny", "cancelled", "?"]),
    ),
    st.builds(ev.RateLimits, snapshot=st.none() | snapshots),
    st.builds(ev.ServerModel, model=texts),
    st.builds(ev.RerouteWarning, from_model=texts, to_model=texts, message=texts),
    st.builds(ev.Retry, attempt=st.integers(0, 9), max_attempts=st.integers(0, 9), delay=st.floats(0, 5)),
    st.builds(ev.Error, message=texts, retryable=st.booleans(), code=st.none() | texts),
    st.builds(ev.Notice, level=st.sampled_from(["info", "warning"]), message=texts),
    st.builds(ev.UsageEvent, usage=st.builds(ev.Usage, *(st.integers(0, 10**9) for _ in range(5)))),
    st.builds(ev.Telemetry, line=texts),
    st.builds(ev.TurnDone, status=st.sampled_from(["completed", "failed", "interrupted", "weird"]), text=texts),
    st.builds(ev.RealtimeEvent, kind=texts),
)


@contextmanager
def captured_display() -> Iterator[list[Any]]:
    """Collect display / update_display bundles instead of printing them."""
    import IPython.display as ipd

    sent: list[Any] = []
    saved = ipd.display, ipd.update_display
    ipd.display = lambda obj, raw=False, display_id=None, **kw: sent.append(obj)  # type: ignore[assignment]
    ipd.update_display = lambda obj, display_id=None, raw=False, **kw: sent.append(obj)  # type: ignore[assignment]
    try:
        yield sent
    finally:
        ipd.display, ipd.update_display = saved  # type: ignore[assignment]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, max_size=40), st.integers(1, 5))
def test_any_event_sequence_renders(sequence, flush_every):
    with captured_display() as sent:
        view = TurnView("gpt-test", widgets=True, min_interval=0.0)
        view.display()
        for i, event in enumerate(sequence):
            view.handle(event)
            if i % flush_every == 0:
                view.flush()
        md, text = view.markdown(), view.plain_text()
        assert isinstance(md, str) and md.endswith("\n") and isinstance(text, str)
        view.finish()
    final = sent[-2]  # the stable rendering, then the live display is hidden
    assert final["text/markdown"] == md and final["text/plain"] == text.rstrip("\n")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["m1", "m2"]), texts), min_size=1, max_size=60))
def test_streamed_text_is_the_concatenation_of_deltas(deltas):
    with captured_display():
        _check_streamed_text(deltas)


def _check_streamed_text(deltas: list[tuple[str, str]]) -> None:
    view = TurnView("gpt-test", widgets=True, min_interval=0.0)
    view.display()
    for item_id, delta in deltas:
        view.handle(ev.TextDelta(delta=delta, item_id=item_id, phase="final_answer"))
        view.flush()
    view.flush(force=True)
    expected = {i: "".join(d for j, d in deltas if j == i) for i in ("m1", "m2")}
    got = {b.item_id: b.text for b in view.state.blocks}
    assert {k: v for k, v in expected.items() if k in got} == got
    assert all(not v for k, v in expected.items() if k not in got)
    # the live segments carry exactly the streamed text
    for block, box, _v in view._block_widgets.values():
        seg = box._jpa_seg
        assert "".join(seg.body(block.text, i) for i in range(len(seg.splits))) == block.text
    view.finish()
    assert math.isfinite(view.stats.bytes_sent)
