"""The agent layer: ``Agent`` and its parts, by role.

``core.py`` public API, configuration and pub/sub; ``turns.py`` the turn loop and cancel;
``tools.py`` tool running and approvals; ``history.py`` replay, transcript, reset and resume;
``requests.py`` request bodies and the web-search policy; ``accumulator.py`` session events ->
agent events (no I/O). Frontends import from here: ``from jupyter_agent.agent import Agent``.
"""

from __future__ import annotations

from .core import DEFAULT_INSTRUCTIONS, Agent, Turn, TurnHandle
from .turns import INTERRUPTED_MARK

__all__ = ["DEFAULT_INSTRUCTIONS", "INTERRUPTED_MARK", "Agent", "Turn", "TurnHandle"]
