"""Output items and the response object of the Responses API (SSE and WebSocket share them).

Unknown item types never fail: they become ``OtherItem`` and keep their raw payload for replay.
Items keep extra fields (``extra="allow"``) so that history replays what the server sent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError, field_validator


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
    """Any item type this client does not model; kept verbatim, and replayed only when the API
    accepts that type as input (``replayable``): an unknown type sent back would make every later
    request fail with 400 (issue 15 item 9, found by validating against ``CreateResponse``)."""

    type: str

    @property
    def replayable(self) -> bool:
        return self.type in REPLAYABLE_ITEM_TYPES

    def to_input(self, *, keep_id: bool = False) -> dict[str, Any]:
        """Verbatim, nulls included (e.g. ``outputs: null`` is required on ``code_interpreter_call``)."""
        data = self.model_dump(by_alias=True)
        if not keep_id:
            data.pop("id", None)
        return data


#: Output item types OpenAI's published ``Item`` union (API 2.3.0) accepts back as input.
REPLAYABLE_ITEM_TYPES = frozenset(
    {
        "file_search_call",
        "computer_call",
        "computer_call_output",
        "tool_search_call",
        "tool_search_output",
        "additional_tools",
        "compaction",
        "image_generation_call",
        "code_interpreter_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
    }
)


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
