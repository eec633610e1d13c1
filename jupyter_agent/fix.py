"""``%agent fix`` and the panel's "Fix this error": explain a cell's exception and propose the fix.

The failing cell is found from what the kernel knows (the last exception: ``sys.last_value``, and the
cell that raised it as recorded by the notebook tools' history hooks, or the cell's source that
IPython keeps in ``linecache``), then, when a panel with the notebook bridge is attached, matched to
the live document's cell (its error output, else its source) so that the model can propose the fix
as an ``edit_cell`` on that cell; the approval card shows the diff. Without the bridge the edit
tools are not offered, and the model is asked for the corrected code as a code block instead.
The panel names the cell itself (``fix`` message with its id): its source and error output are read
from the document.
"""

from __future__ import annotations

import linecache
import sys
from dataclasses import dataclass, field
from typing import Any

from . import notebook_bridge
from .tools.notebook import Cell, error_output, head_tail, strip_ansi

#: Bounds of what the prompt quotes (the model can read_cell for more).
MAX_SOURCE_CHARS = 6_000
MAX_TRACEBACK_CHARS = 3_000
TRACEBACK_TAIL_LINES = 30

NO_EXCEPTION = (
    "No exception to fix: no cell has raised an error in this kernel yet. Run the failing cell, then `%agent fix`."
)
NO_BRIDGE_NOTE = (
    "Note: the agent cannot edit cells here (that needs JupyterLab or Notebook 7 with the jupyter-agent extension); "
    "it explains the error and gives the corrected code to copy."
)


@dataclass
class Failure:
    """A cell that raised, and its error as an nbformat ``error`` output."""

    source: str
    ename: str
    evalue: str
    traceback: list[str] = field(default_factory=list)
    #: The document's cell id when the cell was found in the live document, else None.
    cell_id: str | None = None
    #: How the prompt names the cell: its document index and id, or ``In[N]``.
    label: str = "the failing cell"


def last_exception() -> BaseException | None:
    """The exception of the last failing cell (IPython sets ``sys.last_value`` when it shows one)."""
    value = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    return value if isinstance(value, BaseException) else None


def _history_cell(history: Any, exc: BaseException) -> Cell | None:
    """The newest history entry whose error is ``exc`` (same type name and message)."""
    if history is None:
        return None
    ename, evalue = type(exc).__name__, str(exc)
    for cell in reversed(history.cells()):
        for output in cell.outputs:
            if output.get("output_type") == "error" and output.get("ename") == ename and output.get("evalue") == evalue:
                return cell
    return None


def _traceback_source(exc: BaseException) -> str:
    """The source of the cell the traceback starts in (IPython keeps cell code in ``linecache``)."""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith("<ipython-input-") or "ipykernel_" in filename:
            lines = linecache.getlines(filename)
            if lines:
                return "".join(lines)
        tb = tb.tb_next
    return ""


def _document_match(cells: list[Cell], failure: Failure, count: int | None) -> Cell | None:
    """The document cell that shows ``failure``'s error (the newest run), else one with its source."""
    showing = [
        c
        for c in cells
        if any(
            o.get("output_type") == "error" and o.get("ename") == failure.ename and o.get("evalue") == failure.evalue
            for o in c.outputs
        )
    ]
    if count is not None:
        exact = [c for c in showing if c.execution_count == count]
        if exact:
            return exact[-1]
    if showing:
        return max(showing, key=lambda c: c.execution_count or 0)
    same = [c for c in cells if c.cell_type == "code" and c.source.strip() == failure.source.strip()]
    return same[-1] if same else None


def find_failure(shell: Any = None) -> Failure | None:
    """The last exception's cell, in the live document when a panel with the bridge is attached."""
    exc = last_exception()
    if exc is None:
        return None
    err = error_output(exc)
    sources = notebook_bridge._sources
    entry = _history_cell(sources.history if sources is not None else None, exc)
    if entry is not None:
        source, count, label = entry.source, entry.execution_count, f"{entry.id}"
    else:
        source, count, label = _traceback_source(exc), None, "the failing cell"
    failure = Failure(source or "(source not recorded)", err["ename"], err["evalue"], list(err["traceback"]))
    failure.label = label
    document = sources.document if sources is not None else None
    if document is not None:
        try:
            cells = document.request()
        except TimeoutError:
            return failure
        found = _document_match(cells, failure, count)
        if found is not None:
            _use_document_cell(failure, found)
    return failure


def _use_document_cell(failure: Failure, cell: Cell) -> None:
    failure.cell_id, failure.source = cell.id, cell.source
    failure.label = f"cell {cell.index} (id {cell.id})"
    shown = next((o for o in cell.outputs if o.get("output_type") == "error"), None)
    if shown is not None and shown.get("traceback"):  # the traceback as the user sees it
        failure.traceback = [str(line) for line in shown["traceback"]]


def document_failure(document: Any, cell_id: str) -> Failure:
    """The failure shown by document cell ``cell_id`` (the panel's action); ValueError if it shows none."""
    from .tools.notebook import find_cell

    cell = find_cell(document.request(), cell_id)
    shown = next((o for o in cell.outputs if o.get("output_type") == "error"), None)
    if shown is None:
        raise ValueError(f"cell {cell.index} shows no error to fix")
    failure = Failure(cell.source, str(shown.get("ename", "")), str(shown.get("evalue", "")))
    _use_document_cell(failure, cell)
    return failure


def traceback_tail(lines: list[str]) -> str:
    """The traceback's last lines, ANSI colours stripped, bounded."""
    text = strip_ansi("\n".join(lines)).rstrip()
    tail = text.splitlines()[-TRACEBACK_TAIL_LINES:]
    return head_tail("\n".join(tail), MAX_TRACEBACK_CHARS)


def _fence(body: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in body:
        ticks += "`"
    return f"{ticks}{lang}\n{body}\n{ticks}"


def fix_prompt(failure: Failure, *, can_edit: bool, extra: str = "") -> str:
    """The user's request for a fix turn: the cell, its error, the traceback tail, and what to do."""
    parts = [
        f"Fix the error in {failure.label} of my notebook.",
        "The cell's source:",
        _fence(head_tail(failure.source, MAX_SOURCE_CHARS), "python"),
        f"It raised {failure.ename}: {strip_ansi(failure.evalue)}",
        "The end of the traceback:",
        _fence(traceback_tail(failure.traceback)),
    ]
    if can_edit and failure.cell_id is not None:
        parts.append(
            "Explain briefly what went wrong, then propose the fix as one edit_cell call on cell "
            f"{failure.cell_id} with the whole corrected source; I will review the diff and approve it. "
            "Change only what the fix needs, and do not run the cell."
        )
    else:
        parts.append(
            "You cannot edit the notebook from here. Explain briefly what went wrong, then give the whole "
            "corrected cell as one Python code block that I can paste."
        )
    if extra.strip():
        parts.append(f"My instructions: {extra.strip()}")
    return "\n\n".join(parts)


def fix_title(failure: Failure) -> str:
    """What the panel shows for the fix request instead of the whole generated prompt."""
    error = strip_ansi(f"{failure.ename}: {failure.evalue}" if failure.evalue else failure.ename)
    if len(error) > 120:
        error = error[:119] + "…"
    return f"Fix the error in {failure.label} ({error})"


def can_edit(agent: Any) -> bool:
    """The edit tools are offered (a panel with the notebook bridge is attached)."""
    return "edit_cell" in getattr(agent, "tools", {})
