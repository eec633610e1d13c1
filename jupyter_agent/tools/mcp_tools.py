"""MCP tools as ``FunctionTool``s: their names, schemas and results, in the Responses API's terms.

Pure conversions (no I/O): ``mcp__SERVER__TOOL`` names, ``inputSchema`` -> ``parameters`` (strict when
the schema fits), ``CallToolResult`` -> function_call_output (text, or input_text/input_image parts)
and the display text of such an output. ``McpTool`` sends its calls to its server (``mcp.py``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import MAX_TOOL_OUTPUT, FunctionTool, truncate
from .mcp_config import redact

if TYPE_CHECKING:
    from .mcp import McpServer

ToolOutput = str | list[dict[str, Any]]
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")


def tool_name(server: str, tool: str) -> str:
    """The name the model sees: ``mcp__SERVER__TOOL`` (Responses names: ``[A-Za-z0-9_-]{1,64}``)."""
    name = f"mcp__{server}__{_TOOL_NAME.sub('_', tool)}"
    if len(name) <= 64:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:55]}_{digest}"


# --- schemas --------------------------------------------------------------------------------

_STRICT_KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "description", "anyOf"}
)


def responses_parameters(schema: dict[str, Any] | None) -> dict[str, Any]:
    """An MCP ``inputSchema`` as Responses ``parameters``: an object schema, with ``$schema`` dropped."""
    params = dict(schema or {})
    params.pop("$schema", None)
    if params.get("type") is None:
        params["type"] = "object"
    if params["type"] == "object":
        params.setdefault("properties", {})
    return params


def is_strict_compatible(schema: Any) -> bool:
    """Whether ``schema`` fits Structured Outputs' strict subset: every object closed, every property
    required, and only keywords strict mode accepts. Anything else is sent with ``strict: false``."""
    if isinstance(schema, list):
        return all(is_strict_compatible(s) for s in schema)
    if not isinstance(schema, dict):
        return False
    if set(schema) - _STRICT_KEYWORDS:
        return False
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is not False or set(schema.get("required", [])) != set(props):
            return False
        if not all(is_strict_compatible(p) for p in props.values()):
            return False
    if "items" in schema and not is_strict_compatible(schema["items"]):
        return False
    if "anyOf" in schema and not is_strict_compatible(schema["anyOf"]):
        return False
    return True


# --- results ----------------------------------------------------------------------------------


def convert_result(result: Any, secrets: list[str]) -> tuple[ToolOutput, bool]:
    """A ``CallToolResult`` as function_call_output ``output``: text, or input_text/input_image parts."""
    parts: list[dict[str, Any]] = []
    for block in result.content or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append({"type": "input_text", "text": block.text})
        elif kind == "image":
            parts.append({"type": "input_image", "image_url": f"data:{block.mime_type};base64,{block.data}"})
        elif kind == "audio":
            parts.append({"type": "input_text", "text": f"[audio content ({block.mime_type}) not shown]"})
        elif kind == "resource":
            res = block.resource
            text = getattr(res, "text", None)
            mime = getattr(res, "mime_type", None) or ""
            if text is not None:
                parts.append({"type": "input_text", "text": f"[resource {res.uri}]\n{text}"})
            elif mime.startswith("image/"):
                parts.append({"type": "input_image", "image_url": f"data:{mime};base64,{res.blob}"})
            else:
                parts.append({"type": "input_text", "text": f"[binary resource {res.uri} ({mime or 'unknown type'})]"})
        elif kind == "resource_link":
            parts.append({"type": "input_text", "text": f"[resource link {block.name}: {block.uri}]"})
    if not parts and result.structured_content is not None:
        parts.append({"type": "input_text", "text": json.dumps(result.structured_content, default=repr)})
    is_error = bool(result.is_error)
    for part in parts:
        if part["type"] == "input_text":
            part["text"] = redact(part["text"], secrets)
    if is_error:
        parts.insert(0, {"type": "input_text", "text": "The tool reported an error:"})
    if all(p["type"] == "input_text" for p in parts):
        return truncate("\n".join(p["text"] for p in parts) or "(no output)"), is_error
    budget = MAX_TOOL_OUTPUT
    for part in parts:
        if part["type"] == "input_text":
            part["text"] = truncate(part["text"], max(budget, 200))
            budget -= len(part["text"])
    return parts, is_error


def output_text(output: ToolOutput) -> str:
    """A tool output as display text (images named, not inlined)."""
    if isinstance(output, str):
        return output
    rows = []
    for part in output:
        if part.get("type") == "input_image":
            url = str(part.get("image_url", ""))
            mime = url[5 : url.find(";")] if url.startswith("data:") and ";" in url else "image"
            rows.append(f"[{mime} image, {len(url) * 3 // 4 // 1024 or 1} KB]")
        else:
            rows.append(str(part.get("text", "")))
    return "\n".join(rows)


# --- the tools ----------------------------------------------------------------------------------


@dataclass
class McpTool(FunctionTool):
    """A ``FunctionTool`` whose call goes to an MCP server; output may hold image parts."""

    server: McpServer | None = None
    remote_name: str = ""
    strict: bool = False

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "strict": self.strict}

    def parse_arguments(self, arguments: str) -> dict[str, Any]:
        data = json.loads(arguments or "{}")
        if not isinstance(data, dict):
            raise ValueError("tool arguments must be a JSON object")
        return data  # the server validates against its own schema

    async def invoke(self, arguments: str, *, run_sync: Any = None) -> tuple[Any, bool]:
        try:
            kwargs = self.parse_arguments(arguments)
        except ValueError as exc:
            return f"Invalid arguments for {self.name}: {exc}", True
        assert self.server is not None
        return await self.server.call(self.remote_name, kwargs)


def make_tools(server: McpServer) -> list[McpTool]:
    out = []
    for tool in server.tools:
        if not server.config.tool_enabled(tool.name):
            continue
        params = responses_parameters(tool.input_schema)

        async def unused(**_: Any) -> None:  # invoke() is overridden; fn is never called
            return None

        out.append(
            McpTool(
                name=tool_name(server.name, tool.name),
                description=(tool.description or tool.title or tool.name)[:1024],
                parameters=params,
                fn=unused,
                approval=server.config.approval_for(tool.name),
                server=server,
                remote_name=tool.name,
                strict=is_strict_compatible(params),
            )
        )
    return out
