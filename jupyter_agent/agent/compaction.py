"""Compaction (issue 14): older history replaced by a compact summary, by hand or by threshold,
and the one-time recovery from ``context_length_exceeded``.

On OpenAI the standalone ``POST /responses/compact`` endpoint (openai-api.md §1.1) returns the
compacted window (the user messages and an opaque ``compaction`` item); elsewhere (Azure,
compatible servers, the embedded model) a summarisation request of our own writes a summary item.
Either way the latest turn (from its user message on: the recent tool results) is kept as it was,
the store records the new history (resume continues from it), and over WebSocket the next request
is not a prefix of the last one, so it starts a new chain with the full input (§2.5) and later
requests are incremental again. A compaction that fails raises ``CompactionFailed`` and leaves
history exactly as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from .. import events as ev
from ..config import Provider
from ..protocol import errors as E
from ..session import TurnContext
from ..transport.proxy import httpx_client_options
from .accumulator import TurnAccumulator
from .history import _content_text, _final_text

if TYPE_CHECKING:
    from .context import ContextWindow

log = logging.getLogger("jupyter_agent")

EventCallback = Callable[[ev.AgentEvent], None]
SUMMARY_PREFIX = "[Summary of the earlier conversation, written by jupyter-agent when it compacted the history]\n"
SUMMARY_PROMPT = (
    "You are compacting a long conversation between a user and a coding assistant that works in a "
    "Jupyter kernel. Write a concise summary that lets the assistant continue: the user's goals and "
    "requests, decisions made, variables, files and results that matter, errors met, and what was "
    "about to happen next. Plain text, no preamble."
)
#: Older user prompts kept verbatim next to the summary (own summaries; the endpoint keeps its own).
KEEP_USER_MESSAGES = 3
KEPT_MESSAGE_CHARS = 2000
#: Characters of transcript sent to be summarised when the window is unknown (about 15k tokens).
DEFAULT_SUMMARY_INPUT_CHARS = 60_000


class CompactionFailed(Exception):
    """Compaction did not happen; history is unchanged."""


def summary_item(text: str) -> dict[str, Any]:
    """The summary as a user message whose ``content`` is a plain string: the shape marks it (like
    the reroute warning in ``store.warning_item``), no user prompt has it."""
    return {"type": "message", "role": "user", "content": SUMMARY_PREFIX + text}


def is_compaction_item(item: dict[str, Any]) -> bool:
    """Our summary item or the endpoint's ``compaction`` item."""
    if item.get("type") in ("compaction", "compaction_summary"):
        return True
    content = item.get("content")
    return item.get("role") == "user" and isinstance(content, str) and content.startswith(SUMMARY_PREFIX)


def _is_prompt(item: dict[str, Any]) -> bool:
    return (
        item.get("type", "message") == "message"
        and item.get("role") == "user"
        and isinstance(item.get("content"), list)
    )


