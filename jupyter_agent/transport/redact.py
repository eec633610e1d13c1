"""Keep credentials out of third-party DEBUG logs.

The ``websockets`` client logs every handshake request header at DEBUG (``> Authorization:
Bearer sk-...``), so a notebook that turns on DEBUG logging would print the API key. Our
WebSocket connections log through ``WS_CLIENT_LOGGER`` instead: the same ``websockets.client``
logger (user configuration still applies) with credential header values and bearer tokens
replaced by ``***``.

A server can also echo the key back (into a response header, an error frame): httpcore and
websockets print those verbatim at DEBUG. ``protect_secret`` (called for every ``config.Secret``)
registers the value with ``SECRET_FILTER``, a filter on those libraries' loggers that replaces
it with ``***``. Filters run only for records at an enabled level: no cost when DEBUG is off.
"""

from __future__ import annotations

import logging
import re
from typing import Any

SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "openai-api-key", "proxy-authorization", "cookie", "chatgpt-account-id"}
)
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


class SecretFilter(logging.Filter):
    """Replaces every registered secret in a record's formatted message with ``***``."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if len(secret) >= 8:  # short values would mangle unrelated text
            self._secrets.add(secret)

    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            # args too: a handler may read them (websockets passes whole frames, shown truncated)
            raw = message + (repr(record.args) if record.args else "")
            hits = [s for s in self._secrets if s in raw]
            if hits:
                for secret in hits:
                    message = message.replace(secret, "***")
                record.msg, record.args = message, ()
        return True


SECRET_FILTER = SecretFilter()
#: Loggers that print wire data (headers, frames) at DEBUG.
WIRE_LOGGERS = (
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.connection",
    "httpcore.proxy",
    "httpx",
    "websockets.client",
    "websockets.protocol",
    "jupyter_agent",
)
_installed = False


def protect_secret(secret: str) -> None:
    """Keep ``secret`` out of the wire libraries' log records from now on."""
    global _installed
    SECRET_FILTER.add(secret)
    if not _installed:
        _installed = True
        for name in WIRE_LOGGERS:
            logging.getLogger(name).addFilter(SECRET_FILTER)


#: Pass as ``logger=`` to ``websockets.asyncio.client.connect``.
WS_CLIENT_LOGGER = RedactingLogger(logging.getLogger("websockets.client"), {})
