"""Function tools: a Python callable plus its JSON schema and an approval policy.

``FunctionTool.from_callable(fn)`` derives the parameters schema from type hints with pydantic
and validates the model's arguments before calling. Tool errors are returned to the model as
text, never raised into the user's face. Every tool is sent with an explicit ``strict`` flag,
decided per tool (``tools/strict.py``, issue 15 item 7).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .strict import NotStrictCompatible, drop_added_nulls, strict_schema

ApprovalPolicy = Literal["ask", "auto", "never"]
MAX_TOOL_OUTPUT = 20_000
#: A preview longer than this is cut (head and tail) before it goes to a frontend.
MAX_PREVIEW_CHARS = 12_000


@dataclass(frozen=True)
class ApprovalPreview:
    """What an approval card shows of a call: the code it runs (``code``) or the change it makes (``diff``)."""

    kind: Literal["code", "diff"]
    text: str
    #: The code's language (``python``, ``markdown``); ``diff`` for a unified diff.
    language: str = ""


@dataclass
class FunctionTool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any]
    approval: ApprovalPolicy = "auto"
    args_model: type[BaseModel] | None = None
    #: Run on the kernel's main thread (code execution) rather than a worker thread.
    needs_kernel_thread: bool = False
    #: Executes arbitrary code (``%agent approve POLICY`` without a tool name targets these).
    runs_code: bool = False
    #: ``None``: strict whenever the schema allows it; ``True`` insists (error if it cannot be);
    #: ``False`` sends the schema as written with ``strict: false``.
    strict: bool | None = None
    #: Called with the parsed arguments before the user is asked: what the approval card shows. It may
    #: block (e.g. read the document over the comm); it runs on a worker thread.
    previewer: Callable[..., ApprovalPreview | None] | None = field(default=None, repr=False, compare=False)
    #: (strict flag, parameters) as sent on the wire, decided once.
    _wire: tuple[bool, dict[str, Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.strict is False:
            self._wire = (False, self.parameters)
            return
        try:
            self._wire = (True, strict_schema(self.parameters))
        except NotStrictCompatible as exc:
            if self.strict:
                raise ValueError(f"tool {self.name!r} cannot be strict: {exc}") from None
            self._wire = (False, self.parameters)

    @property
    def is_strict(self) -> bool:
        """Whether the tool goes out with ``strict: true``."""
        return self._wire[0]

    @classmethod
    def from_callable(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        approval: ApprovalPolicy = "auto",
        strict: bool | None = None,
    ) -> FunctionTool:
        sig = inspect.signature(fn)
        hints = inspect.get_annotations(fn, eval_str=True)
        fields: dict[str, Any] = {}
        for pname, param in sig.parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            annotation = hints.get(pname, Any)
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[pname] = (annotation, default)
        model = create_model(f"{fn.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)
        schema = model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        doc = inspect.getdoc(fn) or ""
        return cls(
            name=name or fn.__name__,
            description=description or doc.split("\n\n")[0] or fn.__name__,
            parameters=schema,
            fn=fn,
            approval=approval,
            args_model=model,
            strict=strict,
        )

    def spec(self) -> dict[str, Any]:
        strict, parameters = self._wire
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": parameters,
            "strict": strict,
        }

    def parse_arguments(self, arguments: str) -> dict[str, Any]:
        data = json.loads(arguments or "{}")
        if not isinstance(data, dict):
            raise ValueError("tool arguments must be a JSON object")
        if self.is_strict:
            data = drop_added_nulls(data, self.parameters)  # null for an optional argument = its default
        if self.args_model is not None:
            parsed = self.args_model.model_validate(data)
            data = {name: getattr(parsed, name) for name in type(parsed).model_fields}  # keeps pydantic values
        return data

    async def preview(self, arguments: str) -> ApprovalPreview | None:
        """What the approval card shows for ``arguments`` (``None``: the arguments themselves)."""
        if self.previewer is None:
            return None
        kwargs = self.parse_arguments(arguments)
        found = await asyncio.to_thread(self.previewer, **kwargs)
        if found is None:
            return None
        return ApprovalPreview(found.kind, truncate(found.text, MAX_PREVIEW_CHARS), found.language)

    async def invoke(
        self, arguments: str, *, run_sync: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None
    ) -> tuple[Any, bool]:
        """Run the tool; returns ``(output, is_error)``: text, or input_text/input_image parts."""
        try:
            kwargs = self.parse_arguments(arguments)
        except (ValueError, ValidationError) as exc:
            return f"Invalid arguments for {self.name}: {exc}", True
        try:
            if inspect.iscoroutinefunction(self.fn):
                result = await self.fn(**kwargs)
            elif run_sync is not None:
                result = await run_sync(lambda: self.fn(**kwargs))
            else:
                result = await asyncio.to_thread(self.fn, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - tool errors go back to the model
            tb = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return truncate(f"Error: {tb}"), True
        if is_parts(result):  # input_text/input_image parts (e.g. run_cell's plots) go out as a list
            return [{**p, "text": truncate(p["text"])} if p["type"] == "input_text" else p for p in result], False
        return truncate(result if isinstance(result, str) else _to_text(result)), False


def is_parts(value: Any) -> bool:
    """A function_call_output ``output`` given as input_text/input_image parts (spec: FunctionCallOutputItemParam)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(p, dict) and p.get("type") in ("input_text", "input_image") for p in value)
    )


def _to_text(value: Any) -> str:
    if value is None:
        return ""
    try:
        return json.dumps(value, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def truncate(text: str, limit: int = MAX_TOOL_OUTPUT) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit * 2 // 3]
    tail = text[-limit // 3 :]
    return f"{head}\n... [{len(text) - len(head) - len(tail)} characters truncated] ...\n{tail}"


def as_tool(obj: Any) -> FunctionTool:
    if isinstance(obj, FunctionTool):
        return obj
    if callable(obj):
        return FunctionTool.from_callable(obj)
    raise TypeError(f"not a tool: {obj!r}")
