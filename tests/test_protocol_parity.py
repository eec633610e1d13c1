"""The panel's copy of the event vocabulary (``EVENT_FIELDS`` in labextension/src/protocol.ts)
matches ``jupyter_agent/events.py``: same event types, same fields, compatible kinds.

protocol.ts validates every event the kernel sends; a field added in Python but not in
TypeScript (or a kind changed) would either drop valid events in the panel or let a malformed one
through. This test reads the TypeScript object literal, so it fails as soon as they drift.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest

from jupyter_agent import events as ev

PROTOCOL_TS = Path(__file__).resolve().parents[1] / "labextension" / "src" / "protocol.ts"
_PHASE_VALUES = {"commentary", "final_answer"}


def ts_event_fields(source: str) -> dict[str, dict[str, str]]:
    """The ``EVENT_FIELDS`` object literal of protocol.ts as a dict."""
    match = re.search(r"export const EVENT_FIELDS\b[^=]*=\s*(\{.*?\n\});", source, re.S)
    if match is None:
        raise AssertionError("EVENT_FIELDS object literal not found in protocol.ts")
    literal = re.sub(r"//[^\n]*", "", match.group(1))
    literal = re.sub(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_]*)\s*:", r'\1"\2":', literal)
    literal = literal.replace("'", '"')
    literal = re.sub(r",(\s*[}\]])", r"\1", literal)
    return json.loads(literal)


def _kind(hint: Any) -> str:
    """The protocol.ts kind for one Python field annotation."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        literal_values = {v for a in args if typing.get_origin(a) is Literal for v in typing.get_args(a)}
        if literal_values == _PHASE_VALUES and len(args) == 1:
            return "phase"
        if len(args) != 1:
            raise AssertionError(f"no protocol.ts kind for {hint!r}")
        return _kind(args[0]).rstrip("?") + "?"
    if origin is Literal:
        values = typing.get_args(hint)
        if all(isinstance(v, str) for v in values):
            return "string"
        raise AssertionError(f"no protocol.ts kind for {hint!r}")
    if hint is str:
        return "string"
    if hint is bool:
        return "boolean"
    if hint in (int, float):
        return "number"
    if hint is dict or origin is dict or (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
        return "object"
    if hint is list or origin in (list, tuple):
        return "array"
    raise AssertionError(f"no protocol.ts kind for {hint!r}")


def python_event_fields() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, cls in ev.EVENT_TYPES.items():
        hints = typing.get_type_hints(cls, vars(ev))
        out[name] = {f.name: _kind(hints[f.name]) for f in dataclasses.fields(cls) if f.name != "turn_id"}
    return out


def drift(python: dict[str, dict[str, str]], ts: dict[str, dict[str, str]]) -> list[str]:
    """Every difference, as readable lines (empty when they match)."""
    problems = [f"event {t!r} is in events.py but not in protocol.ts" for t in sorted(python.keys() - ts.keys())]
    problems += [f"event {t!r} is in protocol.ts but not in events.py" for t in sorted(ts.keys() - python.keys())]
    for etype in sorted(python.keys() & ts.keys()):
        py_fields, ts_fields = python[etype], ts[etype]
        for name in sorted(py_fields.keys() - ts_fields.keys()):
            problems.append(f"{etype}.{name} ({py_fields[name]}) is missing from protocol.ts")
        for name in sorted(ts_fields.keys() - py_fields.keys()):
            problems.append(f"{etype}.{name} is in protocol.ts but not in events.py")
        for name in sorted(py_fields.keys() & ts_fields.keys()):
            if py_fields[name] != ts_fields[name]:
                problems.append(f"{etype}.{name}: events.py says {py_fields[name]}, protocol.ts says {ts_fields[name]}")
    return problems


def test_event_vocabulary_matches_protocol_ts() -> None:
    ts = ts_event_fields(PROTOCOL_TS.read_text(encoding="utf-8"))
    assert drift(python_event_fields(), ts) == []


def test_every_event_serialises_with_exactly_the_declared_fields() -> None:
    """``to_dict()`` (what the comm sends) carries the fields protocol.ts validates, no more."""
    ts = ts_event_fields(PROTOCOL_TS.read_text(encoding="utf-8"))
    for etype, cls in ev.EVENT_TYPES.items():
        sent = cls().to_dict()
        assert set(sent) - {"type", "turn_id"} == set(ts[etype]), etype


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda ts: ts["web_search"].pop("url"), "web_search.url (string?) is missing from protocol.ts"),
        (lambda ts: ts["retry"].update(delay="string"), "retry.delay: events.py says number, protocol.ts says string"),
        (lambda ts: ts.pop("notice"), "event 'notice' is in events.py but not in protocol.ts"),
        (lambda ts: ts.update(extra={"x": "string"}), "event 'extra' is in protocol.ts but not in events.py"),
        (lambda ts: ts["usage"].update(spare="object"), "usage.spare is in protocol.ts but not in events.py"),
    ],
)
def test_drift_is_reported(mutate: Any, expected: str) -> None:
    ts = ts_event_fields(PROTOCOL_TS.read_text(encoding="utf-8"))
    mutate(ts)
    assert expected in drift(python_event_fields(), ts)


def test_the_parser_reads_a_reformatted_literal() -> None:
    source = """
export const EVENT_FIELDS: Record<string, Record<string, Kind>> = {
  a: { x: 'string', // comment
       y: 'number?', },
  b: {},
};
"""
    assert ts_event_fields(source) == {"a": {"x": "string", "y": "number?"}, "b": {}}
