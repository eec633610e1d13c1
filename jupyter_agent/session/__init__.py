"""The model session layer: one conversation with one provider, over HTTP+SSE or the WebSocket.

``ModelSession`` (``base.py``) owns headers, turn state, rate limits and retries;
``WebSocketSession`` (``websocket.py``) adds the cached connection, prewarm and the HTTP fallback;
``stream.py`` is the typed union both yield. ``make_session`` picks the class for a transport.
"""

from __future__ import annotations

from ..config import Provider
from .base import ModelSession, SessionOptions, TurnContext
from .stream import (
    HeaderFact,
    ModelsEtagSeen,
    RateLimitsUpdated,
    ReasoningIncluded,
    ServerModelSeen,
    SessionEvent,
    SessionNotice,
    SessionRetry,
    TurnStateCaptured,
)
from .websocket import WebSocketSession


def make_session(provider: Provider, transport: str, *, options: SessionOptions | None = None) -> ModelSession:
    """The session for ``transport`` (``sse``, ``websocket`` or ``auto``).

    The embedded local model never gets a WebSocket session; ``auto`` uses one only where the
    provider supports the Responses WebSocket (OpenAI, Azure, a server declared as ``openai``).
    """
    if transport == "sse" or provider.name == "local" or (transport == "auto" and not provider.supports_websockets):
        return ModelSession(provider, options=options)
    return WebSocketSession(provider, options=options, transport=transport)


__all__ = [
    "HeaderFact",
    "ModelSession",
    "ModelsEtagSeen",
    "RateLimitsUpdated",
    "ReasoningIncluded",
    "ServerModelSeen",
    "SessionEvent",
    "SessionNotice",
    "SessionOptions",
    "SessionRetry",
    "TurnContext",
    "TurnStateCaptured",
    "WebSocketSession",
    "make_session",
]
