"""Realtime wire types: parsing, outbound shapes, URLs (spec §11.1-11.5, openai-api §3)."""

from __future__ import annotations

import base64
import json

import pytest

from jupyter_agent.protocol import realtime as P


def test_parse_session_created_event() -> None:
    ev = P.parse_backend_event(json.dumps({"type": "session.created", "session": {"id": "sess_123"}}))
    assert ev == P.SessionCreated(session_id="sess_123")
    top = P.parse_backend_event(json.dumps({"type": "session.created", "session_id": "sess_top"}))
    assert top == P.SessionCreated(session_id="sess_top")
    assert P.parse_backend_event(json.dumps({"type": "session.created", "session": {}})) is None


def test_parse_session_updated_event() -> None:
    ev = P.parse_backend_event(json.dumps({"type": "session.updated", "session": {"backend_prompt": "p2"}}))
    assert ev == P.SessionUpdated(backend_prompt="p2")


def test_parse_audio_delta_event() -> None:
    ev = P.parse_backend_event(
        json.dumps(
            {
                "type": "response.output_audio.delta",
                "delta": "AAA=",
                "sample_rate": 48000,
                "num_channels": 1,
                "samples_per_channel": 960,
            }
        )
    )
    assert isinstance(ev, P.AudioOut)
    assert ev.frame == P.RealtimeAudioFrame(data="AAA=", sample_rate=48000, num_channels=1, samples_per_channel=960)
    # `data` is accepted when `delta` is absent; samples_per_channel is optional
    alt = P.parse_backend_event(
        json.dumps({"type": "response.output_audio.delta", "data": "AQID", "sample_rate": 24000, "num_channels": 1})
    )
    assert isinstance(alt, P.AudioOut) and alt.frame.data == "AQID" and alt.frame.samples_per_channel is None
    # missing sample_rate / num_channels -> ignored
    assert (
        P.parse_backend_event(json.dumps({"type": "response.output_audio.delta", "delta": "AQID", "num_channels": 1}))
        is None
    )
    assert (
        P.parse_backend_event(
            json.dumps({"type": "response.output_audio.delta", "delta": "AQID", "sample_rate": 24000})
        )
        is None
    )


def test_parse_conversation_item_added_event() -> None:
    item = {"type": "message", "seq": 7}
    ev = P.parse_backend_event(json.dumps({"type": "conversation.item.added", "item": item}))
    assert ev == P.ConversationItemAdded(item=item)


def test_parse_error_and_unknown() -> None:
    assert P.parse_backend_event('{"type":"error","message":"boom"}') == P.ErrorEvent(message="boom")
    nested = P.parse_backend_event('{"type":"error","error":{"code":"x"}}')
    assert isinstance(nested, P.ErrorEvent) and nested.message == '{"code": "x"}'
    assert P.parse_backend_event('{"type":"response.created"}') is None
    assert P.parse_backend_event("not json") is None
    assert P.parse_backend_event("[1, 2]") is None


def test_inbound_union_round_trips() -> None:
    for ev in (
        P.SessionCreated(session_id="s"),
        P.AudioOut(frame=P.RealtimeAudioFrame.from_pcm(b"\x01\x00\x02\x00")),
        P.TranscriptDelta(role="user", delta="hi"),
        P.ErrorEvent(message="m", code="c", fatal=False),
        P.RateLimitsUpdated(rate_limits=[P.RealtimeRateLimit(name="tokens", limit=5, remaining=4)]),
    ):
        assert P.inbound_from_dict(ev.model_dump(mode="json")) == ev


