"""Typed wire events and items of the OpenAI Responses API (SSE and WebSocket share them).

One pydantic discriminated union, validated straight from the JSON bytes of each event
(``parse_event``). Unknown event types and unknown item types never fail: they become
``UnknownEvent`` / ``OtherItem`` and keep their raw payload for replay. Items keep extra
fields (``extra="allow"``) so that history replays what the server sent.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Union, cast

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError, field_validator

from .errors import ProtocolError

# --- items ------------------------------------------------------------------------------


class _Item(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None

    def to_input(self, *, keep_id: bool = False) -> dict[str, Any]:
        """The item as an input item for a later request (ids only kept on Azure)."""
        data = self.model_dump(exclude_none=True, by_alias=True)
        if not keep_id:
            data.pop("id", None)
        return data


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None
    refusal: str | None = None


class MessageItem(_Item):
    type: Literal["message"] = "message"
    role: str = "assistant"
    content: list[ContentPart] | str = Field(default_factory=list)
    phase: Literal["commentary", "final_answer"] | None = None
    status: str | None = None

    @field_validator("phase", mode="before")
    @classmethod
    def _known_phase(cls, value: Any) -> Any:
        """An unknown phase (spec §8 names only two) must not drop the whole message: treat as absent."""
        return value if value in ("commentary", "final_answer") else None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or p.refusal or "" for p in self.content)


class SummaryPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = "summary_text"
    text: str = ""


class ReasoningItem(_Item):
    type: Literal["reasoning"] = "reasoning"
    summary: list[SummaryPart] = Field(default_factory=list)
    content: list[ContentPart] | None = None
    encrypted_content: str | None = None
    status: str | None = None


class FunctionCallItem(_Item):
    type: Literal["function_call"] = "function_call"
    call_id: str
    name: str
    arguments: str = ""
    status: str | None = None


class FunctionCallOutputItem(_Item):
    type: Literal["function_call_output"] = "function_call_output"
    call_id: str
    output: Any = ""


class CustomToolCallItem(_Item):
    type: Literal["custom_tool_call"] = "custom_tool_call"
    call_id: str
    name: str
    input: str = ""


class CustomToolCallOutputItem(_Item):
    type: Literal["custom_tool_call_output"] = "custom_tool_call_output"
    call_id: str
    output: Any = ""


class LocalShellCallItem(_Item):
    type: Literal["local_shell_call"] = "local_shell_call"
    call_id: str | None = None
    status: str | None = None
    action: dict[str, Any] | None = None


class SearchAction(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["search"] = "search"
    query: str | None = None
    queries: list[str] | None = None


class OpenPageAction(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["open_page"] = "open_page"
    url: str | None = None


class FindInPageAction(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["find_in_page"] = "find_in_page"
    url: str | None = None
    pattern: str | None = None


class OtherAction(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = "other"


_ACTION_TAGS = frozenset({"search", "open_page", "find_in_page"})


def _action_tag(value: Any) -> str:
    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return tag if isinstance(tag, str) and tag in _ACTION_TAGS else "other"  # str check: lists are unhashable


WebSearchAction = Annotated[
    Union[
        Annotated[SearchAction, Tag("search")],
        Annotated[OpenPageAction, Tag("open_page")],
        Annotated[FindInPageAction, Tag("find_in_page")],
        Annotated[OtherAction, Tag("other")],
    ],
    Discriminator(_action_tag),
]


class WebSearchCallItem(_Item):
    type: Literal["web_search_call"] = "web_search_call"
    status: str | None = None
    action: WebSearchAction | None = None

    def display_detail(self) -> tuple[str, str, dict[str, str | None]]:
        """(action type, display detail, fields) per spec §9 display rules."""
        action = self.action
        if isinstance(action, SearchAction):
            if action.query:
                detail = action.query
            elif action.queries:
                detail = action.queries[0] + (" ..." if len(action.queries) > 1 else "")
            else:
                detail = ""
            return "search", detail, {"query": action.query or (action.queries[0] if action.queries else None)}
        if isinstance(action, OpenPageAction):
            return "open_page", action.url or "", {"url": action.url}
        if isinstance(action, FindInPageAction):
            if action.pattern and action.url:
                detail = f"'{action.pattern}' in {action.url}"
            elif action.pattern:
                detail = f"'{action.pattern}'"
            else:
                detail = action.url or ""
            return "find_in_page", detail, {"url": action.url, "pattern": action.pattern}
        return "other", "", {}


class CompactionItem(_Item):
    type: Literal["compaction", "compaction_summary"] = "compaction"


class OtherItem(_Item):
    """Any item type this client does not model; kept verbatim for replay."""

    type: str


_ITEM_TAGS = frozenset(
    {
        "message",
        "reasoning",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "local_shell_call",
        "web_search_call",
    }
)


def _item_tag(value: Any) -> str:
    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(tag, str):  # a malformed (e.g. list or dict) type: an opaque item, never a TypeError
        return "other"
    if tag in _ITEM_TAGS:
        return tag
    if tag in ("compaction", "compaction_summary"):
        return "compaction"
    return "other"


OutputItem = Annotated[
    Union[
        Annotated[MessageItem, Tag("message")],
        Annotated[ReasoningItem, Tag("reasoning")],
        Annotated[FunctionCallItem, Tag("function_call")],
        Annotated[FunctionCallOutputItem, Tag("function_call_output")],
        Annotated[CustomToolCallItem, Tag("custom_tool_call")],
        Annotated[CustomToolCallOutputItem, Tag("custom_tool_call_output")],
        Annotated[LocalShellCallItem, Tag("local_shell_call")],
        Annotated[WebSearchCallItem, Tag("web_search_call")],
        Annotated[CompactionItem, Tag("compaction")],
        Annotated[OtherItem, Tag("other")],
    ],
    Discriminator(_item_tag),
]

ITEM_ADAPTER: TypeAdapter[Any] = TypeAdapter(OutputItem)


def parse_item(data: dict[str, Any]) -> Any | None:
    """Parse one item dict; ``None`` when it does not fit its declared type."""
    try:
        return ITEM_ADAPTER.validate_python(data)
    except ValidationError:
        return None


# --- response object (only what the client reads) -----------------------------------------


class InputTokensDetails(BaseModel):
    cached_tokens: int | None = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int | None = 0


class UsageInfo(BaseModel):
    input_tokens: int = 0
    input_tokens_details: InputTokensDetails | None = None
    output_tokens: int = 0
    output_tokens_details: OutputTokensDetails | None = None
    total_tokens: int = 0


class ResponseError(BaseModel):
    code: str | None = None
    message: str | None = None
    type: str | None = None


class IncompleteDetails(BaseModel):
    reason: str | None = None


class ResponseInfo(BaseModel):
    id: str | None = None
    model: str | None = None
    status: str | None = None
    usage: UsageInfo | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    headers: dict[str, Any] | None = None


class CompletedResponse(ResponseInfo):
    id: str  # required: a completed response without an id is malformed


# --- events ---------------------------------------------------------------------------------


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
    """An event this client does not model (or could not validate); never an error."""

    type: str
    raw: dict[str, Any] = Field(default_factory=dict)


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


# Fast path: servers put ``type`` first, so the model is known before parsing and its own
# validator runs on the bytes (half the cost of the union). Anything else takes the union.
_TYPE_FIRST = re.compile(rb'\{\s*"type"\s*:\s*"([^"\\]*)"')
_VALIDATOR_OF_TYPE = {t.encode(): (t, m.__pydantic_validator__) for t, m in _EVENT_MODELS.items()}
_UNION_VALIDATOR = EVENT_ADAPTER.validator


def parse_event(data: bytes | str) -> AnyServerEvent | None:
    """Validate one event's JSON. ``None`` for unparseable data (skipped, per spec §3.3).

    Unknown types, and known types whose payload does not fit, become ``UnknownEvent``;
    a malformed ``response.completed`` raises ``ProtocolError`` (spec §3.4).
    """
    if isinstance(data, bytes):
        head = _TYPE_FIRST.match(data)
        if head is not None:
            known = _VALIDATOR_OF_TYPE.get(head.group(1))
            if known is not None:
                try:
                    event = known[1].validate_json(data)
                except ValidationError:
                    pass
                else:
                    if event.type == known[0]:  # a repeated "type" key: the last one wins, as in the union
                        return cast(AnyServerEvent, event)
    try:
        return cast(AnyServerEvent, _UNION_VALIDATOR.validate_json(data))
    except ValidationError as exc:
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurd nesting
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            return None
        if raw["type"] == "response.completed":
            raise ProtocolError(f"failed to parse ResponseCompleted: {_short(exc)}") from None
        return UnknownEvent(type=raw["type"], raw=raw)


def parse_event_dict(raw: dict[str, Any]) -> AnyServerEvent | None:
    """Like ``parse_event`` for an already-decoded dict (WebSocket frames decoded once)."""
    try:
        return cast(AnyServerEvent, EVENT_ADAPTER.validate_python(raw))
    except ValidationError as exc:
        if not isinstance(raw.get("type"), str):
            return None
        if raw["type"] == "response.completed":
            raise ProtocolError(f"failed to parse ResponseCompleted: {_short(exc)}") from None
        return UnknownEvent(type=raw["type"], raw=raw)


def _short(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    loc = ".".join(str(p) for p in errors[0]["loc"])
    return f"{loc}: {errors[0]['msg']}" if loc else errors[0]["msg"]


def event_server_model(event: Any) -> str | None:
    """Server model named inside an event (spec §4): ``response.headers`` first, then ``headers``."""
    if not _may_name_model(type(event)):
        return None
    headers = None
    response = getattr(event, "response", None)
    if response is not None and getattr(response, "headers", None):
        headers = response.headers
    elif getattr(event, "headers", None):
        headers = event.headers
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() in ("openai-model", "x-openai-model"):
            if isinstance(value, list):
                value = value[0] if value else None
            if isinstance(value, str) and value:
                return value
    return None


_MODEL_CARRIERS: dict[type, bool] = {}


def _may_name_model(cls: type) -> bool:
    """Whether events of ``cls`` have a ``response`` or ``headers`` field (cached per class)."""
    known = _MODEL_CARRIERS.get(cls)
    if known is None:
        fields = getattr(cls, "model_fields", None)
        known = _MODEL_CARRIERS[cls] = fields is None or "response" in fields or "headers" in fields
    return known
