"""Realtime WebSocket clients for both dialects behind one interface (spec §11.1-11.3).

``RealtimeWebSocket.connect`` opens the socket and sends the session setup (``session.create``
for the backend dialect, ``session.update`` plus optional history items for the OpenAI GA API);
connect fails if that send fails. ``next_event()`` returns typed inbound events, skips unknown
ones, turns a binary frame into an ``ErrorEvent`` and returns ``None`` after a close (every later
read too). Sends go straight to the socket and never wait on a pending read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ..protocol import realtime as P
from .proxy import ws_proxy_option
from .redact import WS_CLIENT_LOGGER

log = logging.getLogger(__name__)

__all__ = ["RealtimeConnectError", "RealtimeSessionConfig", "RealtimeWebSocket", "realtime_url"]


class RealtimeConnectError(Exception):
    """Connecting or sending the session setup failed (message never contains the API key)."""


@dataclass(slots=True)
class RealtimeSessionConfig:
    """What a realtime connection needs. ``api_key`` is never shown in reprs or errors."""

    url: str
    dialect: P.Dialect = "backend"
    api_key: str | None = field(default=None, repr=False)
    prompt: str = ""
    model: str | None = None
    voice: str | None = None
    conversation_id: str | None = None
    #: Earlier conversation turns [{"role", "text"}] replayed as items (OpenAI dialect).
    history: list[dict[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    transcription_model: str | None = "gpt-4o-mini-transcribe"
    turn_detection: dict[str, Any] | Literal["default"] | None = "default"
    azure_api_version: str | None = None
    open_timeout: float = 10.0


def realtime_url(cfg: RealtimeSessionConfig) -> str:
    if cfg.dialect == "backend":
        return P.backend_ws_url(cfg.url)
    return P.openai_ws_url(cfg.url, cfg.model, api_version=cfg.azure_api_version)


class RealtimeWebSocket:
    """One realtime conversation socket."""

    def __init__(self, ws: ClientConnection, cfg: RealtimeSessionConfig, conversation_id: str | None) -> None:
        self._ws = ws
        self.cfg = cfg
        self.dialect: P.Dialect = cfg.dialect
        self.conversation_id = conversation_id
        self._ended = False
        self.close_code: int | None = None
        self.close_reason: str = ""

    @classmethod
    async def connect(
        cls, cfg: RealtimeSessionConfig, *, prompt: str | None = None, conversation_id: str | None = None
    ) -> RealtimeWebSocket:
        """Connect and send the session setup; raises `RealtimeConnectError`."""
        url = realtime_url(cfg)
        headers = dict(cfg.headers)
        if cfg.dialect == "openai":  # the backend dialect attaches no auth headers (spec §11.1)
            headers.update(P.auth_headers(url, cfg.api_key))
        kwargs = ws_proxy_option(url)  # HTTPS_PROXY / NO_PROXY; loopback direct
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                compression=None,
                max_size=None,
                open_timeout=cfg.open_timeout,
                logger=WS_CLIENT_LOGGER,
                **kwargs,
            )
        except Exception as exc:  # noqa: BLE001 - reported to the user, key-free
            raise RealtimeConnectError(_describe(exc, cfg.api_key)) from None
        conv_id = conversation_id if conversation_id is not None else cfg.conversation_id
        self = cls(ws, cfg, conv_id)
        try:
            for msg in self._setup_messages(cfg.prompt if prompt is None else prompt):
                await self.send_json(msg)
        except Exception as exc:  # noqa: BLE001 - any set-up failure is a connect error (key redacted)
            await self.abort()
            raise RealtimeConnectError(_describe(exc, cfg.api_key)) from None
        return self

    def _setup_messages(self, prompt: str) -> list[dict[str, Any]]:
        cfg = self.cfg
        if cfg.dialect == "backend":
            return [P.backend_session_create(prompt, self.conversation_id)]
        msgs = [
            P.openai_session_update(
                prompt or None,
                voice=cfg.voice,
                transcription_model=cfg.transcription_model,
                turn_detection=cfg.turn_detection,
            )
        ]
        for turn in cfg.history:
            role, text = turn.get("role"), turn.get("text")
            if role in ("user", "assistant") and text:
                msgs.append(P.openai_item(role, text))
        return msgs

    # -- sending -----------------------------------------------------------------------

    async def send_json(self, msg: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(msg, separators=(",", ":")))

    async def send_audio(self, frame: P.RealtimeAudioFrame) -> None:
        msg = P.backend_audio(frame) if self.dialect == "backend" else P.openai_audio(frame)
        await self.send_json(msg)

    async def send_text(self, text: str) -> None:
        """A user text message; the OpenAI dialect also asks for a response."""
        if self.dialect == "backend":
            await self.send_json(P.backend_text(text))
        else:
            await self.send_json(P.openai_item("user", text))
            await self.send_json(P.openai_response_create())

    async def update_prompt(self, prompt: str) -> None:
        if self.dialect == "backend":
            await self.send_json(P.backend_session_update(prompt, self.conversation_id))
        else:
            await self.send_json(P.openai_instructions_update(prompt))

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        """Tell the server how much assistant audio was heard (OpenAI dialect; no-op otherwise)."""
        if self.dialect == "openai":
            await self.send_json(P.openai_truncate(item_id, audio_end_ms))

    # -- receiving ---------------------------------------------------------------------

    async def next_event(self) -> P.RealtimeInbound | None:
        """Next typed event; ``None`` once the connection ended (and on every later call)."""
        while not self._ended:
            try:
                msg = await self._ws.recv()
            except ConnectionClosed as exc:
                self._ended = True
                rcvd = exc.rcvd
                self.close_code = rcvd.code if rcvd is not None else None
                self.close_reason = rcvd.reason if rcvd is not None else ""
                return None
            if isinstance(msg, bytes):
                return P.ErrorEvent(message=P.UNEXPECTED_BINARY, fatal=True)
            event = P.parse_event(self.dialect, msg)
            if event is not None:
                return event
            log.debug("ignored realtime event %.80s", msg)
        return None

    # -- closing -----------------------------------------------------------------------

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._ws.close(), 2.0)
        except Exception:  # noqa: BLE001 - a close that fails or hangs: abort instead
            await self.abort()

    async def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        transport = getattr(self._ws, "transport", None)
        if transport is not None:
            transport.abort()


def _describe(exc: BaseException, secret: str | None) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    return f"realtime connect failed: {text}"
