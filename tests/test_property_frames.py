"""Property-based tests (hypothesis) of server frames: Responses WebSocket and Realtime.

Any JSON object a server sends as a Responses WebSocket frame validates to a typed event, an
``UnknownEvent`` or ``None`` (only a malformed ``response.completed`` raises, the documented
``ProtocolError``); any text a realtime server sends parses to a typed inbound event or ``None``,
in both dialects, without raising.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_agent.protocol import errors as E
from jupyter_agent.protocol import realtime as RT
from jupyter_agent.protocol.responses import _EVENT_MODELS, UnknownEvent, parse_event_dict

PROFILE = settings(max_examples=300, derandomize=True, deadline=None)

scalar = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=16)
value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "type",
        "response",
        "item",
        "delta",
        "error",
        "status",
        "status_code",
        "headers",
        "rate_limits",
        "item_id",
        "output_index",
        "audio",
        "transcript",
        "session",
        "event_id",
        "message",
        "code",
    ]
)
response_types = st.sampled_from(sorted(_EVENT_MODELS)) | st.text(max_size=20) | scalar
realtime_types = st.sampled_from(
    [
        "session.created",
        "session.updated",
        "response.output_audio.delta",
        "response.audio.delta",
        "conversation.item.added",
        "conversation.item.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "conversation.item.input_audio_transcription.completed",
        "input_audio_buffer.speech_started",
        "error",
        "rate_limits.updated",
        "response.done",
        "response.created",
    ]
) | st.text(max_size=20)


def frame(types: Any) -> Any:
    return st.builds(lambda t, extra: {**extra, "type": t}, types, st.dictionaries(keys, value, max_size=5))


@PROFILE
@given(frame(response_types))
def test_responses_frames_never_raise_but_the_documented_error(data: dict[str, Any]) -> None:
    try:
        event = parse_event_dict(data)
    except E.ProtocolError:
        assert data.get("type") == "response.completed"
        return
    if event is not None and not isinstance(event, UnknownEvent):
        assert event.type == data["type"]


@PROFILE
@given(frame(realtime_types) | value, st.sampled_from(["backend", "openai"]))
def test_realtime_frames_never_raise(data: Any, dialect: str) -> None:
    RT.parse_event(dialect, json.dumps(data))  # type: ignore[arg-type]


@PROFILE
@given(st.text(max_size=200), st.sampled_from(["backend", "openai"]))
def test_realtime_text_never_raises(text: str, dialect: str) -> None:
    RT.parse_event(dialect, text)  # type: ignore[arg-type]
