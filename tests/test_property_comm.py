"""Property-based tests (hypothesis) of the messages the front end sends the kernel.

* Side-panel comm (``comm.PanelBridge.handle``): any JSON value is either a valid request that
  drives the agent exactly once, or gets exactly one schema-valid ``error`` reply; nothing raises.
* Voice widget custom messages (``VoiceWidget._on_front_msg``): any content and buffers are
  handled or ignored without an exception on the kernel thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_agent import comm as C
from jupyter_agent.loop import AgentLoop
from jupyter_agent.realtime import show_voice

from .fault_scenarios import free_port

PROFILE = settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
panel_types = st.sampled_from(["hello", "send", "stop", "approval", "history", "event", "state", "", "SEND"])
field_names = st.sampled_from(["type", "id", "text", "version", "call_id", "decision", "extra"])
field_values = st.one_of(
    json_value, st.sampled_from(["approve", "deny", "approve_always", "m1", "  ", "hi", 1, 0, True])
)
panel_like = st.builds(
    lambda t, fields: {**fields, "type": t} if t is not None else fields,
    st.none() | panel_types,
    st.dictionaries(field_names, field_values, max_size=5),
)


class RecordingComm:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def on_msg(self, cb: Any) -> None:
        pass

    def on_close(self, cb: Any) -> None:
        pass

    def send(self, data: dict[str, Any]) -> None:
        self.sent.append(data)


class RecordingAgent:
    """The Agent API surface the bridge uses, recording calls."""

    model_name = "gpt-test"
    provider_name = "compatible"
    transport = "sse"
    rate_limits: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def subscribe(self, cb: Any) -> Any:
        return lambda: None

    def start(self, text: str, *, source: str = "python") -> None:
        self.calls.append(("start", text))

    def cancel(self) -> None:
        self.calls.append(("cancel",))

    def resolve_approval(self, call_id: str, decision: str) -> None:
        self.calls.append(("approval", call_id, decision))

    def transcript(self) -> list[dict[str, Any]]:
        return [{"role": "user", "text": "hi", "phase": None}]


@pytest.fixture(scope="module")
def bridge() -> Iterator[tuple[RecordingComm, RecordingAgent, C.PanelBridge]]:
    comm, agent = RecordingComm(), RecordingAgent()
    b = C.PanelBridge(comm, lambda: agent)
    yield comm, agent, b
    b.close()


@PROFILE
@given(json_value | panel_like)
def test_any_panel_message_is_applied_once_or_refused_once(
    bridge: tuple[RecordingComm, RecordingAgent, C.PanelBridge], data: Any
) -> None:
    comm, agent, b = bridge
    comm.sent.clear()
    agent.calls.clear()
    try:
        msg = C.parse_panel_message(data)
    except C.MessageError:
        msg = None
    b.handle(data)
    for sent in comm.sent:
        assert C.validate_kernel_message(sent) == sent
    if msg is None:
        assert [m["type"] for m in comm.sent] == ["error"] and agent.calls == []
    elif isinstance(msg, C.Hello):
        assert [m["type"] for m in comm.sent] == (
            ["state", "history"] if msg.version == C.PROTOCOL_VERSION else ["error"]
        )
    elif isinstance(msg, C.Send):
        assert agent.calls == [("start", data["text"])] and data["text"].strip()
    elif isinstance(msg, C.Stop):
        assert agent.calls == [("cancel",)]
    elif isinstance(msg, C.Approval):
        assert agent.calls == [("approval", data["call_id"], data["decision"])]
    elif isinstance(msg, C.HistoryRequest):
        assert [m["type"] for m in comm.sent] == ["history"]


valid_messages = st.one_of(
    st.builds(
        lambda v, r: {"type": "hello", "version": v, **({"resume": True} if r else {})},
        st.integers(0, 3),
        st.booleans(),
    ),
    st.builds(
        lambda i, t: {"type": "send", "id": i, "text": t},
        st.text(min_size=1, max_size=C.MAX_ID_CHARS),
        st.text(min_size=1, max_size=200).filter(str.strip),
    ),
    st.just({"type": "stop"}),
    st.just({"type": "history"}),
    st.builds(
        lambda c, d: {"type": "approval", "call_id": c, "decision": d},
        st.text(min_size=1, max_size=50),
        st.sampled_from(["approve", "approve_always", "deny"]),
    ),
)


@PROFILE
@given(valid_messages, st.sampled_from(["id", "text", "version", "call_id", "decision", "type"]), json_value)
def test_valid_messages_parse_and_a_wrong_field_is_refused(msg: dict[str, Any], key: str, junk: Any) -> None:
    parsed = C.parse_panel_message(msg)
    assert parsed.model_dump(exclude_defaults=True) == msg
    if key in msg and junk != msg[key] and not isinstance(junk, (dict, list)) and type(junk) is not type(msg[key]):
        broken = {**msg, key: junk}
        with pytest.raises(C.MessageError):
            C.parse_panel_message(broken)
    with pytest.raises(C.MessageError):
        C.parse_panel_message({**msg, "unexpected_field": 1})


# --- voice widget ------------------------------------------------------------------------------

widget_types = st.sampled_from(["audio", "mic", "text", "played", "hangup", "unknown", None])
widget_fields = st.dictionaries(
    st.sampled_from(["sample_rate", "num_channels", "on", "text", "item_id", "ms", "type"]),
    json_value | st.sampled_from([24000, 48000, 0, -1, "24000", "abc", 1.5, True]),
    max_size=5,
)
buffers = st.lists(st.binary(max_size=64).map(lambda b: memoryview(b)) | st.binary(max_size=64), max_size=2)


@pytest.fixture(scope="module")
def voice() -> Iterator[Any]:
    loop = AgentLoop(name="property-voice-loop")
    w = show_voice({"url": f"http://127.0.0.1:{free_port()}/ws", "dialect": "backend", "prompt": "p"}, loop=loop)
    w.send = lambda content, buffers=None: None  # type: ignore[method-assign]
    yield w
    w.close()
    loop.call_soon(loop.loop.stop)


@settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(widget_types, widget_fields, buffers, st.booleans())
def test_any_widget_message_never_raises(
    voice: Any, kind: Any, fields: dict[str, Any], bufs: list[Any], as_list: bool
) -> None:
    content: Any = {**fields, "type": kind} if kind is not None else fields
    if as_list:
        content = [content]
    errors: list[BaseException] = []
    t = threading.Thread(
        target=_deliver, args=(voice, content, bufs, errors)
    )  # the kernel thread is not the agent loop
    t.start()
    t.join(5)
    assert not t.is_alive(), "the widget blocked the kernel thread"
    assert errors == []


def _deliver(w: Any, content: Any, bufs: list[Any], errors: list[BaseException]) -> None:
    try:
        w._on_front_msg(w, content, bufs)
    except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
        errors.append(exc)
