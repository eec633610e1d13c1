"""Panel <-> kernel comm protocol: typed message models, validation and delta coalescing."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from . import events as ev

TARGET_NAME = "jupyter_agent"
PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 256 * 1024
MAX_TEXT_BYTES = 100 * 1024
MAX_ID_CHARS = 200


# --- panel -> kernel ------------------------------------------------------------------------


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Hello(_Msg):
    """First message (the comm's open data): the panel's protocol version.

    ``resume`` (sent when the panel reconnects after a kernel restart): continue this notebook's
    most recent saved conversation when the new kernel's agent has none yet.
    ``notebook``: the notebook's path as the Jupyter server knows it. A kernel that cannot see its
    notebook (Kernel Gateway) keys saved conversations with it; one that can keeps its own.
    """

    type: Literal["hello"]
    version: int
    resume: bool = False
    notebook: str | None = Field(default=None, min_length=1, max_length=4096)
    #: ``"notebook"``: the panel answers ``notebook_request`` with the document (``notebook_bridge``).
    features: list[str] = Field(default_factory=list, max_length=20)


class Send(_Msg):
    """Start a turn with ``text`` as the user's prompt; ``id`` is the panel's message id."""

    type: Literal["send"]
    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    text: str = Field(min_length=1)

    @field_validator("text")
    @classmethod
    def _text_size(cls, value: str) -> str:
        if len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
            raise ValueError(f"text is longer than {MAX_TEXT_BYTES // 1024} kB")
        if not value.strip():
            raise ValueError("text is empty")
        return value


class Stop(_Msg):
    """Cancel the running turn."""

    type: Literal["stop"]


class Approval(_Msg):
    """Answer a pending tool approval."""

    type: Literal["approval"]
    call_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    decision: Literal["approve", "approve_always", "deny"]


class Fix(_Msg):
    """Explain the error shown by document cell ``cell_id`` and propose its fix (a panel turn)."""

    type: Literal["fix"]
    cell_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)


class HistoryRequest(_Msg):
    """Ask for the conversation so far."""

    type: Literal["history"]


class NotebookSnapshot(_Msg):
    """The panel's answer to ``notebook_request``: the document's cells, nbformat-shaped, reduced."""

    type: Literal["notebook"]
    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    cells: list[dict[str, Any]] = Field(default_factory=list, max_length=20_000)
    #: For an edit action: what happened (e.g. the new cell's id and index), or why it failed.
    result: dict[str, Any] | None = None
    error: str | None = Field(default=None, max_length=4096)


PanelMessage = Annotated[
    Union[Hello, Send, Stop, Approval, HistoryRequest, NotebookSnapshot, Fix], Field(discriminator="type")
]
_panel_adapter: TypeAdapter[PanelMessage] = TypeAdapter(PanelMessage)


# --- kernel -> panel ------------------------------------------------------------------------


class StateMessage(_Msg):
    type: Literal["state"] = "state"
    model: str
    provider: str
    transport: str
    rate_limits: dict[str, dict[str, Any]]
    busy: bool
    version: int = PROTOCOL_VERSION


class TranscriptEntry(_Msg):
    role: str
    text: str
    phase: str | None = None


class HistoryMessage(_Msg):
    type: Literal["history"] = "history"
    messages: list[TranscriptEntry]


class EventMessage(_Msg):
    type: Literal["event"] = "event"
    event: dict[str, Any]

    @field_validator("event")
    @classmethod
    def _known_event(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") not in ev.EVENT_TYPES:
            raise ValueError(f"unknown event type {value.get('type')!r}")
        return value


class ErrorMessage(_Msg):
    type: Literal["error"] = "error"
    message: str
    request_type: str | None = None


class NotebookRequest(_Msg):
    """Ask the panel for the notebook document (``read_notebook``); answered by ``notebook``."""

    type: Literal["notebook_request"] = "notebook_request"
    id: str
    #: ``read`` the cells, or change the document (one Undo step each; ``notebook_bridge.py``).
    action: Literal["read", "insert", "edit", "delete", "run", "set_outputs"] = "read"
    args: dict[str, Any] = Field(default_factory=dict)


KernelMessage = Annotated[
    Union[StateMessage, HistoryMessage, EventMessage, ErrorMessage, NotebookRequest], Field(discriminator="type")
]
_kernel_adapter: TypeAdapter[KernelMessage] = TypeAdapter(KernelMessage)


class MessageError(ValueError):
    """A panel message that is malformed or too large; ``request_type`` when it could be read."""

    def __init__(self, message: str, request_type: str | None) -> None:
        super().__init__(message)
        self.request_type = request_type


def parse_panel_message(data: Any) -> PanelMessage:
    """Validate one panel->kernel message (size first, then shape)."""
    request_type = data.get("type") if isinstance(data, dict) and isinstance(data.get("type"), str) else None
    try:
        size = len(json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    except (TypeError, ValueError) as exc:
        raise MessageError(f"message is not JSON: {exc}", request_type) from None
    if size > MAX_MESSAGE_BYTES:
        raise MessageError(f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES}", request_type)
    try:
        return _panel_adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "message"
        raise MessageError(f"invalid {request_type or 'message'}: {where}: {first.get('msg')}", request_type) from None


def validate_kernel_message(data: Any) -> dict[str, Any]:
    """Validate one kernel->panel message and return its JSON form."""
    return _kernel_adapter.dump_python(_kernel_adapter.validate_python(data), mode="json")


# --- event coalescing ------------------------------------------------------------------------


def coalesce(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge consecutive text/reasoning deltas of the same item (order and text preserved)."""
    out: list[dict[str, Any]] = []
    for event in events:
        prev = out[-1] if out else None
        if (
            prev is not None
            and event["type"] in ("text_delta", "reasoning_delta")
            and prev["type"] == event["type"]
            and all(prev.get(k) == event.get(k) for k in ("turn_id", "item_id", "phase", "kind", "index"))
        ):
            out[-1] = {**prev, "delta": prev["delta"] + event["delta"]}
        else:
            out.append(event)
    return out
