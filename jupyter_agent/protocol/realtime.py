"""Realtime voice wire types: outbound messages, typed inbound events, URLs (spec §11, openai-api §3).

Two dialects share one typed inbound vocabulary:

* ``backend`` -- the Codex realtime backend of spec §11 (``session.create`` with
  ``backend_prompt``/``conversation_id``, ``response.input_audio.delta``, ``/ws`` default path);
* ``openai`` -- the public OpenAI Realtime GA API (``session.update``,
  ``input_audio_buffer.append``, server VAD, ``response.output_audio.delta``, transcripts,
  ``rate_limits.updated``), including the Azure URL forms.

Inbound events are a pydantic discriminated union on ``kind``; unknown wire events parse to ``None``.
"""

from __future__ import annotations

from .realtime_client import (
    auth_headers,
    backend_audio,
    backend_session,
    backend_session_create,
    backend_session_update,
    backend_text,
    backend_ws_url,
    is_azure,
    openai_audio,
    openai_instructions_update,
    openai_item,
    openai_response_create,
    openai_session_update,
    openai_truncate,
    openai_ws_url,
    text_from_item,
)
from .realtime_events import (
    CONNECTION_CLOSED,
    DEFAULT_SAMPLE_RATE,
    INBOUND_ADAPTER,
    UNEXPECTED_BINARY,
    AudioOut,
    ConversationItemAdded,
    Dialect,
    ErrorEvent,
    RateLimitsUpdated,
    RealtimeAudioFrame,
    RealtimeInbound,
    RealtimeRateLimit,
    ResponseDone,
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TranscriptDelta,
    TranscriptDone,
    inbound_from_dict,
    parse_backend_event,
    parse_event,
    parse_openai_event,
)

# Inbound events live in realtime_events.py, outbound messages and URLs in realtime_client.py.
__all__ = [
    "Dialect",
    "DEFAULT_SAMPLE_RATE",
    "UNEXPECTED_BINARY",
    "CONNECTION_CLOSED",
    "RealtimeAudioFrame",
    "SessionCreated",
    "SessionUpdated",
    "AudioOut",
    "ConversationItemAdded",
    "TranscriptDelta",
    "TranscriptDone",
    "SpeechStarted",
    "SpeechStopped",
    "ResponseDone",
    "RealtimeRateLimit",
    "RateLimitsUpdated",
    "ErrorEvent",
    "RealtimeInbound",
    "INBOUND_ADAPTER",
    "inbound_from_dict",
    "parse_backend_event",
    "parse_openai_event",
    "parse_event",
    "backend_session",
    "backend_session_create",
    "backend_session_update",
    "backend_audio",
    "backend_text",
    "openai_session_update",
    "openai_instructions_update",
    "openai_audio",
    "openai_item",
    "openai_response_create",
    "openai_truncate",
    "text_from_item",
    "is_azure",
    "backend_ws_url",
    "openai_ws_url",
    "auth_headers",
]
