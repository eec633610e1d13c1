"""Plain-language descriptions of network failures (issue 15 item 5).

A user reads "the server's reply was not valid HTTP", never ``illegal chunk header:
bytearray(b'zz\\r\\n')`` or ``[Errno 111] Connection refused``: library messages and reprs go to the
log only (logger ``jupyter_agent.transport``), scrubbed of bearer tokens and registered secrets.
"""

from __future__ import annotations

import logging
import ssl
import zlib

import httpx

from .redact import SECRET_FILTER, redact_text

log = logging.getLogger("jupyter_agent.transport")


def plain(exc: BaseException) -> str:
    """What went wrong, in words a notebook user understands (no library text)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "the server did not accept the connection in time"
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout)):
        return "the server stopped responding"
    if isinstance(exc, httpx.ConnectError):
        if isinstance(exc.__context__, ssl.SSLError) or "ssl" in str(exc).lower():
            return "the secure (TLS) connection could not be established"
        return "the server could not be reached (refused, or host unreachable)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server's reply was not valid HTTP"
    if isinstance(exc, (httpx.DecodingError, zlib.error)):
        return "the server's compressed reply was corrupt"
    if isinstance(exc, ConnectionRefusedError):
        return "the server could not be reached (refused, or host unreachable)"
    if isinstance(exc, (httpx.ReadError, httpx.WriteError, ConnectionError)):
        return "the connection was lost"
    if isinstance(exc, TimeoutError):
        return "the server did not respond in time"
    if isinstance(exc, httpx.ProxyError):
        return "the proxy refused the connection"
    if isinstance(exc, OSError) and exc.errno is None and "multiple exceptions" in str(exc).lower():
        return "the server could not be reached (refused, or host unreachable)"  # asyncio: every address failed
    return "a network error occurred"


def log_detail(context: str, exc: BaseException) -> None:
    """Record the library's own message for whoever debugs it (secrets removed)."""
    if log.isEnabledFor(logging.INFO):
        log.info("%s: %s", context, scrub(f"{type(exc).__name__}: {exc}"))


def scrub(text: str) -> str:
    """Bearer tokens and registered secrets replaced by ``***``."""
    text = redact_text(text)
    for secret in SECRET_FILTER.secrets():
        text = text.replace(secret, "***")
    return text
