"""Typed wire events and items of the OpenAI Responses API (SSE and WebSocket share them).

One pydantic discriminated union, validated straight from the JSON bytes of each event
(``parse_event``). Unknown event types and unknown item types never fail: they become
``UnknownEvent`` / ``OtherItem`` and keep their raw payload for replay. Items keep extra
fields (``extra="allow"``) so that history replays what the server sent.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

from pydantic import ValidationError

from .errors import ProtocolError
from .items import (
    ITEM_ADAPTER,
    REPLAYABLE_ITEM_TYPES,
    CompactionItem,
    CompletedResponse,
    ContentPart,
    CustomToolCallItem,
    CustomToolCallOutputItem,
    FindInPageAction,
    FunctionCallItem,
    FunctionCallOutputItem,
    IncompleteDetails,
    InputTokensDetails,
    LocalShellCallItem,
    MessageItem,
    OpenPageAction,
    OtherAction,
    OtherItem,
    OutputItem,
    OutputTokensDetails,
    ReasoningItem,
    ResponseError,
    ResponseInfo,
    SearchAction,
    SummaryPart,
    UsageInfo,
    WebSearchAction,
    WebSearchCallItem,
    parse_item,
)
from .stream_events import (
    _EVENT_MODELS,
    EVENT_ADAPTER,
    AnyServerEvent,
    CodexRateLimitsEvent,
    CreditsWire,
    ErrorBody,
    ErrorEvent,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    MetadataEvent,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    OutputTextDone,
    PassThroughEvent,
    RateLimitsWire,
    RateLimitWindowWire,
    ReasoningSummaryPartAdded,
    ReasoningSummaryTextDelta,
    ReasoningTextDelta,
    RefusalDelta,
    ResponseCompleted,
    ResponseCreated,
    ResponseDone,
    ResponseFailed,
    ResponseIncomplete,
    ResponseInProgress,
    ServerEvent,
    TimingEvent,
    UnknownEvent,
    WebSearchProgress,
)

# Items and events are defined in items.py and stream_events.py; importers keep using this module.
__all__ = [
    "ITEM_ADAPTER",
    "REPLAYABLE_ITEM_TYPES",
    "CompactionItem",
    "CompletedResponse",
    "ContentPart",
    "CustomToolCallItem",
    "CustomToolCallOutputItem",
    "FindInPageAction",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "IncompleteDetails",
    "InputTokensDetails",
    "LocalShellCallItem",
    "MessageItem",
    "OpenPageAction",
    "OtherAction",
    "OtherItem",
    "OutputItem",
    "OutputTokensDetails",
    "ReasoningItem",
    "ResponseError",
    "ResponseInfo",
    "SearchAction",
    "SummaryPart",
    "UsageInfo",
    "WebSearchAction",
    "WebSearchCallItem",
    "parse_item",
    "EVENT_ADAPTER",
    "AnyServerEvent",
    "CodexRateLimitsEvent",
    "CreditsWire",
    "ErrorBody",
    "ErrorEvent",
    "FunctionCallArgumentsDelta",
    "FunctionCallArgumentsDone",
    "MetadataEvent",
    "OutputItemAdded",
    "OutputItemDone",
    "OutputTextDelta",
    "OutputTextDone",
    "PassThroughEvent",
    "RateLimitsWire",
    "RateLimitWindowWire",
    "ReasoningSummaryPartAdded",
    "ReasoningSummaryTextDelta",
    "ReasoningTextDelta",
    "RefusalDelta",
    "ResponseCompleted",
    "ResponseCreated",
    "ResponseDone",
    "ResponseFailed",
    "ResponseIncomplete",
    "ResponseInProgress",
    "ServerEvent",
    "TimingEvent",
    "UnknownEvent",
    "WebSearchProgress",
    "parse_event",
    "parse_event_dict",
    "event_server_model",
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
        return _revalidate(raw, exc)


def parse_event_dict(raw: dict[str, Any]) -> AnyServerEvent | None:
    """Like ``parse_event`` for an already-decoded dict (WebSocket frames decoded once)."""
    try:
        return cast(AnyServerEvent, EVENT_ADAPTER.validate_python(raw))
    except ValidationError as exc:
        if not isinstance(raw.get("type"), str):
            return None
        return _revalidate(raw, exc)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _revalidate(raw: dict[str, Any], exc: ValidationError) -> AnyServerEvent:
    """A dict that failed validation: repair lone surrogates, else `UnknownEvent` (or raise, spec §3.4).

    JSON may escape half a UTF-16 pair (``"\\ud83d"``); Python decodes it to a lone surrogate that
    pydantic refuses. The text is kept with U+FFFD in its place instead of dropping the event.
    """
    repaired = _replace_surrogates(raw)
    if repaired is not raw:
        try:
            event: AnyServerEvent = EVENT_ADAPTER.validate_python(repaired)
            return event
        except ValidationError as again:
            exc, raw = again, repaired
    if raw["type"] == "response.completed":
        raise ProtocolError(f"failed to parse ResponseCompleted: {_short(exc)}") from None
    return UnknownEvent(type=raw["type"], raw=raw, invalid=raw["type"] in _EVENT_MODELS)


def _replace_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate replaced by U+FFFD; the same object when there is none."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if isinstance(value, dict):
        out = {k: _replace_surrogates(v) for k, v in value.items()}
        return value if all(out[k] is value[k] for k in value) else out
    if isinstance(value, list):
        items = [_replace_surrogates(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


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
