"""The voice widget: an anywidget that talks and listens in the browser (``%agent voice``).

Browser -> kernel: custom messages ``{"type": "audio", "sample_rate", "num_channels"}`` with one
binary buffer of PCM16 LE (24 kHz mono, ~20 ms), ``mic``, ``text``, ``played``, ``hangup``.
Kernel -> browser: ``{"type": "audio", ...}`` + buffer for playback, ``{"type": "barge_in"}``.
Synced state: ``status``, ``error`` and the browser's counters (``frames_sent``, ``samples_sent``,
``playback_chunks_received``, ``playback_samples_queued``). The API key never enters widget state.
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import logging
import os
import pathlib
import threading
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from ..events import AgentEvent, RealtimeEvent
from ..transport.realtime_ws import RealtimeSessionConfig
from .manager import RealtimeConversationManager

log = logging.getLogger(__name__)

STATIC = pathlib.Path(__file__).parent / "static"
PRESTART_FRAMES = 250  # ~5 s of 20 ms frames kept while the connection is being made
DROPPED_MESSAGE = "The voice connection was closed by the server. Press Start talking to reconnect."


class VoiceWidget(anywidget.AnyWidget):
    """Microphone button, level meter, live transcripts and gapless playback."""

    _esm = STATIC / "voice.js"
    _css = STATIC / "voice.css"

    status = traitlets.Unicode("idle").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    transcript = traitlets.List(traitlets.Dict()).tag(sync=True)
    sample_rate = traitlets.Int(24000).tag(sync=True)
    frame_samples = traitlets.Int(480).tag(sync=True)
    dialect = traitlets.Unicode("backend").tag(sync=True)
    # counters maintained by the browser
    frames_sent = traitlets.Int(0).tag(sync=True)
    samples_sent = traitlets.Int(0).tag(sync=True)
    playback_chunks_received = traitlets.Int(0).tag(sync=True)
    playback_samples_queued = traitlets.Int(0).tag(sync=True)

    def __init__(
        self, manager: RealtimeConversationManager, publish: Callable[[AgentEvent], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(dialect=manager.config.dialect, **kwargs)
        self.manager = manager
        self._publish = publish
        self._lock = threading.Lock()
        self._live = False
        self._starting: concurrent.futures.Future[Any] | None = None
        self._pending: collections.deque[tuple[bytes, int, int]] = collections.deque(maxlen=PRESTART_FRAMES)
        #: kernel-side counters
        self.frames_received = 0
        self.samples_received = 0
        self.audio_chunks_out = 0
        self.audio_samples_out = 0
        self._unsubscribe = manager.subscribe(self._on_event)
        self.on_msg(self._on_front_msg)

    # -- Python API ----------------------------------------------------------------------

    def start(self, prompt: str | None = None) -> concurrent.futures.Future[Any]:
        """Start (or restart) the conversation; the future resolves to True once connected."""
        with self._lock:
            self.status = "connecting"
            self.error = ""
            fut = self.manager.submit_start(prompt)
            self._starting = fut
        return fut

    def send_text(self, text: str) -> concurrent.futures.Future[Any]:
        """Send a user text message, starting the conversation first if needed."""
        mgr = self.manager

        async def go() -> None:
            if not mgr.running:
                self.status = "connecting"
                if not await mgr.start():
                    return
            await mgr.insert_text(text)

        return mgr.submit(go())

    def hangup(self) -> concurrent.futures.Future[Any]:
        """End the conversation (emits ``closed``/``requested``); the widget stays usable."""
        return self.manager.submit_close()

    def close(self) -> None:
        """Close the widget and hang up a running conversation."""
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe is not None:
            unsubscribe()
        manager = getattr(self, "manager", None)
        if manager is not None and manager.running:
            try:
                manager.submit_close()
            except RuntimeError:  # the agent loop is already gone
                pass
        super().close()

    dispose = close

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        text = f"Voice conversation widget ({self.dialect} dialect): press Start talking or type a message."
        if isinstance(bundle, tuple):
            data, meta = bundle
            return {**data, "text/plain": text}, meta
        if isinstance(bundle, dict):
            return {**bundle, "text/plain": text}
        return bundle

    # -- browser messages (kernel thread) ------------------------------------------------

    def _on_front_msg(self, _widget: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "audio" and buffers:
            pcm = bytes(buffers[0])
            rate = _int_field(content, "sample_rate", 24000)
            channels = _int_field(content, "num_channels", 1)
            if not (8000 <= rate <= 192000 and 1 <= channels <= 8):
                log.debug("voice widget: ignored audio frame with rate %r, channels %r", rate, channels)
                return
            self.frames_received += 1
            self.samples_received += len(pcm) // 2 // max(channels, 1)
            with self._lock:
                if not self._live:
                    self._pending.append((pcm, rate, channels))
                    return
            self.manager.push_audio(pcm, rate, channels)
        elif kind == "mic" and content.get("on"):
            with self._lock:
                busy = self._live or (self._starting is not None and not self._starting.done())
            if not busy:
                self.start()
        elif kind == "text" and isinstance(content.get("text"), str):
            self.send_text(content["text"])
        elif kind == "played" and isinstance(content.get("item_id"), str):
            self.manager.submit(self.manager.truncate(content["item_id"], max(0, _int_field(content, "ms", 0))))
        elif kind == "hangup":
            with self._lock:
                self._pending.clear()
            self.manager.submit_close()

    # -- manager events (agent thread) ---------------------------------------------------

    def _on_event(self, event: AgentEvent) -> None:
        if isinstance(event, RealtimeEvent):
            self._apply(event)
        if self._publish is not None:
            try:
                self._publish(event)
            except Exception:  # a broken subscriber must not stop the voice widget
                log.exception("voice event publisher failed")

    def _apply(self, event: RealtimeEvent) -> None:
        kind, payload = event.kind, event.payload
        if kind == "started":
            with self._lock:
                self._live = True
                pending = list(self._pending)
                self._pending.clear()
                for pcm, rate, channels in pending:  # on the manager loop: queued in order
                    self.manager.push_audio(pcm, rate, channels)
            self.status = "live"
            self.error = ""
        elif kind == "event":
            inner = payload.get("kind")
            if inner == "audio_out":
                frame = payload["frame"]
                pcm = base64.b64decode(frame["data"])
                self.audio_chunks_out += 1
                self.audio_samples_out += len(pcm) // 2
                self.send(
                    {
                        "type": "audio",
                        "sample_rate": frame["sample_rate"],
                        "num_channels": frame["num_channels"],
                        "item_id": payload.get("item_id") or "",
                    },
                    buffers=[pcm],
                )
            elif inner == "speech_started":
                self.send({"type": "barge_in"})
        elif kind == "transcript":
            self._add_transcript(payload)
        elif kind == "closed":
            with self._lock:
                self._live = False
            self.status = "closed"
            if payload.get("reason") == "transport_closed":
                self.error = DROPPED_MESSAGE
        elif kind == "error":
            with self._lock:
                if not self.manager.running:
                    self._live = False
            if not self.manager.running and self.status == "connecting":
                self.status = "error"
            self.error = str(payload.get("message", "realtime error"))

    def _add_transcript(self, payload: dict[str, Any]) -> None:
        entry = {
            "role": payload.get("role", "assistant"),
            "text": payload.get("text", ""),
            "final": bool(payload.get("final")),
            "item_id": payload.get("item_id", ""),
        }
        items = list(self.transcript)
        for i in range(len(items) - 1, -1, -1):
            old = items[i]
            if not old.get("final") and old.get("role") == entry["role"] and old.get("item_id") == entry["item_id"]:
                items[i] = entry
                break
        else:
            items.append(entry)
        self.transcript = items[-200:]


# --- construction ---------------------------------------------------------------------


def _int_field(content: dict[str, Any], key: str, default: int) -> int:
    """An integer field of a browser message; ``default`` when absent or not a number."""
    value = content.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
        return default
    return int(value)


def _setting(kw: dict[str, Any], agent: Any, name: str, env: str, default: Any = None) -> Any:
    if kw.get(name) is not None:
        return kw[name]
    value = getattr(agent, f"realtime_{name}", None) if agent is not None else None
    if value:
        return value
    return os.environ.get(env) or default


def config_from(agent_or_config: Any, **kw: Any) -> RealtimeSessionConfig:
    """A session config from a config, a dict, or an `Agent` (plus keyword overrides).

    Keys: ``url``, ``dialect`` ("backend" | "openai"), ``api_key``, ``prompt``, ``model``,
    ``voice``, ``conversation_id``, ``history``. For an agent, missing values come from
    ``JUPYTER_AGENT_REALTIME_{URL,DIALECT,MODEL}`` and then the agent's provider.
    """
    if isinstance(agent_or_config, RealtimeSessionConfig):
        fields = {k: v for k, v in kw.items() if v is not None}
        cfg = agent_or_config
        if fields:
            import dataclasses

            cfg = dataclasses.replace(cfg, **fields)
        return cfg
    if isinstance(agent_or_config, dict):
        merged = {**agent_or_config, **{k: v for k, v in kw.items() if v is not None}}
        return RealtimeSessionConfig(**merged)
    agent = agent_or_config
    provider = None
    if agent is not None and hasattr(agent, "resolved_provider"):
        try:
            provider = agent.resolved_provider()
        except Exception:  # noqa: BLE001 - fall back to explicit settings
            provider = None
    url = _setting(kw, agent, "url", "JUPYTER_AGENT_REALTIME_URL", getattr(provider, "base_url", None))
    if not url:
        raise ValueError("no realtime URL: pass url=..., or set JUPYTER_AGENT_REALTIME_URL")
    dialect = _setting(kw, agent, "dialect", "JUPYTER_AGENT_REALTIME_DIALECT", "openai")
    model = _setting(kw, agent, "model", "JUPYTER_AGENT_REALTIME_MODEL", "gpt-realtime")
    api_key = kw.get("api_key")
    if api_key is None and provider is not None and getattr(provider, "api_key", None) is not None:
        api_key = provider.api_key.get()
    prompt = kw.get("prompt")
    if prompt is None:
        prompt = getattr(agent, "instructions", "") or ""
    history = kw.get("history")
    if history is None and agent is not None and hasattr(agent, "transcript"):
        history = [
            {"role": t["role"], "text": t["text"]}
            for t in agent.transcript()
            if t.get("role") in ("user", "assistant") and t.get("text")
        ]
    extra = {
        k: kw[k]
        for k in (
            "voice",
            "conversation_id",
            "headers",
            "transcription_model",
            "turn_detection",
            "azure_api_version",
            "open_timeout",
        )
        if k in kw
    }
    return RealtimeSessionConfig(
        url=url, dialect=dialect, api_key=api_key, prompt=prompt, model=model, history=history or [], **extra
    )


def agent_publisher(agent: Any) -> Callable[[AgentEvent], None] | None:
    """Forward voice events to the agent's subscribers and add final transcripts to its history."""
    if agent is None or not hasattr(agent, "publish"):
        return None

    def publish(event: AgentEvent) -> None:
        agent.publish(event)
        if isinstance(event, RealtimeEvent) and event.kind == "transcript" and event.payload.get("final"):
            text = event.payload.get("text") or ""
            role = event.payload.get("role")
            if text and role in ("user", "assistant"):
                agent.add_history_message(role, text)

    return publish


