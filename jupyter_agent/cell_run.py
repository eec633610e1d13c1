"""``run_cell``: run a notebook cell so that its outputs land in the notebook, and tell the model.

Two paths (the choice and why: CONTRIBUTING.md, "Notebook tools"):
- no cell holds the kernel's shell (a panel turn): the extension runs the cell as the user would
  (``CodeCell.execute`` on the main shell) and replies with its outputs;
- a cell holds the shell (the ``%%agent`` cell of this turn), where a frontend execute would queue
  behind it for ever: run the source here on the kernel thread (``KernelRunner``, as ``run_python``),
  captured as nbformat outputs, and have the extension put them into the cell. The code runs once.
"""

from __future__ import annotations

import ast
import base64
from typing import Any

from .tools.notebook import code_preview, current_cell, error_output, find_cell, summarise_output

RUN_TIMEOUT = 600.0
#: Images go back to the model as input_image parts up to this base64 size each (the extension
#: downscales larger ones before sending; the kernel-thread path has no downscaler and names them).
MAX_IMAGE_B64 = 200_000
MAX_IMAGES = 4


def capture_run(code: str, namespace: dict[str, Any]) -> list[dict[str, Any]]:
    """Execute ``code`` like a cell and return its outputs as nbformat dicts (kernel thread only)."""
    from IPython.display import display
    from IPython.utils.capture import capture_output

    outputs: list[dict[str, Any]] = []
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    with capture_output() as cap:
        try:
            tree = ast.parse(code, filename="<agent-run-cell>", mode="exec")
            final = tree.body[-1] if tree.body else None
            last = final.value if isinstance(final, ast.Expr) else None
            if last is not None:
                tree.body.pop()
            exec(compile(tree, "<agent-run-cell>", "exec"), namespace)  # the tool's purpose: run the cell
            if last is not None:
                value = eval(compile(ast.Expression(last), "<agent-run-cell>", "eval"), namespace)  # its value
                if value is not None and not code.rstrip().endswith(";"):  # a trailing ; hides it, as in IPython
                    result = _execute_result(value)
                    if result is None:
                        display(value)
            _flush_figures()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - the cell's error is an output, the kernel survives
            error = error_output(exc)
    if cap.stdout:
        outputs.append({"output_type": "stream", "name": "stdout", "text": cap.stdout})
    if cap.stderr:
        outputs.append({"output_type": "stream", "name": "stderr", "text": cap.stderr})
    for rich in cap.outputs:
        outputs.append({"output_type": "display_data", "data": _json_data(rich.data), "metadata": rich.metadata or {}})
    if result is not None:
        outputs.append(result)
    if error is not None:
        outputs.append(error)
    return outputs


def _execute_result(value: Any) -> dict[str, Any] | None:
    """The cell's value as the kernel's displayhook would show it (an ``execute_result``), or None
    outside IPython. No execution count: the kernel did not run this cell as an execute request."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return None
    data, metadata = shell.display_formatter.format(value)
    if not data:
        return None
    return {
        "output_type": "execute_result",
        "data": _json_data(data),
        "metadata": metadata or {},
        "execution_count": None,
    }


def _json_data(data: dict[str, Any]) -> dict[str, Any]:
    """A mime bundle as nbformat stores it: binary values (PNG, JPEG) base64-encoded."""
    return {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in data.items()}


def _flush_figures() -> None:
    """Show open matplotlib figures as the inline backend does at the end of a cell."""
    import sys

    if "matplotlib_inline.backend_inline" in sys.modules:
        sys.modules["matplotlib_inline.backend_inline"].flush_figures()


def describe_run(index: Any, cid: Any, status: str, count: Any, outputs: list[dict[str, Any]], how: str) -> str:
    head = f"Ran cell id={cid} index={index} ({how}): {status}" + (f", [{count}]" if count is not None else "")
    body = "\n".join(summarise_output(o, 4_000) for o in outputs) or "(no output)"
    return f"{head}\n{body}"


def with_images(text: str, images: list[tuple[str, str]]) -> Any:
    """``text``, or input_text + input_image parts when the run showed PNG/JPEG images."""
    sent = [(mime, b64) for mime, b64 in images if len(b64) <= MAX_IMAGE_B64][:MAX_IMAGES]
    if len(sent) < len(images):
        text += f"\n({len(images) - len(sent)} image(s) not sent: too large or too many)"
    if not sent:
        return text
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
    parts += [{"type": "input_image", "image_url": f"data:{mime};base64,{b64}"} for mime, b64 in sent]
    return parts


def output_images(outputs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for output in outputs:
        data = output.get("data") or {}
        for mime in ("image/png", "image/jpeg"):
            if isinstance(data.get(mime), str):
                found.append((mime, data[mime].replace("\n", "")))
    return found


def run_cell_tool(document: Any, sources: Any, agent: Any) -> Any:
    """The ``run_cell`` tool over ``document`` (approval ``ask``: it executes code)."""
    from .tools.base import FunctionTool

    def run_cell(cell: str) -> Any:
        """Run one code cell (id or index) in the user's notebook: its outputs appear in the notebook and come back to you. Use it after insert_cell or edit_cell."""
        if not sources.history.holding_shell():
            answer = document.call("run", {"cell": cell}, timeout=RUN_TIMEOUT)
            if answer.error:
                raise RuntimeError(answer.error)
            r = dict(answer.result or {})
            text = describe_run(
                r.get("index"),
                r.get("id"),
                str(r.get("status")),
                r.get("execution_count"),
                r.get("outputs") or [],
                "in the notebook",
            )
            images = [(str(i.get("mime")), str(i.get("data"))) for i in r.get("images") or [] if isinstance(i, dict)]
            return with_images(text, images)
        target = find_cell(document.request(), cell)
        if target.cell_type != "code":
            raise ValueError(f"cell {target.index} is not a code cell")
        namespace = sources.history.shell.user_ns
        runner = agent.kernel_runner
        if runner is None:
            outputs = capture_run(target.source, namespace)
        else:
            outputs = runner(lambda: capture_run(target.source, namespace)).result(RUN_TIMEOUT)
        answer = document.call("set_outputs", {"cell": target.id, "outputs": outputs})
        if answer.error:
            raise RuntimeError(answer.error)
        status = "error" if any(o["output_type"] == "error" for o in outputs) else "ok"
        how = "on the kernel thread: a cell holds the shell"
        return with_images(describe_run(target.index, target.id, status, None, outputs, how), output_images(outputs))

    def preview_run(cell: str) -> Any:
        return code_preview(current_cell(document, cell))

    tool = FunctionTool.from_callable(run_cell, approval="ask")
    tool.runs_code = True
    tool.previewer = preview_run
    return tool
