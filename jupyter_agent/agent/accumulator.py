"""The turn accumulator: session events in, agent events out, no I/O.

Like openai-python's ``ResponseStreamState.handle_event`` (``lib/streaming/responses``), it only
folds a stream into state; the turn loop feeds it and decides what to do with the result. It can
therefore be tested on recorded streams without a socket (``tests/test_accumulator.py``).

Per request (``Sampling``): the finished output items, streamed text per message, phases (§8),
usage and the response id; a ``SessionRetry`` voids them (§3.5). Per turn: the token usage
total, time to first token, the server model and the once-per-turn reroute warning (§4).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import events as ev
from ..protocol.responses import (
    MessageItem,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    ReasoningSummaryTextDelta,
    ReasoningTextDelta,
    RefusalDelta,
    ResponseCompleted,
    ResponseDone,
    TimingEvent,
    WebSearchCallItem,
)
from ..protocol.types import Phase, Usage
from ..session.stream import RateLimitsUpdated, ServerModelSeen, SessionEvent, SessionNotice, SessionRetry
from ..telemetry import TurnMetrics

Emit = Callable[[ev.AgentEvent], None]


@dataclass
class Sampling:
    """What one model request produced (a retry starts it over)."""

    items: list[Any] = field(default_factory=list)
    usage: Usage | None = None
    response_id: str | None = None
    #: Streamed text pieces per message item (joined once: no quadratic concatenation).
    partial_text: dict[str, list[str]] = field(default_factory=dict)
    phases: dict[str, Phase] = field(default_factory=dict)

    def reset(self) -> None:
        self.items.clear()
        self.partial_text.clear()
        self.phases.clear()
        self.usage = None
        self.response_id = None

    def partial_answer(self) -> str:
        """Text streamed into messages that never completed (what a cancel keeps)."""
        done_ids = {i.id for i in self.items if isinstance(i, MessageItem)}
        return "".join("".join(t) for k, t in self.partial_text.items() if k not in done_ids)


class TurnAccumulator:
    """Folds the session stream of one turn (all its requests) into agent events.

    ``emit`` receives every agent event; ``last_server_model`` is the model the previous turn saw
    (a ``ServerModel`` event is emitted only on a change). ``started`` is the turn's
    ``perf_counter()`` start, for the time to first token (§10).
    """

    def __init__(
        self,
        turn_id: str,
        emit: Emit,
        *,
        requested_model: str = "",
        last_server_model: str | None = None,
        metrics: TurnMetrics | None = None,
        started: float | None = None,
    ) -> None:
        self.turn_id = turn_id
        self.emit = emit
        self.requested_model = requested_model
        self.last_server_model = last_server_model
        self.metrics = metrics if metrics is not None else TurnMetrics()
        self.started = time.perf_counter() if started is None else started
        self.reroute_warned = False
        #: Token usage summed over the turn's requests.
        self.usage: Usage | None = None
        self.sampling = Sampling()

    def new_request(self) -> Sampling:
        """Start collecting the output of the next model request."""
        self.sampling = Sampling()
        return self.sampling

    def handle(self, event: SessionEvent) -> None:
        """Fold one session event; unknown kinds are ignored (spec §3.3)."""
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    # -- output ---------------------------------------------------------------------------

    def _text_delta(self, event: OutputTextDelta) -> None:
        if self.metrics.ttft_ms is None:
            self.metrics.ttft_ms = (time.perf_counter() - self.started) * 1000.0
        item_id = event.item_id or ""
        sampling = self.sampling
        sampling.partial_text.setdefault(item_id, []).append(event.delta)
        self.emit(
            ev.TextDelta(delta=event.delta, item_id=item_id, phase=sampling.phases.get(item_id), turn_id=self.turn_id)
        )

    def _summary_delta(self, event: ReasoningSummaryTextDelta) -> None:
        self.emit(
            ev.ReasoningDelta(
                delta=event.delta,
                item_id=event.item_id or "",
                kind="summary",
                index=event.summary_index,
                turn_id=self.turn_id,
            )
        )

    def _reasoning_delta(self, event: ReasoningTextDelta) -> None:
        self.emit(
            ev.ReasoningDelta(
                delta=event.delta,
                item_id=event.item_id or "",
                kind="content",
                index=event.content_index,
                turn_id=self.turn_id,
            )
        )

    def _refusal_delta(self, event: RefusalDelta) -> None:
        self.emit(ev.TextDelta(delta=event.delta, item_id=event.item_id or "", turn_id=self.turn_id))

    def _item_added(self, event: OutputItemAdded) -> None:
        item = event.item
        if isinstance(item, MessageItem):
            self.sampling.phases[item.id or ""] = item.phase
        elif isinstance(item, WebSearchCallItem):
            self.emit(ev.WebSearch(item_id=item.id or "", status=item.status or "in_progress", turn_id=self.turn_id))

    def _item_done(self, event: OutputItemDone) -> None:
        item = event.item
        self.sampling.items.append(item)
        if isinstance(item, MessageItem):
            self.emit(ev.MessageDone(text=item.text, item_id=item.id or "", phase=item.phase, turn_id=self.turn_id))
        elif isinstance(item, WebSearchCallItem):
            action, detail, fields = item.display_detail() if item.action else ("other", "", {})
            self.emit(
                ev.WebSearch(
                    item_id=item.id or "",
                    status="completed" if item.status in (None, "completed") else item.status,
                    action=action,
                    detail=detail,
                    turn_id=self.turn_id,
                    **fields,
                )
            )

    def _completed(self, event: ResponseCompleted | ResponseDone) -> None:
        response = event.response
        self.sampling.response_id = response.id if response else None
        if response is None or response.usage is None:
            return
        u = response.usage
        usage = Usage(
            input_tokens=u.input_tokens,
            cached_input_tokens=(u.input_tokens_details.cached_tokens or 0) if u.input_tokens_details else 0,
            output_tokens=u.output_tokens,
            reasoning_output_tokens=(u.output_tokens_details.reasoning_tokens or 0) if u.output_tokens_details else 0,
            total_tokens=u.total_tokens,
        )
        self.sampling.usage = usage
        self.usage = add_usage(self.usage, usage)
        self.emit(ev.UsageEvent(usage=usage, turn_id=self.turn_id))

    def _timing(self, event: TimingEvent) -> None:
        self.metrics.record_timing(event.timing_metrics)

    # -- session facts --------------------------------------------------------------------

    def _server_model(self, event: ServerModelSeen) -> None:
        model = event.model
        if model != self.last_server_model:
            self.last_server_model = model
            self.emit(ev.ServerModel(model=model, turn_id=self.turn_id))
        requested = self.requested_model
        if not self.reroute_warned and requested and model.lower() != requested.lower():
            self.reroute_warned = True
            message = (
                f"The server answered with model {model} instead of the requested {requested}. "
                f"Answers in this turn come from {model}."
            )
            self.emit(ev.RerouteWarning(from_model=requested, to_model=model, message=message, turn_id=self.turn_id))

    def _rate_limits(self, event: RateLimitsUpdated) -> None:
        self.emit(ev.RateLimits(snapshot=event.snapshot, turn_id=self.turn_id))

    def _retry(self, event: SessionRetry) -> None:
        self.sampling.reset()  # the failed attempt's output is void
        self.emit(
            ev.Retry(
                attempt=event.attempt,
                max_attempts=event.max_attempts,
                delay=event.delay,
                reason=event.reason,
                turn_id=self.turn_id,
            )
        )

    def _notice(self, event: SessionNotice) -> None:
        level: Literal["info", "warning"] = "warning" if event.level == "warning" else "info"
        self.emit(ev.Notice(level=level, message=event.message, turn_id=self.turn_id))


_HANDLERS: dict[type, Callable[[TurnAccumulator, Any], None]] = {
    OutputTextDelta: TurnAccumulator._text_delta,
    ReasoningSummaryTextDelta: TurnAccumulator._summary_delta,
    ReasoningTextDelta: TurnAccumulator._reasoning_delta,
    RefusalDelta: TurnAccumulator._refusal_delta,
    OutputItemAdded: TurnAccumulator._item_added,
    OutputItemDone: TurnAccumulator._item_done,
    ResponseCompleted: TurnAccumulator._completed,
    ResponseDone: TurnAccumulator._completed,
    TimingEvent: TurnAccumulator._timing,
    ServerModelSeen: TurnAccumulator._server_model,
    RateLimitsUpdated: TurnAccumulator._rate_limits,
    SessionRetry: TurnAccumulator._retry,
    SessionNotice: TurnAccumulator._notice,
}


def add_usage(a: Usage | None, b: Usage) -> Usage:
    if a is None:
        return b
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        cached_input_tokens=a.cached_input_tokens + b.cached_input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        reasoning_output_tokens=a.reasoning_output_tokens + b.reasoning_output_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
    )
