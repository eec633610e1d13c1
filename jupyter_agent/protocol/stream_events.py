"""The Responses API's streamed server events as one pydantic discriminated union.

Unknown event types never fail: ``UnknownEvent`` keeps the raw payload (spec §3.3). Parsing from
bytes is in ``responses.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from .items import (
    CompletedResponse,
    OutputItem,
    ResponseInfo,
)


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sequence_number: int | None = None


class ResponseCreated(_Event):
    type: Literal["response.created"] = "response.created"
    response: ResponseInfo


class ResponseInProgress(_Event):
    type: Literal["response.in_progress", "response.queued"] = "response.in_progress"


class OutputItemAdded(_Event):
    type: Literal["response.output_item.added"] = "response.output_item.added"
    output_index: int | None = None
    item: OutputItem


class OutputItemDone(_Event):
    type: Literal["response.output_item.done"] = "response.output_item.done"
    output_index: int | None = None
    item: OutputItem


class OutputTextDelta(_Event):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    item_id: str | None = None
    output_index: int | None = None
    content_index: int | None = None
    delta: str


class RefusalDelta(_Event):
    type: Literal["response.refusal.delta"] = "response.refusal.delta"
    item_id: str | None = None
    delta: str


class ReasoningSummaryPartAdded(_Event):
    type: Literal["response.reasoning_summary_part.added"] = "response.reasoning_summary_part.added"
    item_id: str | None = None
    summary_index: int


class ReasoningSummaryTextDelta(_Event):
    type: Literal["response.reasoning_summary_text.delta"] = "response.reasoning_summary_text.delta"
    item_id: str | None = None
    summary_index: int
    delta: str


class ReasoningTextDelta(_Event):
    type: Literal["response.reasoning_text.delta"] = "response.reasoning_text.delta"
    item_id: str | None = None
    content_index: int
    delta: str


class FunctionCallArgumentsDelta(_Event):
    type: Literal["response.function_call_arguments.delta"] = "response.function_call_arguments.delta"
    item_id: str | None = None
    delta: str = ""


class WebSearchProgress(_Event):
    type: Literal[
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
    ]
    item_id: str | None = None


class ResponseCompleted(_Event):
    type: Literal["response.completed"] = "response.completed"
    response: CompletedResponse


class ResponseDone(_Event):
    """``response.done``: the v1 WebSocket terminal event (accepted on SSE too)."""

    type: Literal["response.done"] = "response.done"
    response: ResponseInfo | None = None


class ResponseFailed(_Event):
    type: Literal["response.failed"] = "response.failed"
    response: ResponseInfo | None = None


class ResponseIncomplete(_Event):
    type: Literal["response.incomplete"] = "response.incomplete"
    response: ResponseInfo | None = None


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None
    plan_type: str | None = None
    resets_at: float | None = None


class ErrorEvent(_Event):
    """In-stream ``error`` (flat or nested) and WebSocket wrapped errors (with ``status``)."""

    type: Literal["error"] = "error"
    code: str | None = None
    message: str | None = None
    param: str | None = None
    error: ErrorBody | None = None
    status: int | None = Field(default=None, validation_alias="status")
    status_code: int | None = None
    headers: dict[str, Any] | None = None

    @property
    def http_status(self) -> int | None:
        return self.status if self.status is not None else self.status_code


class RateLimitWindowWire(BaseModel):
    used_percent: float
    window_minutes: int | None = None
    reset_at: float | None = None


class RateLimitsWire(BaseModel):
    primary: RateLimitWindowWire | None = None
    secondary: RateLimitWindowWire | None = None


class CreditsWire(BaseModel):
    has_credits: bool
    unlimited: bool
    balance: str | None = None


class CodexRateLimitsEvent(_Event):
    type: Literal["codex.rate_limits"] = "codex.rate_limits"
    plan_type: str | None = None
    metered_limit_name: str | None = None
    limit_name: str | None = None
    rate_limits: RateLimitsWire | None = None
    credits: CreditsWire | None = None


class MetadataEvent(_Event):
    type: Literal["codex.response.metadata", "response.metadata"] = "codex.response.metadata"
    headers: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class TimingEvent(_Event):
    type: Literal["responsesapi.websocket_timing"] = "responsesapi.websocket_timing"
    timing_metrics: dict[str, Any] = Field(default_factory=dict)


class OutputTextDone(_Event):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    item_id: str | None = None
    text: str = ""


class FunctionCallArgumentsDone(_Event):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    item_id: str | None = None
    arguments: str = ""


_KNOWN_PASSTHROUGH = (
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.annotation.added",
    "response.refusal.done",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
    "response.reasoning_text.done",
    "response.custom_tool_call_input.delta",
    "response.custom_tool_call_input.done",
    "response.code_interpreter_call.in_progress",
    "response.code_interpreter_call.interpreting",
    "response.code_interpreter_call.completed",
    "response.code_interpreter_call_code.delta",
    "response.code_interpreter_call_code.done",
    "response.file_search_call.in_progress",
    "response.file_search_call.searching",
    "response.file_search_call.completed",
)


class PassThroughEvent(_Event):
    """Known event types that carry nothing this client acts on (kept typed, not raw)."""

    type: str
    item_id: str | None = None


class UnknownEvent(BaseModel):
    """An event this client does not model (or could not validate); never an error.

    ``invalid`` marks a *known* type whose payload did not fit: the agent says so when such an
    event could have carried text (issue 15 item 6: no silent text loss)."""

    type: str
    raw: dict[str, Any] = Field(default_factory=dict)
    invalid: bool = False


_EVENT_MODELS: dict[str, type[BaseModel]] = {
    "response.created": ResponseCreated,
    "response.in_progress": ResponseInProgress,
    "response.queued": ResponseInProgress,
    "response.output_item.added": OutputItemAdded,
    "response.output_item.done": OutputItemDone,
    "response.output_text.delta": OutputTextDelta,
    "response.refusal.delta": RefusalDelta,
    "response.reasoning_summary_part.added": ReasoningSummaryPartAdded,
    "response.reasoning_summary_text.delta": ReasoningSummaryTextDelta,
    "response.reasoning_text.delta": ReasoningTextDelta,
    "response.function_call_arguments.delta": FunctionCallArgumentsDelta,
    "response.web_search_call.in_progress": WebSearchProgress,
    "response.web_search_call.searching": WebSearchProgress,
    "response.web_search_call.completed": WebSearchProgress,
    "response.completed": ResponseCompleted,
    "response.done": ResponseDone,
    "response.failed": ResponseFailed,
    "response.incomplete": ResponseIncomplete,
    "error": ErrorEvent,
    "codex.rate_limits": CodexRateLimitsEvent,
    "codex.response.metadata": MetadataEvent,
    "response.metadata": MetadataEvent,
    "responsesapi.websocket_timing": TimingEvent,
    "response.output_text.done": OutputTextDone,
    "response.function_call_arguments.done": FunctionCallArgumentsDone,
    **{t: PassThroughEvent for t in _KNOWN_PASSTHROUGH},
}

# Tag -> pydantic model for the union; several wire types may share one model.
_TAG_OF_TYPE = {t: m.__name__ for t, m in _EVENT_MODELS.items()}


def _event_tag(value: Any) -> str | None:
    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    # None -> union_tag_not_found -> handled as unknown (a non-string "type" too: it is unhashable)
    return _TAG_OF_TYPE.get(tag) if isinstance(tag, str) else None


# Built at run time from the model table: no static alias can spell it (hence ``Any``).
ServerEvent: Any = Annotated[
    Union[tuple(Annotated[m, Tag(m.__name__)] for m in dict.fromkeys(_EVENT_MODELS.values()))],
    Discriminator(_event_tag),
]

EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(ServerEvent)

AnyServerEvent = Union[
    ResponseCreated,
    ResponseInProgress,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    RefusalDelta,
    ReasoningSummaryPartAdded,
    ReasoningSummaryTextDelta,
    ReasoningTextDelta,
    FunctionCallArgumentsDelta,
    WebSearchProgress,
    ResponseCompleted,
    ResponseDone,
    ResponseFailed,
    ResponseIncomplete,
    ErrorEvent,
    CodexRateLimitsEvent,
    MetadataEvent,
    TimingEvent,
    OutputTextDone,
    FunctionCallArgumentsDone,
    PassThroughEvent,
    UnknownEvent,
]
