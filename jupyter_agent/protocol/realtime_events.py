"""Realtime voice: typed inbound events of both dialects and their parsing (spec §11, openai-api §3).

Inbound events are a pydantic discriminated union on ``kind``; unknown wire events parse to ``None``.
``realtime.py`` re-exports every name.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Dialect = Literal["backend", "openai"]

DEFAULT_SAMPLE_RATE = 24000
UNEXPECTED_BINARY = "unexpected binary realtime websocket event"
CONNECTION_CLOSED = "realtime websocket connection is closed"


# --- audio ----------------------------------------------------------------------------


class RealtimeAudioFrame(BaseModel):
    """Base64 (standard alphabet) of interleaved signed 16-bit little-endian PCM (spec §11.4)."""

    model_config = ConfigDict(frozen=True)

    data: str
    sample_rate: int
    num_channels: int
    samples_per_channel: int | None = None

    @classmethod
    def from_pcm(cls, pcm: bytes, sample_rate: int = DEFAULT_SAMPLE_RATE, num_channels: int = 1) -> RealtimeAudioFrame:
        """Frame from raw PCM16 LE bytes; ``samples_per_channel = samples / channels``."""
        samples = len(pcm) // 2
        return cls(
            data=base64.b64encode(pcm).decode("ascii"),
            sample_rate=sample_rate,
            num_channels=num_channels,
            samples_per_channel=samples // max(num_channels, 1),
        )

    def pcm(self) -> bytes:
        """The decoded PCM16 LE bytes."""
        return base64.b64decode(self.data)


# --- inbound events (typed) -----------------------------------------------------------


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class SessionCreated(_Event):
    kind: Literal["session_created"] = "session_created"
    session_id: str


class SessionUpdated(_Event):
    kind: Literal["session_updated"] = "session_updated"
    backend_prompt: str | None = None
    instructions: str | None = None


class AudioOut(_Event):
    kind: Literal["audio_out"] = "audio_out"
    frame: RealtimeAudioFrame
    item_id: str | None = None
    response_id: str | None = None


class ConversationItemAdded(_Event):
    kind: Literal["conversation_item_added"] = "conversation_item_added"
    item: Any = None


class TranscriptDelta(_Event):
    kind: Literal["transcript_delta"] = "transcript_delta"
    role: Literal["user", "assistant"]
    delta: str
    item_id: str | None = None


class TranscriptDone(_Event):
    kind: Literal["transcript_done"] = "transcript_done"
    role: Literal["user", "assistant"]
    text: str
    item_id: str | None = None


class SpeechStarted(_Event):
    """Server VAD heard the user start speaking: the client stops playback (barge-in)."""

    kind: Literal["speech_started"] = "speech_started"
    audio_start_ms: int | None = None
    item_id: str | None = None


class SpeechStopped(_Event):
    kind: Literal["speech_stopped"] = "speech_stopped"
    audio_end_ms: int | None = None
    item_id: str | None = None


class ResponseDone(_Event):
    kind: Literal["response_done"] = "response_done"
    status: str | None = None
    response_id: str | None = None


class RealtimeRateLimit(_Event):
    name: str
    limit: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = None


class RateLimitsUpdated(_Event):
    kind: Literal["rate_limits_updated"] = "rate_limits_updated"
    rate_limits: list[RealtimeRateLimit] = Field(default_factory=list)


class ErrorEvent(_Event):
    """A server (or transport) error. ``fatal`` errors end the conversation (backend dialect).

    ``source`` names the GA event that carried a non-fatal error other than ``error`` itself
    (``conversation.item.input_audio_transcription.failed``, ``response.done`` with status
    ``failed``, ``response.mcp_call.failed``, ``mcp_list_tools.failed``; issue 15 item 8)."""

    kind: Literal["error"] = "error"
    message: str
    code: str | None = None
    fatal: bool = True
    source: str | None = None
    item_id: str | None = None


RealtimeInbound = Annotated[
    Union[
        SessionCreated,
        SessionUpdated,
        AudioOut,
        ConversationItemAdded,
        TranscriptDelta,
        TranscriptDone,
        SpeechStarted,
        SpeechStopped,
        ResponseDone,
        RateLimitsUpdated,
        ErrorEvent,
    ],
    Field(discriminator="kind"),
]
INBOUND_ADAPTER: TypeAdapter[Any] = TypeAdapter(RealtimeInbound)


def inbound_from_dict(data: dict[str, Any]) -> Any:
    """Rebuild a typed inbound event from its ``model_dump()``."""
    return INBOUND_ADAPTER.validate_python(data)


# --- parsing --------------------------------------------------------------------------


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_backend_event(text: str) -> RealtimeInbound | None:
    """Parse one text frame of the backend dialect (spec §11.3); ``None`` = ignore."""
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    if not isinstance(msg, dict):
        return None
    kind = msg.get("type")
    session = _dict(msg.get("session"))
    if kind == "session.created":
        sid = _str(session.get("id")) or _str(msg.get("session_id"))
        return SessionCreated(session_id=sid) if sid else None
    if kind == "session.updated":
        return SessionUpdated(backend_prompt=_str(session.get("backend_prompt")))
    if kind == "response.output_audio.delta":
        data = _str(msg.get("delta")) or _str(msg.get("data"))
        rate, channels = _int(msg.get("sample_rate")), _int(msg.get("num_channels"))
        if data is None or rate is None or channels is None:
            return None
        frame = RealtimeAudioFrame(
            data=data,
            sample_rate=rate,
            num_channels=channels,
            samples_per_channel=_int(msg.get("samples_per_channel")),
        )
        return AudioOut(frame=frame)
    if kind == "conversation.item.added":
        return ConversationItemAdded(item=msg.get("item"))
    if kind == "error":
        return ErrorEvent(message=_error_message(msg), fatal=True)
    return None


def _dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (malformed frames never raise)."""
    return value if isinstance(value, dict) else {}


