"""Notebook context for the model: ``read_notebook`` and ``read_cell`` (issue 13, capability 1).

The cells come from a ``NotebookSource``. ``HistorySource`` reads the kernel's own execution
history (``In``/``Out`` and the exceptions seen by a ``post_run_cell`` hook): it works in every
frontend (terminal IPython, nbclient, VS Code, JupyterLab) but it is *history*, not the document
(cells never run, markdown and deleted cells are missing, stdout is not kept), and the text the
model gets says so. A frontend that sends the live document implements the same interface.

Everything is summarised (``summarise_output``: text head/tail, errors as ``ename: evalue`` plus
the traceback tail, images noted with their size) and bounded by a character budget, with explicit
elision markers, so a 500-cell notebook costs a few kB (``benchmarks/bench_read_notebook.py``).
Pure functions over nbformat-shaped dicts; no IPython import.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .base import ApprovalPreview, FunctionTool

#: Default budget of one ``read_notebook`` answer, in characters.
NOTEBOOK_BUDGET = 12_000
MAX_SOURCE_CHARS = 1_500
MAX_OUTPUT_CHARS = 600
TRACEBACK_TAIL_LINES = 8
#: The cell tools that need a frontend's notebook bridge (not offered without one).
CELL_TOOLS = ("insert_cell", "edit_cell", "delete_cell", "run_cell")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def head_tail(text: str, limit: int) -> str:
    """``text`` if short, else its head and tail around a marker saying how much was left out."""
    if len(text) <= limit:
        return text
    head = text[: limit * 2 // 3]
    tail = text[-(limit // 3) :]
    return f"{head}\n… [{len(text) - len(head) - len(tail)} characters elided] …\n{tail}"


def _joined(value: Any) -> str:
    """nbformat multiline strings are a str or a list of str."""
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


# --- images ------------------------------------------------------------------------------------


def image_size(mime: str, data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG or JPEG header, or None when it cannot be read."""
    if mime == "image/png" and len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if mime == "image/jpeg" and data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
    return None


