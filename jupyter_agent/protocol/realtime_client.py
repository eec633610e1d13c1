"""Realtime voice: outbound client messages, item text, URLs and auth headers (spec §11, openai-api §3).

Both dialects (``backend``, ``openai``; see ``realtime.py``) are built here; ``realtime.py``
re-exports every name, so importers use ``protocol.realtime`` alone.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .realtime_events import DEFAULT_SAMPLE_RATE, RealtimeAudioFrame

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
