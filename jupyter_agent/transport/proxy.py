"""Outbound proxies: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` and ``NO_PROXY`` from the
environment are honoured by both transports (kernels on a cluster often reach the internet only
through one). Loopback addresses never go through a proxy: the embedded model and local
test servers listen on 127.0.0.1, which a proxy elsewhere cannot reach.

- HTTP (httpx): ``trust_env`` reads the variables (``NO_PROXY`` included); `httpx_client_options`
  adds mounts that send loopback hosts direct.
- WebSocket (websockets >= 15): ``connect(proxy=True)``, the default, reads the same variables
  through ``urllib.request.getproxies`` / ``proxy_bypass`` (``NO_PROXY``) and tunnels with HTTP
  ``CONNECT`` (SOCKS needs ``python-socks``); `ws_proxy_option` turns it off for loopback.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def httpx_client_options() -> dict[str, Any]:
    """Keyword arguments for ``httpx.(Async)Client``: environment proxies, loopback direct."""
    mounts: dict[str, Any] = {f"all://{'[::1]' if h == '::1' else h}": None for h in LOOPBACK_HOSTS}
    return {"trust_env": True, "mounts": mounts}


def ws_proxy_option(url: str) -> dict[str, Any]:
    """Keyword arguments for ``websockets.asyncio.client.connect``: no proxy for loopback, else
    the environment's (websockets' default)."""
    return {"proxy": None} if is_loopback(url) else {}