def _describe_image(mime: str, payload: Any) -> str:
    """``[image/png 640x480, 23.4 kB]``; ``payload`` is base64, or the extension's reduced form
    ``{"head": first base64 characters, "bytes": decoded size}`` (``notebookBridge.ts``)."""
    if isinstance(payload, dict):
        head = str(payload.get("head", ""))
        head = head[: len(head) // 4 * 4]
        try:
            size = image_size(mime, base64.b64decode(head))
        except (binascii.Error, ValueError):
            size = None
        dims = f" {size[0]}x{size[1]}" if size else ""
        return f"[{mime}{dims}, {float(payload.get('bytes', 0)) / 1024:.1f} kB]"
    raw = _joined(payload).replace("\n", "")
    try:
        data = base64.b64decode(raw, validate=False)
    except (binascii.Error, ValueError):
        return f"[{mime}, undecodable]"
    size = image_size(mime, data)
    dims = f" {size[0]}x{size[1]}" if size else ""
    return f"[{mime}{dims}, {len(data) / 1024:.1f} kB]"


# --- outputs and cells -------------------------------------------------------------------------


def summarise_output(output: Mapping[str, Any], limit: int = MAX_OUTPUT_CHARS) -> str:
    """One nbformat output as a short text for the model."""
    kind = output.get("output_type")
    if kind == "stream":
        return f"[{output.get('name', 'stdout')}] " + head_tail(strip_ansi(_joined(output.get("text"))), limit)
    if kind == "error":
        tb = [strip_ansi(line) for line in output.get("traceback") or []]
        lines = "\n".join(tb).splitlines()
        keep = TRACEBACK_TAIL_LINES if limit <= MAX_OUTPUT_CHARS else 5 * TRACEBACK_TAIL_LINES  # read_cell: more
        tail = lines[-keep:]
        more = f"… [{len(lines) - len(tail)} traceback lines elided] …\n" if len(lines) > len(tail) else ""
        body = "\n".join(tail)
        return f"[error] {output.get('ename', 'Error')}: {output.get('evalue', '')}\n{more}{body}".rstrip()
    if kind in ("execute_result", "display_data"):
        data = output.get("data") or {}
        parts = [_describe_image(mime, data[mime]) for mime in ("image/png", "image/jpeg") if mime in data]
        if "text/plain" in data:
            parts.append(head_tail(strip_ansi(_joined(data["text/plain"])), limit))
        elif not parts:
            parts.append("(" + ", ".join(sorted(data)) + ")")
        label = "result" if kind == "execute_result" else "display"
        return f"[{label}] " + "\n".join(parts)
    return f"[{kind}]"


@dataclass
class Cell:
    """One cell as the model sees it; ``id`` is the document's cell id (or ``In[N]`` in history)."""

    index: int
    id: str
    cell_type: str
    source: str
    execution_count: int | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_nbformat(cls, index: int, cell: Mapping[str, Any]) -> Cell:
        return cls(
            index=index,
            id=str(cell.get("id") or f"cell-{index}"),
            cell_type=str(cell.get("cell_type", "code")),
            source=_joined(cell.get("source")),
            execution_count=cell.get("execution_count"),
            outputs=list(cell.get("outputs") or []),
        )


def render_cell(cell: Cell, *, source_limit: int = MAX_SOURCE_CHARS, output_limit: int = MAX_OUTPUT_CHARS) -> str:
    count = "" if cell.execution_count is None else f" [{cell.execution_count}]"
    lines = [f"--- cell {cell.index} id={cell.id} {cell.cell_type}{count}", head_tail(cell.source, source_limit)]
    for output in cell.outputs:
        lines.append(summarise_output(output, output_limit))
    return "\n".join(lines).rstrip()


def render_cells(cells: list[Cell], budget: int = NOTEBOOK_BUDGET) -> str:
    """The cells in order within ``budget`` characters: head and tail kept, the middle elided."""
    rendered = [render_cell(c) for c in cells]
    if sum(len(r) + 1 for r in rendered) <= budget:
        return "\n".join(rendered)
    # Shrink each cell first, then drop whole cells from the middle (the newest cells matter most).
    rendered = [render_cell(c, source_limit=400, output_limit=200) for c in cells]
    head: list[str] = []
    tail: list[str] = []
    used = 200  # room for the marker
    lo, hi = 0, len(rendered) - 1
    take_tail = True
    while lo <= hi:
        nxt = rendered[hi] if take_tail else rendered[lo]
        if used + len(nxt) + 1 > budget:
            break
        used += len(nxt) + 1
        if take_tail:
            tail.insert(0, nxt)
            hi -= 1
        else:
            head.append(nxt)
            lo += 1
        take_tail = not take_tail if lo <= hi else take_tail
    if lo > hi:
        return "\n".join(head + tail)
    first, last = cells[lo].index, cells[hi].index
    marker = f"… [{hi - lo + 1} cells elided: indices {first}-{last}; call read_cell with an index or id to see one] …"
    return "\n".join([*head, marker, *tail])


# --- sources -----------------------------------------------------------------------------------


class NotebookSource(Protocol):
    """Where ``read_notebook`` gets its cells from."""

    #: "document" (the live notebook) or "history" (the kernel's execution history).
    kind: str

    def cells(self) -> list[Cell]: ...

    def preamble(self) -> str: ...


HISTORY_PREAMBLE = (
    "Source: the kernel's execution history (In/Out), NOT the notebook document: no frontend with the "
    "jupyter-agent extension is connected. Entries are inputs in the order they ran (ids In[N]); cells "
    "never run, markdown cells, printed output and later edits are not here; results are Out[N] reprs "
    "and errors the exceptions this kernel saw. Entries run without history have ids run-K."
)


class HistorySource:
    """The kernel's execution history as cells.

    What ran before the agent loaded comes from ``In``/``Out`` (and IPython's last result for its
    error); from then on ``pre_run_cell``/``post_run_cell`` hooks record each cell as typed, its result
    and its exception, also when the frontend runs cells with ``store_history=False`` (nbval does), so
    ``In`` stays empty.
    """

    kind = "history"

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._entries: list[Cell] = []
        self._running: Cell | None = None
        self._runs = 0
        self._seed()
        events = getattr(shell, "events", None)
        if events is not None:
            events.register("pre_run_cell", self._pre_run_cell)
            events.register("post_run_cell", self._post_run_cell)

    def _seed(self) -> None:
        ns = getattr(self.shell, "user_ns", {}) or {}
        history = getattr(self.shell, "history_manager", None)
        # The raw inputs (``%%agent`` as typed), not In's transformed code; In when there is no manager.
        inputs = list(getattr(history, "input_hist_raw", None) or ns.get("In") or [])
        outs: Mapping[int, Any] = ns.get("Out") or {}
        for n, source in enumerate(inputs):
            if n == 0 or not source.strip():
                continue
            cell = Cell(index=0, id=f"In[{n}]", cell_type="code", source=source, execution_count=n)
            if n in outs:
                cell.outputs.append(_result_output(outs[n]))
            self._entries.append(cell)
        last = getattr(self.shell, "last_execution_result", None)
        exc = _exception_of(last)
        if exc is not None:
            count = getattr(last, "execution_count", None)
            target = next((c for c in self._entries if c.execution_count == count), None)
            if target is None:  # the failing cell was not stored in In (store_history=False)
                source = getattr(getattr(last, "info", None), "raw_cell", "") or "(source not recorded)"
                target = Cell(index=0, id=f"run-{count}", cell_type="code", source=source)
                self._entries.append(target)
            target.outputs.append(error_output(exc))

    def _pre_run_cell(self, info: Any) -> None:
        source = getattr(info, "raw_cell", "") or ""
        self._runs += 1
        if getattr(info, "store_history", False):
            count: int | None = getattr(self.shell, "execution_count", 1) - 1  # counted up before this hook
            cid = f"In[{count}]"
        else:
            count, cid = None, f"run-{self._runs}"
        self._running = Cell(index=0, id=cid, cell_type="code", source=source, execution_count=count)
        if source.strip():
            self._entries.append(self._running)

    def holding_shell(self) -> bool:
        """A cell is running on the main shell now (e.g. the ``%%agent`` cell of this turn)."""
        return self._running is not None

    def _post_run_cell(self, result: Any) -> None:
        cell, self._running = self._running, None
        if cell is None:
            return
        value = getattr(result, "result", None)
        if value is not None:
            cell.outputs.append(_result_output(value))
        exc = _exception_of(result)
        if exc is not None:
            cell.outputs.append(error_output(exc))

    def cells(self) -> list[Cell]:
        cells = []
        for i, entry in enumerate(self._entries):
            outputs = [*entry.outputs, _RUNNING_NOTE] if entry is self._running else entry.outputs
            cells.append(Cell(i, entry.id, entry.cell_type, entry.source, entry.execution_count, list(outputs)))
        return cells

    def preamble(self) -> str:
        return HISTORY_PREAMBLE


def _exception_of(result: Any) -> BaseException | None:
    exc = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
    return exc if isinstance(exc, BaseException) else None


def _result_output(value: Any) -> dict[str, Any]:
    return {"output_type": "execute_result", "data": {"text/plain": _safe_repr(value)}}


_RUNNING_NOTE = {"output_type": "stream", "name": "note", "text": "(running now: this agent turn)"}


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ is the user's business
        return f"<{type(value).__name__}; repr failed: {exc}>"


def error_output(exc: BaseException) -> dict[str, Any]:
    """An exception as an nbformat ``error`` output (the traceback without the kernel's own frames)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.endswith(("interactiveshell.py", "async_helpers.py")):
        tb = tb.tb_next
    lines = "".join(traceback.format_exception(type(exc), exc, tb)).rstrip().splitlines()
    return {"output_type": "error", "ename": type(exc).__name__, "evalue": str(exc), "traceback": lines}


# --- tools -------------------------------------------------------------------------------------


def find_cell(cells: list[Cell], cell: str) -> Cell:
    """A cell by id, ``In[N]`` history id, or index (``"3"``, ``"-1"``)."""
    for c in cells:
        if c.id == cell:
            return c
    try:
        return cells[int(cell)]
    except (ValueError, IndexError):
        pass
    known = ", ".join(c.id for c in cells[:5]) + (", …" if len(cells) > 5 else "")
    raise KeyError(f"no cell {cell!r} (there are {len(cells)} cells; ids such as {known or 'none'})")


#: A preview reads the document at most this long (the approval card then shows the arguments).
PREVIEW_READ_TIMEOUT = 4.0


def current_cell(document: Any, cell: str) -> Cell:
    """One cell of the live document (a ``notebook_bridge.DocumentSource``) as it is now, for a preview."""
    return find_cell(document.request(timeout=PREVIEW_READ_TIMEOUT), cell)


def code_preview(cell: Cell) -> ApprovalPreview:
    """An approval preview showing a cell's source (what running or deleting it concerns)."""
    return ApprovalPreview("code", cell.source, "markdown" if cell.cell_type == "markdown" else "python")


def notebook_tools(source: Callable[[], NotebookSource]) -> list[FunctionTool]:
    """``read_notebook`` and ``read_cell`` over the current source (read-only: approval ``auto``)."""

    def read_notebook() -> str:
        """Read the notebook: every cell in order (index, id, type, source, execution count) with its outputs summarised.

        Long notebooks are cut in the middle; read_cell shows one cell in full."""
        src = source()
        cells = src.cells()
        body = render_cells(cells) if cells else "(no cells)"
        return f"{src.preamble()}\n{len(cells)} cells.\n{body}"

    def read_cell(cell: str) -> str:
        """Read one cell in full (source and outputs): pass its id or its index ("-1" is the last)."""
        src = source()
        found = find_cell(src.cells(), cell)
        return render_cell(found, source_limit=NOTEBOOK_BUDGET, output_limit=4_000)

    return [
        FunctionTool.from_callable(read_notebook, approval="auto"),
        FunctionTool.from_callable(read_cell, approval="auto"),
    ]


def cell_tools_note(kind: str | None) -> str:
    """What ``%agent tools`` says about the notebook tools and why cell tools are (not) offered."""
    if kind is None:
        return "notebook tools: not installed (no IPython shell)"
    unavailable = f"{', '.join(CELL_TOOLS)}: not offered"
    if kind == "history":
        return (
            "read_notebook/read_cell read the kernel's execution history (no notebook frontend with the "
            f"jupyter-agent extension is connected); {unavailable} - they need the JupyterLab extension's "
            "notebook bridge"
        )
    return (
        "read_notebook/read_cell read the live notebook document; insert_cell, edit_cell, delete_cell edit it "
        "(one Undo step each); run_cell runs a cell so its outputs land in the notebook"
    )


def install_notebook_tools(agent: Any, source: Callable[[], NotebookSource]) -> None:
    """Give ``agent`` ``read_notebook``/``read_cell`` over ``source()`` (kept when already named)."""
    for tool in notebook_tools(source):
        if tool.name not in agent.tools:
            agent.add_tool(tool)
