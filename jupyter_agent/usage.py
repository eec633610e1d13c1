"""``%agent usage``: read the provider's usage endpoint (spec §5.4) into rate-limit snapshots.

``GET {base}/wham/usage`` when the base contains ``/backend-api`` (``chatgpt.com`` gets
``/backend-api`` appended), else ``GET {origin}/api/codex/usage``. OpenAI platform keys have no
such endpoint; their limits come from the ``x-ratelimit-*`` headers of each response instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from . import events as ev
from .config import ORIGINATOR, USER_AGENT
from .events import RateLimitSnapshot
from .protocol.ratelimits import snapshots_from_usage_payload
from .transport.failures import log_detail, plain
from .transport.proxy import httpx_client_options
from .ui.gauges import RateLimitGauges
from .ui.text import TextOutput

if TYPE_CHECKING:  # pragma: no cover
    from .agent import Agent


class UsageUnavailable(Exception):
    """The provider has no usage endpoint, or it could not be read."""


def usage_url(base_url: str) -> str | None:
    """The usage endpoint for a provider base URL (None: the provider has none)."""
    parts = urlsplit(base_url)
    host = parts.netloc.lower()
    if host == "api.openai.com":
        return None
    if host in ("chatgpt.com", "chat.openai.com") and "/backend-api" not in parts.path:
        return urlunsplit((parts.scheme, parts.netloc, "/backend-api/wham/usage", "", ""))
    if "/backend-api" in parts.path:
        prefix = parts.path.split("/backend-api", 1)[0]
        return urlunsplit((parts.scheme, parts.netloc, prefix + "/backend-api/wham/usage", "", ""))
    return urlunsplit((parts.scheme, parts.netloc, "/api/codex/usage", "", ""))


async def fetch_usage(agent: Agent, *, timeout: float = 15.0) -> list[RateLimitSnapshot]:
    """Fetch the usage endpoint and merge the snapshots into the agent's rate-limit state."""
    provider = agent.resolved_provider()
    if provider.name == "local":
        raise UsageUnavailable("The embedded local model has no usage limits.")
    url = usage_url(provider.base_url)
    if url is None:
        raise UsageUnavailable(
            "OpenAI API keys have no usage endpoint; limits come from the x-ratelimit-* headers "
            "of each response (see %agent status)."
        )
    headers = {"User-Agent": USER_AGENT, "originator": ORIGINATOR, **provider.auth_headers()}
    try:
        async with httpx.AsyncClient(timeout=timeout, **httpx_client_options()) as client:
            response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        log_detail(f"usage endpoint {url}", exc)
        raise UsageUnavailable(f"Could not reach the usage endpoint {url}: {plain(exc)}.") from None
    if response.status_code == 404:
        raise UsageUnavailable(f"This provider has no usage endpoint ({url} answered 404).")
    if response.status_code >= 400:
        raise UsageUnavailable(f"The usage endpoint answered {response.status_code}.")
    try:
        payload: Any = response.json()
    except ValueError:
        raise UsageUnavailable("The usage endpoint did not answer with JSON.") from None
    if not isinstance(payload, dict):
        raise UsageUnavailable("The usage endpoint answered with an unexpected shape.")
    snapshots = snapshots_from_usage_payload(payload)
    merged = [agent.update_rate_limits(s) for s in snapshots]
    for snap in merged:  # pinned %agent limits gauges and the panel refresh from these (issue 15 item 12)
        agent.publish(ev.RateLimits(snapshot=snap))
    return merged


def fetch_usage_sync(agent: Agent) -> Any:
    """Run ``fetch_usage`` on the agent loop and return a displayable result."""
    try:
        snapshots = agent.agent_loop.run_sync(fetch_usage(agent), timeout=30)
    except UsageUnavailable as exc:
        return TextOutput(f"Usage: {exc}")
    widget = RateLimitGauges()
    widget.update({s.limit_id: s for s in snapshots})
    return widget