def test_outbound_backend_shapes() -> None:
    assert P.backend_session_create("be helpful", "conv_1") == {
        "type": "session.create",
        "session": {"backend_prompt": "be helpful", "conversation_id": "conv_1"},
    }
    assert P.backend_session_create("p") == {"type": "session.create", "session": {"backend_prompt": "p"}}
    assert P.backend_session_update("new", "conv_1")["type"] == "session.update"
    frame = P.RealtimeAudioFrame(data="AQID", sample_rate=24000, num_channels=1, samples_per_channel=480)
    assert P.backend_audio(frame) == {
        "type": "response.input_audio.delta",
        "delta": "AQID",
        "sample_rate": 24000,
        "num_channels": 1,
        "samples_per_channel": 480,
    }
    no_spc = P.backend_audio(P.RealtimeAudioFrame(data="AQID", sample_rate=24000, num_channels=1))
    assert "samples_per_channel" not in no_spc
    assert P.backend_text("hello agent") == {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "text", "text": "hello agent"}]},
    }


def test_frame_from_pcm() -> None:
    pcm = bytes(range(8))  # 4 mono samples
    frame = P.RealtimeAudioFrame.from_pcm(pcm)
    assert frame.samples_per_channel == 4 and frame.sample_rate == 24000 and frame.pcm() == pcm
    stereo = P.RealtimeAudioFrame.from_pcm(pcm, 48000, 2)
    assert stereo.samples_per_channel == 2
    assert base64.b64decode(frame.data) == pcm