def show_voice(
    agent_or_config: Any, *, on_event: Callable[[AgentEvent], None] | None = None, loop: Any = None, **kw: Any
) -> VoiceWidget:
    """Build the voice widget wired to a new `RealtimeConversationManager` and return it.

    ``agent_or_config`` is an `Agent`, a `RealtimeSessionConfig` or a dict of its fields; keyword
    arguments (``url``, ``dialect``, ``api_key``, ``prompt``, ``model``, ``voice``, ...) override.
    The conversation starts when the user presses the microphone button, sends text, or calls
    ``widget.start()``. Network I/O runs on the agent loop (``loop``: an `AgentLoop` or asyncio loop).
    """
    agent = None if isinstance(agent_or_config, (RealtimeSessionConfig, dict)) else agent_or_config
    cfg = config_from(agent_or_config, **kw)
    if loop is None:
        agent_loop = getattr(agent, "agent_loop", None)
        loop = getattr(agent_loop, "loop", None)
    elif hasattr(loop, "loop"):
        loop = loop.loop
    if loop is None:
        from ..loop import get_agent_loop

        loop = get_agent_loop().loop
    manager = RealtimeConversationManager(cfg, on_event, loop=loop)
    publish = agent_publisher(agent)
    return VoiceWidget(manager, publish=publish)
