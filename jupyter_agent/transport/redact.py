"""Keep credentials out of third-party DEBUG logs.

The ``websockets`` client logs every handshake request header at DEBUG (``> Authorization:
Bearer sk-...``), so a notebook that turns on DEBUG logging would print the API key. Our
WebSocket connections log through ``WS_CLIENT_LOGGER`` instead: the same ``websockets.client``
logger (user configuration still applies) with credential header values and bearer tokens
replaced by ``***``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

SECRET_HEADERS = frozenset({"authorization", "api-key", "openai-api-key", "proxy-authorization", "cookie", "chatgpt-account-id"})
_BEARER = re.compile(r"(?i)(bearer|basic)\s+[^\s,;'\"]+")


def redact_text(text: str) -> str:
    """``Bearer <token>`` / ``Basic <token>`` -> ``Bearer ***``."""
    return _BEARER.sub(lambda m: f"{m.group(1)} ***", text)


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger adapter that scrubs credential headers from every record's message and args."""

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        if isinstance(msg, str):
            msg = redact_text(msg)
        if len(args) == 2 and isinstance(args[0], str) and args[0].strip().lower() in SECRET_HEADERS:
            args = (args[0], "***")  # websockets: "> %s: %s" % (name, value)
        else:
            args = tuple(redact_text(a) if isinstance(a, str) else a for a in args)
        self.logger.log(level, msg, *args, **kwargs)


#: Pass as ``logger=`` to ``websockets.asyncio.client.connect``.
WS_CLIENT_LOGGER = RedactingLogger(logging.getLogger("websockets.client"), {})
