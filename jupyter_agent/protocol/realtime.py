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

import base64
import json
from typing import Annotated, Any, Literal, Union
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
    """A server (or transport) error. ``fatal`` errors end the conversation (backend dialect)."""

    kind: Literal["error"] = "error"
    message: str
    code: str | None = None
    fatal: bool = True


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
        return ResponseDone(status=_str(resp.get("status")), response_id=_str(resp.get("id")))
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


# --- outbound messages ----------------------------------------------------------------


def backend_session(prompt: str, conversation_id: str | None) -> dict[str, Any]:
    session: dict[str, Any] = {"backend_prompt": prompt}
    if conversation_id is not None:
        session["conversation_id"] = conversation_id
    return session


def backend_session_create(prompt: str, conversation_id: str | None = None) -> dict[str, Any]:
    return {"type": "session.create", "session": backend_session(prompt, conversation_id)}


def backend_session_update(prompt: str, conversation_id: str | None = None) -> dict[str, Any]:
    return {"type": "session.update", "session": backend_session(prompt, conversation_id)}


def backend_audio(frame: RealtimeAudioFrame) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": "response.input_audio.delta",
        "delta": frame.data,
        "sample_rate": frame.sample_rate,
        "num_channels": frame.num_channels,
    }
    if frame.samples_per_channel is not None:
        msg["samples_per_channel"] = frame.samples_per_channel
    return msg


def backend_text(text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "text", "text": text}]},
    }


def openai_session_update(
    instructions: str | None = None,
    *,
    voice: str | None = None,
    transcription_model: str | None = "gpt-4o-mini-transcribe",
    turn_detection: dict[str, Any] | Literal["default"] | None = "default",
    output_modalities: list[str] | None = None,
) -> dict[str, Any]:
    """GA ``session.update``: 24 kHz PCM in/out, server VAD, input transcription."""
    pcm = {"type": "audio/pcm", "rate": DEFAULT_SAMPLE_RATE}
    audio_in: dict[str, Any] = {"format": pcm}
    audio_in["turn_detection"] = {"type": "server_vad"} if turn_detection == "default" else turn_detection
    if transcription_model:
        audio_in["transcription"] = {"model": transcription_model}
    audio_out: dict[str, Any] = {"format": pcm}
    if voice:
        audio_out["voice"] = voice
    session: dict[str, Any] = {"type": "realtime"}
    if instructions is not None:
        session["instructions"] = instructions
    session["output_modalities"] = output_modalities or ["audio"]
    session["audio"] = {"input": audio_in, "output": audio_out}
    return {"type": "session.update", "session": session}


def openai_instructions_update(instructions: str) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "realtime", "instructions": instructions}}


def openai_audio(frame: RealtimeAudioFrame) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": frame.data}


def openai_item(role: str, text: str) -> dict[str, Any]:
    """A message item; assistant history uses ``output_text``, user/system ``input_text``."""
    part = "output_text" if role == "assistant" else "input_text"
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": role, "content": [{"type": part, "text": text}]},
    }


def openai_response_create() -> dict[str, Any]:
    return {"type": "response.create"}


def openai_truncate(item_id: str, audio_end_ms: int, content_index: int = 0) -> dict[str, Any]:
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": content_index,
        "audio_end_ms": audio_end_ms,
    }


# --- item text extraction (backend follow-ups, spec §11.6) ----------------------------


def text_from_item(item: Any) -> tuple[Literal["user", "assistant"], str] | None:
    """Transcript text carried by a ``conversation.item.added`` item, if any.

    Assistant ``message`` items give their concatenated ``text`` parts; ``spawn_transcript``
    items give their ``delta_user_transcript`` as user speech; anything else gives ``None``.
    """
    if not isinstance(item, dict):
        return None
    if item.get("type") == "spawn_transcript":
        text = item.get("delta_user_transcript")
        return ("user", text) if isinstance(text, str) and text else None
    if item.get("type") != "message" or item.get("role") != "assistant":
        return None
    parts = item.get("content")
    if not isinstance(parts, list):
        return None
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    text = "".join(texts)
    return ("assistant", text) if text else None


# --- URLs and headers -----------------------------------------------------------------

_AZURE_HOSTS = (".openai.azure.com", ".services.ai.azure.com", ".cognitiveservices.azure.com")


def is_azure(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(_AZURE_HOSTS)


def _ws_scheme(scheme: str) -> str:
    scheme = scheme.lower()
    if scheme in ("http", "ws"):
        return "ws"
    if scheme in ("https", "wss"):
        return "wss"
    raise ValueError(f"unsupported realtime URL scheme: {scheme!r}")


def backend_ws_url(base: str) -> str:
    """Backend dialect URL: http->ws, https->wss; an empty or ``/`` path becomes ``/ws``."""
    parts = urlsplit(base)
    scheme = _ws_scheme(parts.scheme)
    path = parts.path if parts.path not in ("", "/") else "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def openai_ws_url(base: str, model: str | None = None, *, api_version: str | None = None) -> str:
    """GA URL: ``wss://host/v1/realtime?model=M``; Azure ``/openai/v1/realtime?model=<deployment>``
    or, with ``api_version``, the preview form ``/openai/realtime?api-version=V&deployment=D``."""
    parts = urlsplit(base)
    scheme = _ws_scheme(parts.scheme)
    path = parts.path.rstrip("/")
    query = dict(parse_qsl(parts.query))
    azure = is_azure(base)
    if not path.endswith("/realtime"):
        if azure and api_version:
            path = "/openai/realtime"
        elif azure:
            path = (path if path.endswith("/openai/v1") else "/openai/v1") + "/realtime"
        else:
            path = (path or "/v1") + "/realtime"
    if azure and api_version:
        query.setdefault("api-version", api_version)
        if model:
            query.setdefault("deployment", model)
    elif model and "call_id" not in query:
        query.setdefault("model", model)
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def auth_headers(url: str, api_key: str | None) -> dict[str, str]:
    """OpenAI: ``Authorization: Bearer``; Azure: ``api-key``. None for the backend dialect's caller."""
    if not api_key:
        return {}
    if is_azure(url):
        return {"api-key": api_key}
    return {"Authorization": f"Bearer {api_key}"}
