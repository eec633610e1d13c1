"""Strict function-tool schemas (issue 15 item 7).

A function tool sent without ``strict`` is made strict by the Responses API itself: every property
becomes required, so the model fills optional arguments it should have left out. This client
always sends ``strict`` explicitly, decided per tool:

* ``true`` when the schema can be made strict-compatible (OpenAI "Structured Outputs" subset):
  every object has ``additionalProperties: false`` and lists all its properties in ``required``;
  properties that were optional become nullable, and ``null`` from the model means "use the
  default" (`drop_added_nulls` removes those nulls before the arguments are validated);
* ``false`` (schema sent unchanged) when it cannot: free-form objects (``dict`` parameters),
  untyped values (``Any``), more than 5 levels of nesting or 100 properties.
"""

from __future__ import annotations

import copy
from typing import Any

MAX_DEPTH = 5
MAX_PROPERTIES = 100
#: Keywords dropped from strict schemas: defaults are applied client-side, titles are noise.
_DROPPED = ("default", "title")


class NotStrictCompatible(ValueError):
    """The schema uses something strict mode cannot express."""


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A strict-mode copy of ``schema``; raises `NotStrictCompatible` when there is none."""
    out = copy.deepcopy(schema)
    defs = out.get("$defs") or {}
    count = [0]
    for definition in defs.values():
        _strict_node(definition, 1, count)
    _strict_node(out, 0, count)
    return out


def _strict_node(node: dict[str, Any], depth: int, count: list[int]) -> None:
    if depth > MAX_DEPTH:
        raise NotStrictCompatible(f"nested deeper than {MAX_DEPTH} levels")
    for key in _DROPPED:
        node.pop(key, None)
    if "$ref" in node:
        return
    if "anyOf" in node:
        for option in node["anyOf"]:
            _strict_node(option, depth, count)
        return
    kind = node.get("type")
    if kind is None and "enum" not in node and "const" not in node:
        raise NotStrictCompatible("a value without a type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds:
        extra = node.get("additionalProperties")  # absent on pydantic models: extras ignored, so closing is safe
        if (extra is not None and extra is not False) or ("properties" not in node and extra is None):
            raise NotStrictCompatible("an object with free-form keys")
        properties = node.setdefault("properties", {})
        count[0] += len(properties)
        if count[0] > MAX_PROPERTIES:
            raise NotStrictCompatible(f"more than {MAX_PROPERTIES} properties")
        required = set(node.get("required") or [])
        for name, prop in properties.items():
            _strict_node(prop, depth + 1, count)
            if name not in required:
                properties[name] = _nullable(prop)
        node["required"] = list(properties)
        node["additionalProperties"] = False
    if "array" in kinds:
        items = node.get("items")
        if not isinstance(items, dict):
            raise NotStrictCompatible("an array without an item schema")
        _strict_node(items, depth + 1, count)


def _accepts_null(prop: dict[str, Any]) -> bool:
    kind = prop.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(_accepts_null(option) for option in prop.get("anyOf") or ())


def _nullable(prop: dict[str, Any]) -> dict[str, Any]:
    if _accepts_null(prop):
        return prop
    if "anyOf" in prop:
        return {**prop, "anyOf": [*prop["anyOf"], {"type": "null"}]}
    if isinstance(prop.get("type"), str):
        out = {**prop, "type": [prop["type"], "null"]}
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return out
    return {"anyOf": [prop, {"type": "null"}]}


def drop_added_nulls(data: Any, schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """Remove the ``null`` values strict mode let the model send for optional properties whose
    original schema does not accept ``null``, so the parameter's default applies."""
    defs = schema.get("$defs", {}) if defs is None else defs
    if "$ref" in schema:
        schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
    if isinstance(data, dict) and isinstance(schema.get("properties"), dict):
        required = set(schema.get("required") or [])
        out = {}
        for key, value in data.items():
            prop = schema["properties"].get(key)
            if prop is None:
                out[key] = value
            elif value is None and key not in required and not _accepts_null(prop):
                continue
            else:
                out[key] = drop_added_nulls(value, prop, defs)
        return out
    if isinstance(data, list) and isinstance(schema.get("items"), dict):
        return [drop_added_nulls(v, schema["items"], defs) for v in data]
    if data is not None and "anyOf" in schema:
        for option in schema["anyOf"]:
            if option.get("type") != "null":
                return drop_added_nulls(data, option, defs)
    return data
