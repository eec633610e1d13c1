"""The live notebook document for ``read_notebook``/``read_cell``, asked from the JupyterLab panel.

A panel whose ``hello`` lists the ``"notebook"`` feature can answer ``notebook_request`` with a
``notebook`` message: the document's cells in nbformat shape, already reduced by the extension
(``labextension/src/notebookBridge.ts``: long text cut head/tail, images sent as their first bytes
plus their size) so that it fits the comm's 256 kB panel->kernel limit. While such a panel is
attached, the notebook tools read the document instead of the kernel's history; when it does not
answer within ``REQUEST_TIMEOUT`` the tools fall back to the history and say so.

The request is made from a worker thread (tools run off the kernel thread) and answered by the comm
handler, on whatever thread ipykernel routes comm messages to (the main shell or a subshell), so
nothing here assumes a thread.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from .tools.notebook import Cell, HistorySource, NotebookSource, install_notebook_tools

REQUEST_TIMEOUT = 10.0
_ids = itertools.count(1)

DOCUMENT_PREAMBLE = (
    "Source: the live notebook document (as open in the notebook frontend now, unsaved edits included). "
    "Cell ids are the document's; outputs are summarised."
)


class DocumentSource:
    """Cells of the open notebook, requested over one panel comm."""

    kind = "document"

    def __init__(self, send: Callable[[dict[str, Any]], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[threading.Event, list[Any]]] = {}

    def call(self, action: str, args: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        """Send one ``notebook_request`` and wait for the panel's ``notebook`` answer (the message)."""
        timeout = REQUEST_TIMEOUT if timeout is None else timeout
        rid = f"nb-{next(_ids)}"
        done = threading.Event()
        box: list[Any] = []
        with self._lock:
            self._pending[rid] = (done, box)
        try:
            self._send({"type": "notebook_request", "id": rid, "action": action, "args": args or {}})
            if not done.wait(timeout):
                raise TimeoutError(f"the notebook did not answer in {timeout:g} s")
        finally:
            with self._lock:
                self._pending.pop(rid, None)
        return box[0]

    def request(self, timeout: float | None = None) -> list[Cell]:
        answer = self.call("read", timeout=timeout)
        return [Cell.from_nbformat(i, c) for i, c in enumerate(answer.cells)]

    def resolve(self, rid: str, answer: Any) -> bool:
        """The panel's answer (a ``comm.NotebookSnapshot``) to request ``rid`` (False: nobody waits)."""
        with self._lock:
            pending = self._pending.get(rid)
        if pending is None:
            return False
        pending[1].append(answer)
        pending[0].set()
        return True

    def cells(self) -> list[Cell]:
        return self.request()

    def preamble(self) -> str:
        return DOCUMENT_PREAMBLE


class FallbackSource:
    """The history, with the reason the document could not be read in front of it."""

    kind = "history"

    def __init__(self, history: HistorySource, reason: str) -> None:
        self.history = history
        self.reason = reason
        self._cells = history.cells()

    def cells(self) -> list[Cell]:
        return self._cells

    def preamble(self) -> str:
        return f"(The notebook document could not be read: {self.reason}.)\n{self.history.preamble()}"


class NotebookSources:
    """Which source the tools read: the attached panel's document, else the kernel's history."""

    def __init__(self, history: HistorySource) -> None:
        self.history = history
        self.document: DocumentSource | None = None
        self.agent: Any = None
        #: The running turn (turns are serialised), stamped into the metadata of cells the agent writes.
        self.turn_id: str | None = None

    def on_event(self, event: Any) -> None:
        kind = getattr(event, "type", "")
        if kind == "turn_started":
            self.turn_id = event.turn_id
        elif kind == "turn_done":
            self.turn_id = None

    @property
    def kind(self) -> str:
        return "document" if self.document is not None else "history"

    def current(self) -> NotebookSource:
        document = self.document
        if document is None:
            return self.history
        try:
            cells = document.request()
        except TimeoutError as exc:
            return FallbackSource(self.history, str(exc))
        return _Fetched(cells)


class _Fetched:
    """One answer of the document, so that a tool call reads one consistent snapshot."""

    kind = "document"

    def __init__(self, cells: list[Cell]) -> None:
        self._cells = cells

    def cells(self) -> list[Cell]:
        return self._cells

    def preamble(self) -> str:
        return DOCUMENT_PREAMBLE


#: The kernel's sources (one agent per kernel), set by ``install``; panels attach to it.
_sources: NotebookSources | None = None


def install(agent: Any, shell: Any) -> NotebookSources:
    """Give ``agent`` ``read_notebook``/``read_cell`` over the history, or an attached panel's document."""
    global _sources
    if _sources is None or _sources.history.shell is not shell:
        _sources = NotebookSources(HistorySource(shell))
    if _sources.agent is not agent:
        _sources.agent = agent
        agent.subscribe(_sources.on_event)
    install_notebook_tools(agent, _sources.current)
    return _sources


def attach(send: Callable[[dict[str, Any]], None]) -> DocumentSource | None:
    """A panel that can send the document connected: the tools read it, and may edit it, from now on."""
    if _sources is None:
        return None
    document = DocumentSource(send)
    _sources.document = document
    if _sources.agent is not None:
        from .cell_tools import add_cell_tools

        add_cell_tools(_sources.agent, document, lambda: _sources.turn_id if _sources else None, _sources)
    return document


def detach(document: DocumentSource | None) -> None:
    """The panel's comm closed: back to the history (unless another panel attached since)."""
    if _sources is not None and document is not None and _sources.document is document:
        _sources.document = None
        if _sources.agent is not None:
            from .cell_tools import remove_cell_tools

            remove_cell_tools(_sources.agent)


def current_kind() -> str | None:
    """ "document", "history", or None before the tools are installed (for ``%agent tools``)."""
    return None if _sources is None else _sources.kind
