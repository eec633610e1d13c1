"""The agent-event vocabulary: the one typed stream every frontend consumes.

Layers below the agent (protocol, transport, session) speak wire types; the agent turns
them into these events. Cell renderers, the side-panel bridge, the realtime widget and the
plain Python API all read this vocabulary and nothing else.

Every event is a frozen dataclass with a ``type`` string and a ``to_dict()`` that gives a
JSON-safe dict (used by the comm bridge and persisted history). ``event_from_dict`` is the
inverse.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

# Value types live in the protocol layer; re-exported here so frontends need one import.
from .protocol.types import Credits as Credits
from .protocol.types import Phase as Phase
from .protocol.types import RateLimitSnapshot as RateLimitSnapshot
from .protocol.types import RateLimitWindow as RateLimitWindow
from .protocol.types import Usage as Usage
from .protocol.types import snapshot_from_dict as snapshot_from_dict


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """Base of all agent events."""

    type: ClassVar[str] = "event"
    #: Id of the turn this event belongs to ("" for session-level events).
    turn_id: str = field(default="", kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        data = {"type": self.type}
        for f in dataclasses.fields(self):
            data[f.name] = jsonable(getattr(self, f.name))
        return data


def jsonable(value: Any) -> Any:
    """``value`` with dataclasses (events, snapshots) as dicts and tuples as lists: JSON-safe."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


# --- turn lifecycle -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TurnStarted(AgentEvent):
    type: ClassVar[str] = "turn_started"
    prompt: str = ""
    model: str = ""
    source: str = "python"  # "cell", "panel", "python", "voice"
    #: A short label frontends show instead of a generated prompt (``%agent fix``); "" shows the prompt.
    title: str = ""


@dataclass(frozen=True, slots=True)
class TurnDone(AgentEvent):
    type: ClassVar[str] = "turn_done"
    #: "completed", "failed", "interrupted"
    status: str = "completed"
    text: str = ""


# --- model output ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta(AgentEvent):
    type: ClassVar[str] = "text_delta"
    delta: str = ""
    item_id: str = ""
    phase: Phase = None


@dataclass(frozen=True, slots=True)
class MessageDone(AgentEvent):
    type: ClassVar[str] = "message_done"
    text: str = ""
    item_id: str = ""
    phase: Phase = None


@dataclass(frozen=True, slots=True)
class ReasoningDelta(AgentEvent):
    type: ClassVar[str] = "reasoning_delta"
    delta: str = ""
    item_id: str = ""
    #: "summary" for reasoning summaries, "content" for raw reasoning text.
    kind: Literal["summary", "content"] = "summary"
    index: int = 0


@dataclass(frozen=True, slots=True)
class WebSearch(AgentEvent):
    """A hosted web-search call: ``in_progress`` when it starts, ``completed`` when done."""

    type: ClassVar[str] = "web_search"
    item_id: str = ""
    status: str = "in_progress"
    #: "search", "open_page", "find_in_page", "other" or None while in progress.
    action: str | None = None
    #: Display detail per spec §9: the query, the url, or "'<pattern>' in <url>".
    detail: str = ""
    query: str | None = None
    url: str | None = None
    pattern: str | None = None

    @property
    def display_text(self) -> str:
        if self.status != "completed":
            return "Searching the web"
        return f"Searched {self.detail}".rstrip()


@dataclass(frozen=True, slots=True)
class ToolCall(AgentEvent):
    type: ClassVar[str] = "tool_call"
    call_id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ToolResult(AgentEvent):
    type: ClassVar[str] = "tool_result"
    call_id: str = ""
    name: str = ""
    output: str = ""
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class ApprovalRequest(AgentEvent):
    type: ClassVar[str] = "approval_request"
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    #: What the call will do, for the approval card ("" when the tool has no preview): the code it
    #: runs or a unified diff of the change it makes to a cell.
    preview: str = ""
    #: "code" | "diff" | "" (no preview: show the arguments).
    preview_kind: str = ""
    #: The previewed code's language ("python", "markdown"; "diff" for a diff).
    preview_language: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalResolved(AgentEvent):
    type: ClassVar[str] = "approval_resolved"
    call_id: str = ""
    #: "approve", "approve_always", "deny", "cancelled"
    decision: str = "deny"


