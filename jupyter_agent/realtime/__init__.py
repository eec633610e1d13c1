"""Realtime voice: the conversation manager and the audio widget (``%agent voice``)."""

from __future__ import annotations

from typing import Any

from ..transport.realtime_ws import RealtimeSessionConfig
from .manager import RealtimeConversationManager

__all__ = ["RealtimeConversationManager", "RealtimeSessionConfig", "show_voice", "VoiceWidget"]


def show_voice(agent_or_config: Any, **kw: Any) -> Any:
    """Build the voice widget wired to a manager (see `jupyter_agent.realtime.widget.show_voice`)."""
    from .widget import show_voice as _show

    return _show(agent_or_config, **kw)


def __getattr__(name: str) -> Any:
    if name == "VoiceWidget":
        from .widget import VoiceWidget

        return VoiceWidget
    raise AttributeError(name)
