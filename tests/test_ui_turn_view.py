"""TurnView / TurnViewState: renderings from event sequences, retry rollback, throttling, controls."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from jupyter_agent import events as ev
from jupyter_agent.ui import TurnView
from jupyter_agent.ui.turn_view import SEGMENT_CHARS, WIDGET_VIEW

NOW = time.time()


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def frontend(monkeypatch):
    """Capture display / update_display bundles instead of printing them."""
    import IPython.display as ipd

    sent: list[tuple[str, dict[str, Any], Any]] = []
    monkeypatch.setattr(
        ipd, "display", lambda obj, raw=False, display_id=None, **kw: sent.append(("display", obj, display_id))
    )
    monkeypatch.setattr(
        ipd, "update_display", lambda obj, display_id=None, raw=False, **kw: sent.append(("update", obj, display_id))
    )
    return sent


def live_view(**kw) -> TurnView:
    return TurnView("gpt-5.3-codex", widgets=True, **kw)


def feed(view: TurnView, events) -> TurnView:
    for e in events:
        view.handle(e)
    return view


def full_turn() -> list[ev.AgentEvent]:
    return [
        ev.TurnStarted(prompt="weather?", model="gpt-5.3-codex"),
        ev.ServerModel(model="gpt-5.2"),
        ev.RerouteWarning(
            from_model="gpt-5.3-codex",
            to_model="gpt-5.2",
            message="The server answered with model gpt-5.2 instead of the requested gpt-5.3-codex.",
        ),
        ev.RateLimits(
            snapshot=ev.RateLimitSnapshot(
                "codex",
                primary=ev.RateLimitWindow(75, 300, NOW + 3600),
                secondary=ev.RateLimitWindow(10, 10080, NOW + 86400),
            )
        ),
        ev.ReasoningDelta(delta="The user wants", item_id="rs_1"),
        ev.ReasoningDelta(delta=" the weather.", item_id="rs_1"),
        ev.TextDelta(delta="Let me ", item_id="msg_1", phase="commentary"),
        ev.TextDelta(delta="search.", item_id="msg_1", phase="commentary"),
        ev.MessageDone(text="Let me search.", item_id="msg_1", phase="commentary"),
        ev.WebSearch(item_id="ws_1"),
        ev.WebSearch(item_id="ws_2"),
        ev.WebSearch(
            item_id="ws_1", status="completed", action="search", detail="weather seattle", query="weather seattle"
        ),
        ev.WebSearch(
            item_id="ws_2", status="completed", action="find_in_page", detail="'needle' in https://example.com"
        ),
        ev.ServerModel(model="gpt-5.2"),
        ev.RerouteWarning(from_model="gpt-5.3-codex", to_model="gpt-5.2", message="again"),
        ev.TextDelta(delta="It is ", item_id="msg_2", phase="final_answer"),
        ev.TextDelta(delta="sunny.", item_id="msg_2", phase="final_answer"),
        ev.MessageDone(text="It is sunny.", item_id="msg_2", phase="final_answer"),
        ev.UsageEvent(usage=ev.Usage(100, 20, 30, 5, 130)),
        ev.Telemetry(line="Inference: 1 calls (120ms) | TTFT: 80ms"),
        ev.TurnDone(status="completed", text="It is sunny."),
    ]


def test_plain_text_of_a_full_turn():
    text = feed(live_view(), full_turn()).plain_text()
    assert text.count("Warning:") == 1  # once per turn
    assert "gpt-5.3-codex" in text and "gpt-5.2" in text
    assert "[Commentary (interim)]\nLet me search." in text
    assert "[Final answer]\nIt is sunny." in text
    assert "[Reasoning summary]\n  The user wants the weather." in text
    assert "Searched weather seattle\nSearched 'needle' in https://example.com" in text  # one line per call, in place
    assert "Searching the web" not in text
    assert "Tokens: 130 total (input 100, cached 20, output 30, reasoning 5)" in text
    assert "Inference: 1 calls (120ms) | TTFT: 80ms" in text
    assert "5h limit:" in text and "Weekly limit:" in text and "25% left" in text
    # order: warning first, commentary before the search lines before the final answer
    assert (
        text.index("Warning") < text.index("Commentary") < text.index("Searched weather") < text.index("Final answer")
    )


def test_markdown_of_a_full_turn():
    md = feed(live_view(), full_turn()).markdown()
    assert md.startswith("> **⚠ Warning:**")
    assert "**Commentary (interim)**\n\n> Let me search." in md  # interim narration is quoted
    assert "**Final answer**\n\nIt is sunny." in md
    assert "<details><summary>Reasoning summary</summary>" in md  # collapsed by default
    assert "• Searched weather seattle  \n• Searched 'needle' in https://example.com" in md
    assert "Tokens: 130 total" in md and "**Rate limits**" in md


def test_web_search_in_progress_line():
    view = feed(live_view(), [ev.WebSearch(item_id="ws_1")])
    assert view.plain_text().strip() == "Searching the web"
    view.handle(ev.WebSearch(item_id="ws_1", status="completed", action="open_page", detail="https://example.com/a"))
    assert view.plain_text().strip() == "Searched https://example.com/a"
    view.handle(ev.WebSearch(item_id="ws_3", status="completed", action="other", detail=""))
    assert view.plain_text().strip().endswith("Searched")


def test_retry_rolls_back_the_failed_attempt():
    view = feed(
        live_view(),
        [
            ev.TurnStarted(prompt="p"),
            ev.TextDelta(delta="Hel", item_id="m1", phase="final_answer"),
            ev.WebSearch(item_id="ws_1"),
            ev.Retry(attempt=1, max_attempts=5, reason="stream closed"),
        ],
    )
    assert view.plain_text().strip() == "Reconnecting... 1/5"
    view.handle(ev.Retry(attempt=2, max_attempts=5))
    assert view.plain_text().strip() == "Reconnecting... 2/5"  # in place, not a second line
    for d in ("Hel", "lo ", "world"):
        view.handle(ev.TextDelta(delta=d, item_id="m1", phase="final_answer"))
    view.handle(ev.TurnDone(text="Hello world"))
    text = view.plain_text()
    assert "Reconnecting" not in text
    assert view.state.answer_text() == "Hello world"  # never duplicated
    assert text.count("Hello world") == 1 and "Searching" not in text


def test_retry_after_a_tool_round_keeps_the_tool_round():
    view = feed(
        live_view(),
        [
            ev.TurnStarted(prompt="p"),
            ev.TextDelta(delta="I'll run code.", item_id="m1", phase="commentary"),
            ev.ToolCall(call_id="c1", name="run_code", arguments='{"code": "1+1"}'),
            ev.ToolResult(call_id="c1", name="run_code", output="2"),
            ev.TextDelta(delta="The ans", item_id="m2", phase="final_answer"),
            ev.Retry(attempt=1, max_attempts=3),
            ev.TextDelta(delta="The answer is 2.", item_id="m2", phase="final_answer"),
            ev.TurnDone(text="The answer is 2."),
        ],
    )
    text = view.plain_text()
    assert "I'll run code." in text and "Tool call: run_code" in text and "    2" in text
    assert view.state.answer_text() == "The answer is 2."
    assert "The ansThe" not in text


def test_tool_call_rendering_with_arguments_and_result():
    view = feed(
        live_view(),
        [
            ev.ToolCall(call_id="c1", name="run_code", arguments='{"code": "print(1)"}'),
            ev.ToolResult(call_id="c1", name="run_code", output="1\n"),
            ev.ToolCall(call_id="c2", name="lookup", arguments='{"key": "a", "n": 2}'),
            ev.ToolResult(call_id="c2", name="lookup", output="boom", is_error=True),
        ],
    )
    md = view.markdown()
    assert "**Tool call** `run_code`\n\n```python\nprint(1)\n```" in md
    assert '"key": "a"' in md and "**Error:**\n\n```text\nboom\n```" in md
    assert "**Result:**\n\n```text\n1\n```" in md


def test_errors_show_one_clear_message():
    msg = "You've hit your usage limit for codex-other. Switch to another model now, or try again at 3:00 PM."
    view = feed(
        live_view(),
        [
            ev.Retry(attempt=3, max_attempts=3),
            ev.Error(message=msg, code="usage_limit_reached"),
            ev.Error(message=msg, code="usage_limit_reached"),
            ev.TurnDone(status="failed"),
        ],
    )
    text = view.plain_text()
    assert text.count("Error: ") == 1 and msg in text and "Reconnecting" not in text
    assert "**Error:** You've hit your usage limit for codex-other." in view.markdown()


def test_usage_limit_error_names_the_exhausted_bucket_and_reset(frontend):
    from jupyter_agent.ui.gauges import format_reset

    reset = NOW + 5400
    msg = "You've hit your usage limit. Try again at 15:00."
    view = live_view()
    view.display()
    feed(
        view,
        [
            ev.RateLimits(
                snapshot=ev.RateLimitSnapshot(
                    "codex",
                    primary=ev.RateLimitWindow(100, 300, reset),
                    secondary=ev.RateLimitWindow(60, 10080, NOW + 86400),
                )
            ),
            ev.Error(message=msg, code="usage_limit_reached"),
            ev.TurnDone(status="failed"),
        ],
    )
    detail = f"Limit reached: 5h limit (resets {format_reset(reset)})."
    assert f"Error: {msg} {detail}" in view.plain_text()
    assert "Weekly limit (resets" not in view.plain_text().split("Rate limits:")[0]  # only exhausted windows
    view.flush(force=True)
    assert detail in view._w["errors"].value
    # other errors are left alone, and no exhausted window means no detail
    other = feed(
        live_view(),
        [
            ev.RateLimits(snapshot=ev.RateLimitSnapshot("codex", primary=ev.RateLimitWindow(100, 300, reset))),
            ev.Error(message="Prompt flagged.", code="invalid_prompt"),
        ],
    )
    assert "Limit reached" not in other.plain_text()
    fresh = feed(live_view(), [ev.Error(message=msg, code="usage_limit_reached")])
    assert f"Error: {msg}\n" in fresh.plain_text()


def test_notices_interrupt_and_unknown_events():
    @dataclass(frozen=True, slots=True)
    class FutureEvent(ev.AgentEvent):
        type: ClassVar[str] = "future"
        x: int = 1

    view = feed(
        live_view(),
        [
            ev.Notice(message="Answered by the embedded local model."),
            FutureEvent(),
            ev.RealtimeEvent(kind="event"),
            ev.TextDelta(delta="partial", item_id="m"),
            ev.TurnDone(status="interrupted", text="partial"),
        ],
    )
    text = view.plain_text()
    assert text.startswith("Note: Answered by the embedded local model.")
    assert "partial" in text and text.rstrip().endswith("[interrupted]")


def test_unphased_text_has_no_label():
    view = feed(live_view(), [ev.TextDelta(delta="plain answer"), ev.MessageDone(text="plain answer")])
    assert view.plain_text() == "plain answer\n"


def test_message_done_sets_phase_and_authoritative_text():
    view = feed(
        live_view(),
        [ev.TextDelta(delta="abc", item_id="m"), ev.MessageDone(text="abcd", item_id="m", phase="final_answer")],
    )
    assert view.plain_text() == "[Final answer]\nabcd\n"


# --- live widget -------------------------------------------------------------------------


def test_display_then_finish_bundles(frontend):
    view = live_view()
    view.display()
    kind, bundle, display_id = frontend[0]
    assert kind == "display" and display_id == view.display_id
    # no text/plain: exports and widget-less frontends show only the final rendering
    assert set(bundle) == {WIDGET_VIEW} and bundle[WIDGET_VIEW]["model_id"]
    feed(view, full_turn())
    view.flush()
    view.finish()
    (k1, final, fid), (k2, hidden, hid) = frontend[-2:]
    assert k1 == "display" and fid is None
    assert final["text/markdown"] == view.markdown() and final["text/plain"] == view.plain_text().rstrip("\n")
    assert k2 == "update" and hid == view.display_id
    assert hidden == {WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": ""}}
    view.finish()  # idempotent
    assert len(frontend) == 3


def test_finish_is_deterministic_for_a_deterministic_stream(frontend):
    finals = []
    for _ in range(2):
        view = live_view()
        view.display()
        events = [e for e in full_turn() if not isinstance(e, ev.RateLimits)]
        feed(view, events)
        view.finish()
        finals.append(frontend[-2][1])
    assert finals[0] == finals[1]


def test_flush_is_throttled_to_30_per_second(frontend):
    clock = FakeClock()
    view = live_view(clock=clock)
    view.display()
    frames = 0
    for _ in range(10_000):  # 10,000 deltas over 1 s of fake time, flush after each
        clock.t += 0.0001
        view.handle(ev.TextDelta(delta="x", item_id="m", phase="final_answer"))
        frames += view.flush()
    assert 28 <= frames <= 31
    assert view.stats.frames >= frames
    assert not view.flush()  # nothing new
    view.handle(ev.TextDelta(delta="y", item_id="m", phase="final_answer"))
    assert not view.flush()  # too soon
    assert view.flush(force=True)


def test_live_widgets_show_the_state(frontend):
    view = live_view()
    view.display()
    feed(view, full_turn()[:-1])
    view.flush(force=True)
    w = view._w
    assert "Warning" in w["notices"].value and "gpt-5.2" in w["notices"].value
    assert "gpt-5.2" in w["head"].value and "working" in w["head"].value
    assert "5h limit" in w["gauges"].value and 'data-level="warn"' in w["gauges"].value
    assert "Tokens: 130 total" in w["footer"].value
    kinds = [type(c).__name__ for c in w["transcript"].children]
    assert kinds == ["Accordion", "VBox", "HTML", "HTML", "VBox"]
    acc = w["transcript"].children[0]
    assert acc.selected_index is None  # reasoning collapsed by default
    assert [c.value for c in w["transcript"].children[2:4]] == [
        '<div class="jpa-search" data-status="completed">• Searched weather seattle</div>',
        '<div class="jpa-search" data-status="completed">• Searched \'needle\' in https://example.com</div>',
    ]
    final_box = w["transcript"].children[4]
    assert final_box.children[0].outputs[0]["data"]["text/markdown"] == "**Final answer**\n\nIt is sunny."
    view.handle(ev.Retry(attempt=1, max_attempts=4))
    view.flush(force=True)
    assert "Reconnecting... 1/4" in w["status"].value


def test_long_messages_stream_as_segments_and_reassemble(frontend):
    clock = FakeClock()
    view = live_view(clock=clock)
    view.display()
    paras = [f"Paragraph {i}: " + "word " * 150 + "\n\n" for i in range(40)]
    paras[5] = "```python\n" + "x = 1\n\n" * 900 + "```\n\n"  # no split inside a code fence
    chunks = [p[j : j + 7] for p in paras for j in range(0, len(p), 7)]
    for c in chunks:
        clock.t += 0.003
        view.handle(ev.TextDelta(delta=c, item_id="m", phase="commentary"))
        view.flush()
    view.flush(force=True)
    box = view._w["transcript"].children[0]
    seg = box._jpa_seg
    assert len(seg.widgets) > 5 and len(box.children) == len(seg.widgets)
    texts = [seg.sent[i] for i in range(len(seg.splits))]
    assert "".join(texts) == "".join(paras)
    assert all(t.count("```") % 2 == 0 for t in texts)
    assert all(len(t) >= SEGMENT_CHARS for t in texts[:-1])
    md = [w.outputs[0]["data"]["text/markdown"] for w in seg.widgets]
    assert md[0].startswith("**Commentary (interim)**\n\n> Paragraph 0")
    assert md[1].startswith("> ") and "Commentary" not in md[1]


def test_approval_buttons_call_back(frontend):
    calls = []
    view = live_view(on_approval=lambda cid, d: calls.append((cid, d)))
    view.display()
    feed(
        view,
        [
            ev.ToolCall(call_id="c1", name="run_code", arguments='{"code": "rm()"}'),
            ev.ApprovalRequest(call_id="c1", name="run_code", arguments='{"code": "rm()"}'),
        ],
    )
    view.flush(force=True)
    box = view._w["transcript"].children[0]
    bar = box._jpa_bar
    assert bar.layout.display == "flex"
    assert [b.description for b in bar.children] == ["Approve", "Approve always", "Deny"]
    assert "Waiting for approval" in view.plain_text() or "waiting for approval" in view.plain_text()
    bar.children[1].click()
    assert calls == [("c1", "approve_always")]
    assert bar.layout.display == "none"
    bar.children[2].click()  # already decided: ignored
    assert calls == [("c1", "approve_always")]
    view.handle(ev.ApprovalResolved(call_id="c1", decision="approve_always"))
    assert "approval: approved (always for this tool)" in view.plain_text()
    # a second call: Deny
    feed(view, [ev.ApprovalRequest(call_id="c2", name="run_code", arguments="{}")])
    view.flush(force=True)
    view._w["transcript"].children[1]._jpa_bar.children[2].click()
    assert calls[-1] == ("c2", "deny")


def test_stop_button_calls_on_stop(frontend):
    stops = []
    view = live_view(on_stop=lambda: stops.append(1))
    view.display()
    stop = view._w["stop"]
    assert stop.description == "Stop" and not stop.disabled
    stop.click()
    stop.click()
    assert stops == [1]
    assert stop.disabled and "stopping" in view._w["head"].value
    view.handle(ev.TurnDone(status="interrupted"))
    view.finish()
    assert "[interrupted]" in frontend[-2][1]["text/plain"]


def test_plain_frontend_refuses_approvals_and_prints_text(frontend):
    calls = []
    view = TurnView("m", on_approval=lambda cid, d: calls.append((cid, d)), widgets=False)
    view.display()
    assert frontend == []
    feed(
        view,
        [
            ev.ToolCall(call_id="c1", name="run_code", arguments="{}"),
            ev.ApprovalRequest(call_id="c1", name="run_code", arguments="{}"),
            ev.TextDelta(delta="done"),
        ],
    )
    assert calls == [("c1", "deny")]
    assert not view.flush(force=True)
    view.finish()
    ((kind, bundle, _),) = frontend
    assert kind == "display"
    assert "Refused run_code" in bundle["text/plain"] and "approval: denied" in bundle["text/plain"]
    assert bundle["text/markdown"] == view.markdown()


def test_stats_count_bytes(frontend):
    view = live_view()
    view.display()
    base = view.stats.bytes_sent
    view.handle(ev.TextDelta(delta="x" * 1000, item_id="m"))
    view.flush(force=True)
    assert view.stats.bytes_sent - base > 1000
    assert view.stats.updates_sent > 0 and view.stats.displays == 1


def test_footer_renders_a_telemetry_event(frontend):
    """The turn footer: token usage and, when the agent emits one, the telemetry summary line."""
    line = "Inference: 2 calls (1.2s) • WebSocket: 2 events send (8ms) • 41 events received (950ms) • TTFT: 310ms"
    summary = {
        "api_calls": {"count": 2, "duration_ms": 1200.0},
        "websocket_calls": {"count": 2, "duration_ms": 8.0},
        "websocket_events": {"count": 41, "duration_ms": 950.0},
        "ttft_ms": 310.0,
    }
    view = live_view()
    view.display()
    feed(
        view,
        [
            ev.TurnStarted(prompt="p", model="gpt-5.3-codex"),
            ev.TextDelta(delta="Done.", item_id="m", phase="final_answer"),
            ev.UsageEvent(usage=ev.Usage(10, 0, 5, 0, 15)),
        ],
    )
    view.flush(force=True)
    assert "Tokens: 15 total" in view._w["footer"].value and "WebSocket" not in view._w["footer"].value
    view.handle(ev.Telemetry(summary=summary, line=line))
    view.flush(force=True)
    footer = view._w["footer"].value
    assert footer.index("Tokens: 15 total") < footer.index("Inference: 2 calls (1.2s)")
    assert "41 events received (950ms)" in footer
    view.handle(ev.TurnDone(status="completed", text="Done."))
    text, md = view.plain_text(), view.markdown()
    assert text.endswith("-" * 40 + "\nTokens: 15 total (input 10, cached 0, output 5, reasoning 0)\n" + line + "\n")
    assert md.endswith("---\nTokens: 15 total (input 10, cached 0, output 5, reasoning 0)  \n" + line + "\n")


def test_footer_with_telemetry_only_and_empty_telemetry():
    only = feed(TurnView("m", widgets=False), [ev.Telemetry(line="TTFT: 80ms"), ev.TurnDone(status="completed")])
    assert only.plain_text().endswith("-" * 40 + "\nTTFT: 80ms\n")
    empty = feed(
        TurnView("m", widgets=False),
        [ev.Telemetry(summary={"api_calls": {"count": 0}}, line=""), ev.TurnDone(status="completed")],
    )
    assert "---" not in empty.markdown() and "-" * 40 not in empty.plain_text()
