"""The turn loop: one user turn from prompt to ``TurnDone``, its tool rounds, cancel and failure.

Turns run on the agent loop (``loop.py``) one at a time (a lock), whatever thread asks. A failed
or cancelled turn keeps the user's message and leaves a history the next request accepts:
dangling tool calls get an output, a cancelled answer is kept with ``INTERRUPTED_MARK``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..config import Provider, Secret
from ..protocol import errors as E
from ..protocol.responses import FunctionCallItem
from ..session import ModelSession, TurnContext
from ..store import warning_item
from .accumulator import TurnAccumulator
from .history import _assistant_message, _final_text, _replay_item, _user_message

if TYPE_CHECKING:
    from .core import Agent

log = logging.getLogger("jupyter_agent")

INTERRUPTED_MARK = "[interrupted]"
EventCallback = Callable[[ev.AgentEvent], None]


@dataclass
class Turn:
    """The outcome of one user turn."""

    id: str
    prompt: str
    status: str = "running"  # "completed", "failed", "interrupted"
    text: str = ""
    events: list[ev.AgentEvent] = field(default_factory=list)
    usage: ev.Usage | None = None
    error: str | None = None
    telemetry: dict[str, Any] = field(default_factory=dict)


@dataclass
class TurnHandle:
    """A turn started with ``Agent.start``: a concurrent future plus cancel."""

    turn_id: str
    future: concurrent.futures.Future[Turn]
    _agent: Agent

    def cancel(self) -> None:
        self._agent.cancel(self.turn_id)

    def result(self, timeout: float | None = None) -> Turn:
        return self.future.result(timeout)


class TurnRunning(RuntimeError):
    """A conversation or connection change was refused because a turn is running."""


class TurnsMixin:
    """Part of ``Agent``: the turn loop and what it emits."""

    turns: list[Turn]
    history: list[dict[str, Any]]
    max_tool_rounds: int
    _loop: Any
    _turn_lock: asyncio.Lock | None
    _tasks: dict[str, asyncio.Task[Turn]]
    _after_turns: list[Callable[[], Any]]
    turn_timeout: float | None
    _subscribers: list[EventCallback]
    _notified_local: bool
    _last_server_model: str | None
    _api_key: Secret | None

    # Provided by the other parts of ``Agent``.
    if TYPE_CHECKING:  # properties of Agent, and a coroutine of ProjectMixin

        @property
        def model_name(self) -> str: ...

        @property
        def session(self) -> ModelSession: ...

        async def _mcp_tools(self, emit: EventCallback, turn_id: str) -> None: ...  # project.py

    resolved_provider: Callable[[], Provider]
    _set_api_key: Callable[[str | None], None]
    _append_history: Callable[..., None]
    _close_dangling: Callable[[list[FunctionCallItem], str], None]
    _reject_approvals: Callable[[TurnContext], None]
    _web_search_notices: Callable[[Provider, EventCallback, str], None]
    _run_tools: Callable[..., Any]
    _sample_in_window: Callable[..., Any]  # compaction.py
    _lookup_window: Callable[..., Any]  # context.py
    _turn_window: Any
    _account_usage: Callable[..., None]
    _sample_dropping_rejected_web_search: Callable[..., Any]

    async def _turn_entry(
        self, turn_id: str, prompt: str, source: str, sink: EventCallback | None, interactive: bool, title: str = ""
    ) -> Turn:
        if self._turn_lock is None:
            self._turn_lock = asyncio.Lock()
        task = asyncio.current_task()
        assert task is not None
        self._tasks[turn_id] = task  # cancellable while waiting for the lock too
        try:
            async with self._turn_lock:
                return await self._run_turn(turn_id, prompt, source, sink, interactive, title)
        finally:
            self._tasks.pop(turn_id, None)
            while not self._tasks and self._after_turns:
                try:
                    self._after_turns.pop(0)()
                except Exception:  # a deferred setting must not break the turn's end
                    log.exception("deferred change after the turn failed")

    def after_turns(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the agent loop once no turn is running (now, if none is)."""

        def _queue() -> None:
            if self._tasks:
                self._after_turns.append(fn)
            else:
                fn()

        self._loop.call_soon(_queue)

    def _refuse_while_running(self, what: str) -> None:
        """A conversation or connection change would cut the running turn (issue 15 item 10)."""
        if self._tasks:
            raise TurnRunning(f"A turn is running: stop it (or let it finish) before {what}.")

    async def _run_turn(
        self, turn_id: str, prompt: str, source: str, sink: EventCallback | None, interactive: bool, title: str = ""
    ) -> Turn:
        turn = Turn(id=turn_id, prompt=prompt)
        self.turns.append(turn)

        def emit(event: ev.AgentEvent) -> None:
            self._emit(turn, sink, event)

        provider = self.resolved_provider()
        ctx = TurnContext(turn_id=turn_id, requested_model=self.model_name, interactive=interactive)
        if self.turn_timeout:
            ctx.deadline = asyncio.get_running_loop().time() + self.turn_timeout
        # Spec §7: "reasoning included" is per turn; the next response's headers set it again.
        self.session.reasoning_included = False
        emit(ev.TurnStarted(prompt=prompt, model=ctx.requested_model, source=source, title=title, turn_id=turn_id))
        self._append_history(_user_message(prompt))
        self._turn_notices(provider, emit, turn_id)
        await self._mcp_tools(emit, turn_id)  # MCP servers' tools for this turn (project.py)
        self._turn_window = await self._lookup_window(provider, ctx.requested_model)  # context.py
        acc = TurnAccumulator(
            turn_id,
            lambda e: self._emit_turn_event(turn, sink, e),
            requested_model=ctx.requested_model,
            last_server_model=self._last_server_model,
            metrics=ctx.metrics,
        )
        pending_calls: list[FunctionCallItem] = []
        try:
            await self._tool_rounds(provider, ctx, acc, turn, emit, pending_calls)
            turn.status = "completed"
            turn.text = _final_text(acc.sampling.items)
        except asyncio.CancelledError:
            turn.status = "interrupted"
            self._close_dangling(pending_calls, "Cancelled by the user before the tool ran.")
            turn.usage = acc.usage
            partial = acc.sampling.partial_answer()
            if partial:
                self._append_history(_assistant_message(f"{partial}\n\n{INTERRUPTED_MARK}"))
            turn.text = partial
            self._reject_approvals(ctx)
            # An interrupted turn cost requests and time too: its footer comes first (issue 15 item 13).
            turn.telemetry = ctx.metrics.summary()
            emit(ev.Telemetry(summary=turn.telemetry, line=ctx.metrics.line(), turn_id=turn_id))
            emit(ev.TurnDone(status="interrupted", text=turn.text, turn_id=turn_id))
            raise
        except E.AgentError as error:
            turn.usage = acc.usage
            self._turn_failed(turn, error, pending_calls, emit)
        except Exception:  # never crash the kernel on a bug or bad data
            log.exception("turn failed")
            turn.usage = acc.usage
            turn.status = "failed"
            # Plain language for the user (issue 15 item 5); the traceback is in the log above.
            turn.error = (
                "the turn stopped because of a bug in jupyter-agent (details in the log, logger 'jupyter_agent')"
            )
            self._close_dangling(pending_calls, "Tool not run: internal error.")
            emit(ev.Error(message=f"Internal error: {turn.error}", turn_id=turn_id))
        turn.telemetry = ctx.metrics.summary()
        line = ctx.metrics.line()
        emit(ev.Telemetry(summary=turn.telemetry, line=line, turn_id=turn_id))
        if turn.status != "interrupted":
            emit(ev.TurnDone(status=turn.status, text=turn.text, turn_id=turn_id))
        return turn

    def _turn_notices(self, provider: Provider, emit: EventCallback, turn_id: str) -> None:
        """What the user should know before the answer: the embedded model, Azure web search."""
        if provider.name == "local" and not self._notified_local:
            self._notified_local = True
            emit(
                ev.Notice(
                    level="info",
                    message=(
                        "Answered by the embedded local model (SmolLM2-135M-Instruct, small and offline). "
                        "For a real model set OPENAI_API_KEY (or AZURE_OPENAI_API_KEY + AZURE_OPENAI_ENDPOINT) "
                        "in the environment or a .env file, or run %agent connect --base-url URL."
                    ),
                    turn_id=turn_id,
                )
            )
        self._web_search_notices(provider, emit, turn_id)

    async def _tool_rounds(
        self,
        provider: Provider,
        ctx: TurnContext,
        acc: TurnAccumulator,
        turn: Turn,
        emit: EventCallback,
        pending: list[FunctionCallItem],
    ) -> None:
        """Sample, replay the output into history, run the calls it asked for; until no calls.

        ``pending`` holds the calls being run, so a failure can give each an output.
        """
        window_state: dict[str, bool] = {}  # compaction.py: one automatic compaction, one recovery
        for _round in range(self.max_tool_rounds + 1):
            sampling = await self._sample_in_window(provider, ctx, acc, emit, window_state)
            turn.usage = acc.usage
            self._account_usage(sampling.usage, self._turn_window, emit, ctx.turn_id)  # the context gauge
            keep_ids = provider.is_azure
            for item in sampling.items:
                replay = _replay_item(item, keep_ids)
                if replay is not None:
                    self._append_history(replay)
            calls = [i for i in sampling.items if isinstance(i, FunctionCallItem)]
            if not calls:
                return
            pending[:] = calls
            await self._run_tools(calls, ctx, turn, emit)
            pending.clear()
        raise E.AgentError(f"Stopped after {self.max_tool_rounds} tool rounds without a final answer.")

    def _turn_failed(
        self, turn: Turn, error: E.AgentError, pending: list[FunctionCallItem], emit: EventCallback
    ) -> None:
        turn.status = "failed"
        turn.error = error.message
        self._close_dangling(pending, f"Tool not run: the turn failed ({error.message}).")
        for snap in error.rate_limits:
            if snap.primary or snap.secondary or snap.credits:
                emit(ev.RateLimits(snapshot=self.session.update_rate_limits(snap), turn_id=turn.id))
        emit(ev.Error(message=error.message, retryable=False, code=error.code, turn_id=turn.id))
        if isinstance(error, E.AuthenticationError) and self._api_key is None:
            # Spec §3.5 "401 -> reload stored auth": the next turn reads the key from the environment / .env again.
            self._set_api_key(None)  # the turn's own ending: not a change under a running turn

    def _emit_turn_event(self, turn: Turn, sink: EventCallback | None, event: ev.AgentEvent) -> None:
        """``_emit`` for the accumulator's events; a reroute warning also goes into history (spec §4)."""
        self._emit(turn, sink, event)
        if type(event) is ev.RerouteWarning:
            self._append_history(warning_item(event.message))

    def _emit(self, turn: Turn, sink: EventCallback | None, event: ev.AgentEvent) -> None:
        turn.events.append(event)
        for callback in (sink, *self._subscribers):
            if callback is None:
                continue
            try:
                callback(event)
            except Exception:  # a broken frontend must not break the turn
                log.exception("agent event callback failed")