def test_openai_session_update_shape() -> None:
    msg = P.openai_session_update("be brief", voice="marin")
    s = msg["session"]
    assert msg["type"] == "session.update" and s["type"] == "realtime" and s["instructions"] == "be brief"
    assert s["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert s["audio"]["input"]["turn_detection"] == {"type": "server_vad"}
    assert s["audio"]["output"] == {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}
    assert P.openai_session_update(turn_detection=None)["session"]["audio"]["input"]["turn_detection"] is None
    assert P.openai_audio(P.RealtimeAudioFrame(data="AQID", sample_rate=24000, num_channels=1)) == {
        "type": "input_audio_buffer.append",
        "audio": "AQID",
    }
    assert P.openai_item("assistant", "x")["item"]["content"][0]["type"] == "output_text"
    assert P.openai_item("user", "x")["item"]["content"][0]["type"] == "input_text"


def test_parse_openai_events() -> None:
    parse = P.parse_openai_event
    assert parse('{"type":"session.created","session":{"id":"sess_ga"}}') == P.SessionCreated(session_id="sess_ga")
    audio = parse('{"type":"response.output_audio.delta","item_id":"i1","response_id":"r1","delta":"AQID"}')
    assert isinstance(audio, P.AudioOut) and audio.frame.sample_rate == 24000 and audio.item_id == "i1"
    beta = parse('{"type":"response.audio.delta","delta":"AQID"}')
    assert isinstance(beta, P.AudioOut)
    assert parse('{"type":"response.output_audio_transcript.delta","item_id":"i1","delta":"Hel"}') == P.TranscriptDelta(
        role="assistant", delta="Hel", item_id="i1"
    )
    assert parse(
        '{"type":"response.output_audio_transcript.done","item_id":"i1","transcript":"Hello"}'
    ) == P.TranscriptDone(role="assistant", text="Hello", item_id="i1")
    assert parse(
        '{"type":"conversation.item.input_audio_transcription.completed","item_id":"u1","transcript":"hi there"}'
    ) == P.TranscriptDone(role="user", text="hi there", item_id="u1")
    assert parse('{"type":"input_audio_buffer.speech_started","audio_start_ms":120,"item_id":"u2"}') == P.SpeechStarted(
        audio_start_ms=120, item_id="u2"
    )
    rl = parse(
        '{"type":"rate_limits.updated","rate_limits":[{"name":"tokens","limit":100,"remaining":40,'
        '"reset_seconds":2.5}]}'
    )
    assert rl == P.RateLimitsUpdated(
        rate_limits=[P.RealtimeRateLimit(name="tokens", limit=100, remaining=40, reset_seconds=2.5)]
    )
    err = parse(
        '{"type":"error","error":{"type":"invalid_request_error",'
        '"code":"conversation_already_has_active_response","message":"busy"}}'
    )
    assert err == P.ErrorEvent(message="busy", code="conversation_already_has_active_response", fatal=False)
    assert parse('{"type":"response.done","response":{"id":"r1","status":"cancelled"}}') == P.ResponseDone(
        status="cancelled", response_id="r1"
    )
    assert parse('{"type":"conversation.item.done","item":{"id":"x"}}') == P.ConversationItemAdded(item={"id": "x"})
    assert parse('{"type":"response.content_part.added"}') is None


def test_websocket_url_from_http_base_defaults_to_ws_path() -> None:
    assert P.backend_ws_url("http://127.0.0.1:8011") == "ws://127.0.0.1:8011/ws"
    assert P.backend_ws_url("http://127.0.0.1:8011/") == "ws://127.0.0.1:8011/ws"
    assert P.backend_ws_url("https://example.com/custom/path") == "wss://example.com/custom/path"


def test_websocket_url_from_ws_base_defaults_to_ws_path() -> None:
    assert P.backend_ws_url("wss://example.com") == "wss://example.com/ws"
    assert P.backend_ws_url("ws://h:1/x?a=1") == "ws://h:1/x?a=1"
    with pytest.raises(ValueError):
        P.backend_ws_url("ftp://example.com")


def test_openai_and_azure_urls() -> None:
    assert (
        P.openai_ws_url("https://api.openai.com/v1", "gpt-realtime")
        == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    )
    assert (
        P.openai_ws_url("https://api.openai.com", "gpt-realtime")
        == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    )
    assert (
        P.openai_ws_url("wss://api.openai.com/v1/realtime?model=m1", "m2")
        == "wss://api.openai.com/v1/realtime?model=m1"
    )
    assert (
        P.openai_ws_url("https://res.openai.azure.com/openai/v1/", "dep")
        == "wss://res.openai.azure.com/openai/v1/realtime?model=dep"
    )
    assert (
        P.openai_ws_url("https://res.openai.azure.com", "dep")
        == "wss://res.openai.azure.com/openai/v1/realtime?model=dep"
    )
    assert (
        P.openai_ws_url("https://res.openai.azure.com", "dep", api_version="2025-04-01-preview")
        == "wss://res.openai.azure.com/openai/realtime?api-version=2025-04-01-preview&deployment=dep"
    )
    assert P.auth_headers("wss://res.openai.azure.com/openai/v1/realtime", "k") == {"api-key": "k"}
    assert P.auth_headers("wss://api.openai.com/v1/realtime", "k") == {"Authorization": "Bearer k"}
    assert P.auth_headers("wss://api.openai.com/v1/realtime", None) == {}


def test_extracts_text_from_assistant_message_items_only() -> None:
    assert P.text_from_item(
        {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "hello"}]}
    ) == ("assistant", "hello")
    assert P.text_from_item({"type": "message", "role": "user", "content": [{"type": "text", "text": "x"}]}) is None


def test_extracts_and_concatenates_text_entries_only() -> None:
    item = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "a"}, {"type": "audio", "data": "zz"}, {"type": "text", "text": "b"}],
    }
    assert P.text_from_item(item) == ("assistant", "ab")


def test_ignores_non_message_or_missing_text() -> None:
    assert P.text_from_item({"type": "function_call"}) is None
    assert P.text_from_item({"type": "message", "role": "assistant", "content": [{"type": "audio"}]}) is None
    assert P.text_from_item({"type": "message", "role": "assistant"}) is None
    assert P.text_from_item("nope") is None


def test_extracts_text_from_spawn_transcript_items() -> None:
    assert P.text_from_item({"type": "spawn_transcript", "delta_user_transcript": "open the file"}) == (
        "user",
        "open the file",
    )
    assert P.text_from_item({"type": "spawn_transcript"}) is None