# --- session state --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimits(AgentEvent):
    type: ClassVar[str] = "rate_limits"
    snapshot: RateLimitSnapshot | None = None


@dataclass(frozen=True, slots=True)
class ServerModel(AgentEvent):
    type: ClassVar[str] = "server_model"
    model: str = ""


@dataclass(frozen=True, slots=True)
class RerouteWarning(AgentEvent):
    type: ClassVar[str] = "reroute_warning"
    from_model: str = ""
    to_model: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Retry(AgentEvent):
    """A retryable failure; the partial output of the failed attempt is discarded."""

    type: ClassVar[str] = "retry"
    attempt: int = 1
    max_attempts: int = 1
    delay: float = 0.0
    reason: str = ""

    @property
    def display_text(self) -> str:
        return f"Reconnecting... {self.attempt}/{self.max_attempts}"


@dataclass(frozen=True, slots=True)
class Error(AgentEvent):
    type: ClassVar[str] = "error"
    message: str = ""
    retryable: bool = False
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Notice(AgentEvent):
    """Information for the user (e.g. which model answered, transport fallback)."""

    type: ClassVar[str] = "notice"
    level: Literal["info", "warning"] = "info"
    message: str = ""


@dataclass(frozen=True, slots=True)
class UsageEvent(AgentEvent):
    type: ClassVar[str] = "usage"
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True)
class ContextGauge(AgentEvent):
    """How full the model's context is: the last request's input tokens against the window (issue 14).

    ``window`` is None when no source knows it (``source`` says so); ``totals`` are the session's.
    """

    type: ClassVar[str] = "context"
    input_tokens: int = 0
    window: int | None = None
    source: str = ""
    totals: Usage = field(default_factory=Usage)

    @property
    def used_percent(self) -> float | None:
        return 100.0 * self.input_tokens / self.window if self.window else None


@dataclass(frozen=True, slots=True)
class Compacted(AgentEvent):
    """Older history was replaced by a summary (``%agent compact``, the threshold, or recovery)."""

    type: ClassVar[str] = "compacted"
    reason: str = ""
    items_before: int = 0
    items_after: int = 0
    input_tokens_before: int = 0
    method: str = ""


@dataclass(frozen=True, slots=True)
class Telemetry(AgentEvent):
    """Per-turn runtime summary (spec §10)."""

    type: ClassVar[str] = "telemetry"
    summary: dict[str, Any] = field(default_factory=dict)
    line: str = ""


@dataclass(frozen=True, slots=True)
class RealtimeEvent(AgentEvent):
    """Lifecycle and inbound events of a realtime voice conversation."""

    type: ClassVar[str] = "realtime"
    #: "started", "event", "closed", "transcript", "error"
    kind: str = "event"
    payload: dict[str, Any] = field(default_factory=dict)


EVENT_TYPES: dict[str, type[AgentEvent]] = {
    cls.type: cls
    for cls in (
        TurnStarted,
        TurnDone,
        TextDelta,
        MessageDone,
        ReasoningDelta,
        WebSearch,
        ToolCall,
        ToolResult,
        ApprovalRequest,
        ApprovalResolved,
        RateLimits,
        ServerModel,
        RerouteWarning,
        Retry,
        Error,
        Notice,
        UsageEvent,
        ContextGauge,
        Compacted,
        Telemetry,
        RealtimeEvent,
    )
}


def event_from_dict(data: dict[str, Any]) -> AgentEvent:
    """Rebuild an event from ``to_dict()`` output (nested snapshots included)."""
    cls = EVENT_TYPES[data["type"]]
    kwargs = {k: v for k, v in data.items() if k != "type"}
    if cls is RateLimits and isinstance(kwargs.get("snapshot"), dict):
        kwargs["snapshot"] = snapshot_from_dict(kwargs["snapshot"])
    if cls is UsageEvent and isinstance(kwargs.get("usage"), dict):
        kwargs["usage"] = Usage(**kwargs["usage"])
    if cls is ContextGauge and isinstance(kwargs.get("totals"), dict):
        kwargs["totals"] = Usage(**kwargs["totals"])
    return cls(**kwargs)