def split_history(history: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(older, recent)``: recent starts at the latest user prompt (that turn, its tool results)."""
    starts = [i for i, item in enumerate(history) if _is_prompt(item)]
    cut = starts[-1] if starts else len(history)
    return history[:cut], history[cut:]


def transcript_text(items: list[dict[str, Any]], budget: int) -> str:
    """The older items as plain text for our own summary request, the oldest cut first."""
    lines: list[str] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            lines.append(f"{item.get('role', 'user')}: {_content_text(item.get('content'))}")
        elif kind == "function_call":
            lines.append(f"tool call {item.get('name')}({item.get('arguments', '')})")
        elif kind == "function_call_output":
            out = item.get("output")
            lines.append(f"tool result: {out if isinstance(out, str) else _content_text(out)}")
    text = "\n\n".join(lines)
    return text if len(text) <= budget else "[... earliest part cut ...]\n" + text[len(text) - budget :]


def _kept_prompts(older: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept = []
    for item in [i for i in older if _is_prompt(i)][-KEEP_USER_MESSAGES:]:
        text = _content_text(item.get("content"))
        if len(text) > KEPT_MESSAGE_CHARS:
            text = text[:KEPT_MESSAGE_CHARS] + " [...]"
        kept.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    return kept


class CompactionMixin:
    """Part of ``Agent``: ``compact()``, the threshold check and the recovery around a sampling."""

    history: list[dict[str, Any]]
    compact_threshold: float
    last_input_tokens: int | None
    _turn_window: ContextWindow
    _loop: Any
    _turn_lock: asyncio.Lock | None
    _tasks: dict[str, Any]
    _install_history: Callable[[list[dict[str, Any]]], None]
    _build_body: Callable[[Provider], dict[str, Any]]
    _sample: Callable[..., Any]
    _sample_dropping_rejected_web_search: Callable[..., Any]
    _lookup_window: Callable[..., Any]
    _refuse_while_running: Callable[[str], None]
    resolved_provider: Callable[[], Provider]
    publish: Callable[[ev.AgentEvent], None]
    context_event: Callable[..., ev.ContextGauge]

    if TYPE_CHECKING:

        @property
        def model_name(self) -> str: ...

    def compact(self, timeout: float | None = 300.0) -> ev.Compacted:
        """Compact the conversation now (``%agent compact``); refused while a turn runs.

        Raises ``CompactionFailed`` (history unchanged) when there is nothing to compact or the
        summary request fails.
        """
        self._refuse_while_running("compacting the conversation")
        result: ev.Compacted = self._loop.run_sync(self._compact_locked(), timeout=timeout)
        return result

    async def _compact_locked(self) -> ev.Compacted:
        if self._turn_lock is None:
            self._turn_lock = asyncio.Lock()
        async with self._turn_lock:
            provider = self.resolved_provider()
            self._turn_window = await self._lookup_window(provider, self.model_name)
            ctx = TurnContext(requested_model=self.model_name)
            return await self._compact(provider, ctx, "requested", self.publish)

    async def _compact(self, provider: Provider, ctx: TurnContext, reason: str, emit: EventCallback) -> ev.Compacted:
        """Replace older history by a summary; ``CompactionFailed`` leaves history untouched."""
        before = list(self.history)
        older, recent = split_history(before)
        if not [i for i in older if not is_compaction_item(i)]:
            raise CompactionFailed("nothing older than the latest turn to compact")
        if provider.name == "openai":
            head, method = await self._compact_endpoint(provider, older), "responses/compact"
        else:
            head, method = [summary_item(await self._summarise(provider, older, ctx)), *_kept_prompts(older)], "summary"
        if self.history != before:  # pragma: no cover - turns hold the lock; a guard, not a path
            raise CompactionFailed("history changed while compacting")
        new = [*head, *recent]
        self._install_history(new)
        tokens, self.last_input_tokens = self.last_input_tokens or 0, None
        event = ev.Compacted(
            reason=reason,
            items_before=len(before),
            items_after=len(new),
            input_tokens_before=tokens,
            method=method,
            turn_id=ctx.turn_id if reason != "requested" else "",
        )
        emit(event)
        return event

    async def _summarise(self, provider: Provider, older: list[dict[str, Any]], ctx: TurnContext) -> str:
        """Our own summary request: the older part as a transcript (bounded by the window), no tools."""
        window = self._turn_window.tokens
        budget = max(4000, window * 2) if window else DEFAULT_SUMMARY_INPUT_CHARS  # ~2 chars/token: half the window
        body = self._build_body(provider)
        body["input"] = [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_text",
                        "text": f"{SUMMARY_PROMPT}\n\n<conversation>\n{transcript_text(older, budget)}\n</conversation>",
                    }
                ],
            }
        ]
        body["instructions"] = SUMMARY_PROMPT
        body["tools"] = []
        body.pop("tool_choice", None)
        body.pop("parallel_tool_calls", None)
        acc = TurnAccumulator(ctx.turn_id, lambda _e: None, requested_model=ctx.requested_model, metrics=ctx.metrics)
        try:
            sampling = await self._sample(body, ctx, acc)
        except E.AgentError as error:
            raise CompactionFailed(f"the summary request failed: {error.message}") from error
        text = _final_text(sampling.items).strip()
        if not text:
            raise CompactionFailed("the summary request returned no text")
        return text

    async def _compact_endpoint(self, provider: Provider, older: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``POST /responses/compact`` (§1.1): its ``output`` is the compacted window."""
        body = {"model": self.model_name, "input": older}
        headers = {**provider.extra_headers, **provider.auth_headers(), "content-type": "application/json"}
        try:
            async with httpx.AsyncClient(timeout=120.0, **httpx_client_options()) as client:
                reply = await client.post(
                    provider.base_url.rstrip("/") + "/responses/compact", json=body, headers=headers
                )
            data = reply.json() if reply.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise CompactionFailed(f"the compaction request failed ({type(exc).__name__})") from exc
        output = data.get("output") if isinstance(data, dict) else None
        if not isinstance(output, list) or not output or not all(isinstance(i, dict) for i in output):
            raise CompactionFailed(f"the compaction endpoint answered HTTP {reply.status_code} without a window")
        # store=false: ids would name items the server did not keep; the content is what counts.
        return [{k: v for k, v in i.items() if k not in ("status", "id")} for i in output]

    async def _sample_in_window(
        self, provider: Provider, ctx: TurnContext, acc: TurnAccumulator, emit: EventCallback, state: dict[str, bool]
    ) -> Any:
        """One sampling with compaction: at the threshold first, and once on ``context_length_exceeded``."""
        window = self._turn_window.tokens
        used = self.last_input_tokens
        threshold = self.compact_threshold
        if window and used and 0 < threshold and used >= threshold * window and not state.get("auto"):
            state["auto"] = True  # at most one automatic compaction per turn
            try:
                await self._compact(provider, ctx, "threshold", emit)
            except CompactionFailed as exc:
                emit(ev.Notice(level="warning", message=f"Automatic compaction skipped: {exc}.", turn_id=ctx.turn_id))
        try:
            return await self._sample_dropping_rejected_web_search(provider, ctx, acc)
        except E.AgentError as error:
            if error.code != "context_length_exceeded":
                raise
            if window:  # wire-protocol §3.5: the failed request's usage shows as the whole window
                full = self.context_event(self._turn_window, ctx.turn_id)
                emit(
                    ev.ContextGauge(
                        input_tokens=window, window=window, source=full.source, totals=full.totals, turn_id=ctx.turn_id
                    )
                )
            if state.get("recovered"):
                raise E.ContextWindowExceeded(
                    f"{error.message.rstrip('.')} (still, after compacting the conversation once). "
                    "Start a new conversation with %agent reset (this one stays saved)."
                ) from error
            state["recovered"] = True
            try:
                await self._compact(provider, ctx, "context_length_exceeded", emit)
            except CompactionFailed as exc:
                raise E.ContextWindowExceeded(
                    f"{error.message.rstrip('.')}; compacting the conversation to fit failed ({exc}). "
                    "Start a new conversation with %agent reset (this one stays saved)."
                ) from error
            return await self._sample_in_window(provider, ctx, acc, emit, state)