def _error_message(msg: dict[str, Any]) -> str:
    message = msg.get("message")
    if isinstance(message, str):
        return message
    err = msg.get("error")
    nested = err.get("message") if isinstance(err, dict) else None
    if isinstance(nested, str):
        return nested
    return json.dumps(err) if err is not None else "unknown realtime error"


_GA_AUDIO = ("response.output_audio.delta", "response.audio.delta")
_GA_OUT_TRANSCRIPT_DELTA = (
    "response.output_audio_transcript.delta",
    "response.audio_transcript.delta",
    "response.output_text.delta",
    "response.text.delta",
)
_GA_OUT_TRANSCRIPT_DONE = {
    "response.output_audio_transcript.done": "transcript",
    "response.audio_transcript.done": "transcript",
    "response.output_text.done": "text",
    "response.text.done": "text",
}
_GA_ITEMS = ("conversation.item.added", "conversation.item.done", "conversation.item.created")


#: GA server events that report a failure without ending the session, and what the user reads.
_GA_FAILED = {
    "conversation.item.input_audio_transcription.failed": "Your speech could not be transcribed",
    "response.mcp_call.failed": "A tool call on the MCP server failed",
    "mcp_list_tools.failed": "Listing the MCP server's tools failed",
}


def _response_failed(resp: dict[str, Any]) -> ErrorEvent:
    """``response.done`` with ``status: failed``: the reply was lost; ``status_details.error`` says why."""
    details = _dict(resp.get("status_details"))
    err = _dict(details.get("error"))
    detail = _str(err.get("message"))
    return ErrorEvent(
        message="The voice reply failed" + (f": {detail}" if detail else "."),
        code=_str(err.get("code")) or _str(err.get("type")) or "response_failed",
        fatal=False,
        source="response.done",
    )


def parse_openai_event(text: str) -> RealtimeInbound | None:
    """Parse one text frame of the OpenAI Realtime GA API (beta names accepted); ``None`` = ignore."""
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    if not isinstance(msg, dict):
        return None
    kind = msg.get("type")
    session = _dict(msg.get("session"))
    item_id = _str(msg.get("item_id"))
    if kind == "session.created":
        sid = _str(session.get("id"))
        return SessionCreated(session_id=sid) if sid else None
    if kind == "session.updated":
        return SessionUpdated(instructions=_str(session.get("instructions")))
    if kind in _GA_AUDIO:
        data = _str(msg.get("delta"))
        if data is None:
            return None
        frame = RealtimeAudioFrame(data=data, sample_rate=DEFAULT_SAMPLE_RATE, num_channels=1)
        return AudioOut(frame=frame, item_id=item_id, response_id=_str(msg.get("response_id")))
    if kind in _GA_OUT_TRANSCRIPT_DELTA:
        delta = _str(msg.get("delta"))
        return TranscriptDelta(role="assistant", delta=delta, item_id=item_id) if delta is not None else None
    if kind in _GA_OUT_TRANSCRIPT_DONE:
        done = _str(msg.get(_GA_OUT_TRANSCRIPT_DONE[kind]))
        return TranscriptDone(role="assistant", text=done, item_id=item_id) if done is not None else None
    if kind == "conversation.item.input_audio_transcription.delta":
        delta = _str(msg.get("delta"))
        return TranscriptDelta(role="user", delta=delta, item_id=item_id) if delta is not None else None
    if kind == "conversation.item.input_audio_transcription.completed":
        done = _str(msg.get("transcript"))
        return TranscriptDone(role="user", text=done, item_id=item_id) if done is not None else None
    if kind == "input_audio_buffer.speech_started":
        return SpeechStarted(audio_start_ms=_int(msg.get("audio_start_ms")), item_id=item_id)
    if kind == "input_audio_buffer.speech_stopped":
        return SpeechStopped(audio_end_ms=_int(msg.get("audio_end_ms")), item_id=item_id)
    if kind in _GA_ITEMS:
        return ConversationItemAdded(item=msg.get("item"))
    if kind == "response.done":
        resp = _dict(msg.get("response"))
        if resp.get("status") == "failed":
            return _response_failed(resp)
        return ResponseDone(status=_str(resp.get("status")), response_id=_str(resp.get("id")))
    if kind in _GA_FAILED:
        err = _dict(msg.get("error"))
        detail = _str(err.get("message"))
        return ErrorEvent(
            message=_GA_FAILED[kind] + (f": {detail}" if detail else "."),
            code=_str(err.get("code")) or kind.replace(".", "_"),
            fatal=False,
            source=kind,
            item_id=item_id,
        )
    if kind == "rate_limits.updated":
        limits = []
        for raw in msg.get("rate_limits") or []:
            if isinstance(raw, dict) and isinstance(raw.get("name"), str):
                reset = raw.get("reset_seconds")
                limits.append(
                    RealtimeRateLimit(
                        name=raw["name"],
                        limit=_int(raw.get("limit")),
                        remaining=_int(raw.get("remaining")),
                        reset_seconds=float(reset) if isinstance(reset, (int, float)) else None,
                    )
                )
        return RateLimitsUpdated(rate_limits=limits)
    if kind == "error":
        err = _dict(msg.get("error"))
        return ErrorEvent(message=_error_message(msg), code=_str(err.get("code")), fatal=False)
    return None


def parse_event(dialect: Dialect, text: str) -> RealtimeInbound | None:
    return parse_backend_event(text) if dialect == "backend" else parse_openai_event(text)
