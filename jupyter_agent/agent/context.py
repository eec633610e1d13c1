"""Context accounting: the model's window, the session's token totals, bounded tool outputs.

The window comes from, in order (issue 14): ``Agent.context_window``; what the server says (a
compatible server's ``/models`` entry where it has a window field; llama.cpp's ``/props`` ``n_ctx``
for the embedded model); the documented table in ``windows.py``. One exception: a compatible
server serving a known OpenAI model name (a gateway) is not asked, the table answers. Unknown is reported as unknown.
Tool outputs entering history are capped (head + tail with an elision marker); the full output
stays in the ``ToolResult`` event and so in the cell and the panel.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from traitlets import Float, HasTraits, Int

from .. import events as ev
from ..config import Provider
from ..protocol.types import Usage
from ..transport.proxy import httpx_client_options
from .windows import known_window

log = logging.getLogger("jupyter_agent")

#: Window fields seen in ``/models`` entries: OpenRouter / LM Studio / vLLM / llama.cpp (``meta``).
MODEL_LIST_FIELDS = ("context_window", "context_length", "max_context_length", "max_model_len", "n_ctx")


@dataclass(frozen=True)
class ContextWindow:
    """A model's window in tokens (None: unknown) and where the figure comes from."""

    tokens: int | None
    source: str


UNKNOWN = ContextWindow(None, "unknown (set %config Agent.context_window = N)")


def cap_output(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters: head + tail, and a marker saying how much was cut."""
    if limit <= 0 or len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    cut = len(text) - head - tail
    marker = (
        f"\n\n[... {cut} characters ({cut * 100 // len(text)}% of the output) elided by jupyter-agent; "
        f"the output had {len(text)} characters, here are the first {head} and the last {tail} ...]\n\n"
    )
    return text[:head] + marker + text[len(text) - tail :]


def cap_tool_output(output: Any, limit: int) -> Any:
    """A tool output as history keeps it: strings and ``input_text`` parts capped, images kept."""
    if isinstance(output, str):
        return cap_output(output, limit)
    if isinstance(output, list):
        return [
            {**p, "text": cap_output(p["text"], limit)} if isinstance(p, dict) and isinstance(p.get("text"), str) else p
            for p in output
        ]
    return output


def _window_from_models(data: Any, model: str) -> int | None:
    entries = data.get("data") if isinstance(data, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("id") != model:
            continue
        for holder in (entry, entry.get("meta")):
            if not isinstance(holder, dict):
                continue
            for name in MODEL_LIST_FIELDS:
                value = holder.get(name)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    return value
    return None


def _window_from_props(data: Any) -> int | None:
    if not isinstance(data, dict):
        return None
    settings = data.get("default_generation_settings")
    for holder in (settings, data):
        value = holder.get("n_ctx") if isinstance(holder, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


async def server_window(provider: Provider, model: str, *, timeout: float = 3.0) -> ContextWindow | None:
    """What the server says about the window, or None (OpenAI and Azure do not say)."""
    if provider.name not in ("local", "compatible"):
        return None
    if not provider.base_url and provider.prepare is not None:
        try:  # the embedded model's URL is known once it is loaded (the turn needs it anyway)
            await asyncio.to_thread(provider.prepare)
        except Exception:  # noqa: BLE001 - not loadable: the turn reports it; the window stays unknown
            return None
    base = provider.base_url.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=timeout, **httpx_client_options()) as client:
            if provider.name == "local":
                root = base[: -len("/v1")] if base.endswith("/v1") else base
                reply = await client.get(root + "/props")
                n_ctx = _window_from_props(reply.json()) if reply.status_code == 200 else None
                return ContextWindow(n_ctx, "the embedded model (llama.cpp /props n_ctx)") if n_ctx else None
            reply = await client.get(base + "/models", headers=provider.auth_headers())
            tokens = _window_from_models(reply.json(), model) if reply.status_code == 200 else None
            return ContextWindow(tokens, "the server's model list") if tokens else None
    except (httpx.HTTPError, ValueError):  # no answer / not JSON: the next source decides
        log.debug("context window lookup failed", exc_info=True)
        return None


class ContextMixin(HasTraits):
    """Part of ``Agent``: window lookup, token totals, the context gauge, the tool-output cap."""

    context_window = Int(
        None, allow_none=True, help="The model's context window in tokens; empty = ask the server, then the table."
    ).tag(config=True)
    tool_output_limit = Int(
        16_000, help="Characters of one tool output kept in history (head + tail); 0 = no cap."
    ).tag(config=True)
    compact_threshold = Float(
        0.85, help="Compact the conversation when the last request used this fraction of the window; 0 = never."
    ).tag(config=True)

    def _init_context(self) -> None:
        #: Session totals over every request (``%agent usage``, ``%agent status``).
        self.session_usage = Usage()
        #: Input tokens of the last request: what the context gauge shows.
        self.last_input_tokens: int | None = None
        self._windows: dict[tuple[str, str, str], ContextWindow] = {}
        self._turn_window = UNKNOWN

    def window_for(self, provider: Provider, model: str) -> ContextWindow:
        """The window known without asking the server (config, earlier answer, table)."""
        if self.context_window:
            return ContextWindow(self.context_window, "%config Agent.context_window")
        cached = self._windows.get((provider.name, provider.base_url, model))
        if cached is not None:
            return cached
        row = known_window(model)
        return ContextWindow(row[0], f"known model table ({row[1]})") if row else UNKNOWN

    async def _lookup_window(self, provider: Provider, model: str) -> ContextWindow:
        """``window_for``, after asking the server once per (provider, URL, model)."""
        key = (provider.name, provider.base_url, model)
        # A compatible server serving an OpenAI model name is a gateway in front of that model:
        # its documented window holds and no lookup request is spent (or recorded) for it.
        table_first = provider.name == "compatible" and known_window(model) is not None
        if not self.context_window and key not in self._windows and not table_first:
            found = await server_window(provider, model)
            # Under the URL asked before and after (loading the embedded model sets its URL).
            for k in (key, (provider.name, provider.base_url, model)):
                self._windows[k] = found or self.window_for(provider, model)
        return self.window_for(provider, model)

    def _account_usage(self, usage: Usage | None, window: ContextWindow, emit: Any, turn_id: str) -> None:
        """Add one request's usage to the totals and show the gauge."""
        if usage is None:
            return
        t = self.session_usage
        self.session_usage = Usage(
            input_tokens=t.input_tokens + usage.input_tokens,
            cached_input_tokens=t.cached_input_tokens + usage.cached_input_tokens,
            output_tokens=t.output_tokens + usage.output_tokens,
            reasoning_output_tokens=t.reasoning_output_tokens + usage.reasoning_output_tokens,
            total_tokens=t.total_tokens + usage.total_tokens,
        )
        self.last_input_tokens = usage.input_tokens
        emit(self.context_event(window, turn_id))

    def context_event(self, window: ContextWindow, turn_id: str = "") -> ev.ContextGauge:
        return ev.ContextGauge(
            input_tokens=self.last_input_tokens or 0,
            window=window.tokens,
            source=window.source,
            totals=self.session_usage,
            turn_id=turn_id,
        )
