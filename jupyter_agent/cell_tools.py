"""Cell tools over the live document: ``insert_cell``, ``edit_cell``, ``delete_cell`` (issue 13, item 2).

Offered only while a panel with the notebook bridge is attached (``notebook_bridge.attach``); without
one the model never sees them and ``%agent tools`` says why. Each call is one ``notebook_request``
action that the extension applies through the document model as exactly one Undo step, stamping
``metadata.jupyter_agent.turn_id`` (and a visible badge) on the cell (``notebookBridge.ts``).
Approval defaults: inserting a cell that is not run does not ask (it is visible and undoable);
editing, deleting and running ask. ``run_cell`` lives in ``cell_run.py``.

Approval previews (what the card shows before the user decides): the source of an inserted cell, a
unified diff of an edit against the cell's current source, the source a delete removes; read from
the document when asked, so they show the cell as it is now.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, Literal

from .tools.base import ApprovalPreview, FunctionTool
from .tools.notebook import code_preview, current_cell

EDIT_TOOLS = ("insert_cell", "edit_cell", "delete_cell", "run_cell")


def source_diff(old: str, new: str, label: str = "cell") -> str:
    """A unified diff of a cell's source (``old`` now, ``new`` proposed); "" when they are equal."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), fromfile=f"{label} (now)", tofile=f"{label} (proposed)", lineterm=""
    )
    return "\n".join(lines)


def _call(document: Any, action: str, args: dict[str, Any]) -> dict[str, Any]:
    answer = document.call(action, args)
    if answer.error:
        raise RuntimeError(answer.error)
    return dict(answer.result or {})


def cell_tools(document: Any, turn_id: Callable[[], str | None]) -> list[FunctionTool]:
    def insert_cell(
        source: str,
        cell_type: Literal["code", "markdown"] = "code",
        before: str | None = None,
        after: str | None = None,
    ) -> str:
        """Insert a new cell into the user's notebook (visible; the user can Undo it). Place it before or after a cell (id or index), or at the end when neither is given. The cell is not run.

        Use visible cells for code meant to stay in the notebook; run_python is for quick hidden checks."""
        if before is not None and after is not None:
            raise ValueError("give before or after, not both")
        args = {"source": source, "cell_type": cell_type, "before": before, "after": after, "turn_id": turn_id()}
        result = _call(document, "insert", args)
        return f"Inserted a {cell_type} cell: id={result.get('id')} index={result.get('index')} (not run)."

    def edit_cell(cell: str, source: str) -> str:
        """Replace the whole source of one cell (id or index) in the user's notebook. Its outputs stay until it runs again."""
        result = _call(document, "edit", {"cell": cell, "source": source, "turn_id": turn_id()})
        return f"Edited cell id={result.get('id')} index={result.get('index')}."

    def delete_cell(cell: str) -> str:
        """Delete one cell (id or index) from the user's notebook (the user can Undo it)."""
        result = _call(document, "delete", {"cell": cell, "turn_id": turn_id()})
        return f"Deleted cell id={result.get('id')} (was index {result.get('index')})."

    def preview_insert(source: str, cell_type: str = "code", **_: Any) -> ApprovalPreview:
        return ApprovalPreview("code", source, "markdown" if cell_type == "markdown" else "python")

    def preview_edit(cell: str, source: str) -> ApprovalPreview:
        found = current_cell(document, cell)
        diff = source_diff(found.source, source, f"cell {found.index}")
        return ApprovalPreview("diff", diff or "(no change: the new source equals the current one)", "diff")

    def preview_delete(cell: str) -> ApprovalPreview:
        return code_preview(current_cell(document, cell))

    insert = FunctionTool.from_callable(insert_cell, approval="auto")
    insert.previewer = preview_insert
    edit = FunctionTool.from_callable(edit_cell, approval="ask")
    edit.previewer = preview_edit
    delete = FunctionTool.from_callable(delete_cell, approval="ask")
    delete.previewer = preview_delete
    return [insert, edit, delete]


def add_cell_tools(agent: Any, document: Any, turn_id: Callable[[], str | None], sources: Any) -> None:
    """Offer the cell tools over ``document`` (replacing those of a previous panel)."""
    from .cell_run import run_cell_tool

    for tool in [*cell_tools(document, turn_id), run_cell_tool(document, sources, agent)]:
        agent.tools[tool.name] = tool


def remove_cell_tools(agent: Any) -> None:
    for name in EDIT_TOOLS:
        agent.tools.pop(name, None)
