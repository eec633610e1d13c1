"""Tools that work on the user's kernel: run Python, list variables, describe a variable.

``kernel_tools(namespace)`` builds the three function tools over a namespace (the IPython
``user_ns``). They run on the kernel's main thread through ``Agent.kernel_runner`` (a
`KernelRunner` in a kernel), so the code sees and changes exactly what the user's cells see.
``run_python`` asks for approval by default; the read-only tools run without asking.
Everything returned to the model is plain text, truncated sensibly (head and tail kept).
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import contextlib
import io
import itertools
import linecache
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from .base import FunctionTool, truncate

MAX_STREAM_CHARS = 8_000
MAX_REPR_CHARS = 2_000
MAX_TRACEBACK_LINES = 40
MAX_VARIABLES = 200
_cell_numbers = itertools.count(1)
#: Names IPython puts into the user namespace that are not the user's variables.
_IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})


# --- running code ----------------------------------------------------------------------------


class _Capture(io.StringIO):
    """A text stream that also answers the questions IPython's streams answer."""

    def isatty(self) -> bool:
        return False


def run_code(code: str, namespace: dict[str, Any]) -> str:
    """Execute ``code`` in ``namespace`` like a cell: stdout, stderr, last expression's repr, traceback."""
    filename = f"<agent-cell-{next(_cell_numbers)}>"
    try:
        tree = ast.parse(code, filename=filename, mode="exec")
    except SyntaxError:
        etype, value, _tb = sys.exc_info()
        return _section("error", _format_exception(etype, value, None))
    last: ast.expr | None = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body.pop().value  # type: ignore[attr-defined]
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    out, err = _Capture(), _Capture()
    result: Any = None
    error = ""
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            exec(compile(tree, filename, "exec"), namespace)  # this tool's purpose
            if last is not None:
                result = eval(
                    compile(ast.Expression(last), filename, "eval"), namespace
                )  # the value of the last expression, as a cell shows it
    except KeyboardInterrupt:
        raise  # a kernel interrupt cancels the turn (see KernelRunner)
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: the kernel must survive
        error = _format_exception(type(exc), exc, exc.__traceback__)
    parts = []
    if out.getvalue():
        parts.append(_section("stdout", truncate(out.getvalue(), MAX_STREAM_CHARS)))
    if err.getvalue():
        parts.append(_section("stderr", truncate(err.getvalue(), MAX_STREAM_CHARS)))
    if result is not None and not error:
        namespace["_"] = result
        parts.append(_section("result", short_repr(result, MAX_REPR_CHARS)))
    if error:
        parts.append(_section("error", error))
    return "\n".join(parts) or "(no output)"


def _section(name: str, body: str) -> str:
    return f"[{name}]\n{body.rstrip()}"


def _format_exception(etype: Any, value: BaseException | None, tb: Any) -> str:
    """A traceback of the user's code only (the tool's own frames are dropped)."""
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<agent-cell-"):
        tb = tb.tb_next
    lines = "".join(traceback.format_exception(etype, value, tb)).rstrip().splitlines()
    if len(lines) > MAX_TRACEBACK_LINES:
        keep = MAX_TRACEBACK_LINES // 2
        lines = [*lines[:keep], f"... [{len(lines) - 2 * keep} lines] ...", *lines[-keep:]]
    return "\n".join(lines)


def short_repr(value: Any, limit: int = MAX_REPR_CHARS) -> str:
    """``repr(value)``, never raising, truncated to about ``limit`` characters."""
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ is the user's business
        text = f"<{type(value).__name__} object; repr failed: {type(exc).__name__}: {exc}>"
    return truncate(text, limit)


# --- inspecting variables --------------------------------------------------------------------


def type_name(value: Any) -> str:
    cls = type(value)
    module = cls.__module__
    if module in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{module.split('.')[0]}.{cls.__qualname__}"


def _is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "dtypes") and hasattr(value, "head")


def _is_series(value: Any) -> bool:
    return type(value).__name__ == "Series" and hasattr(value, "dtype") and hasattr(value, "head")


def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not _is_dataframe(value) and not _is_series(value)


def summary(value: Any) -> str:
    """One line: type plus shape / length / value, whatever fits the object."""
    kind = type_name(value)
    try:
        if _is_dataframe(value):
            cols = [str(c) for c in list(value.columns)[:10]]
            more = ", ..." if len(value.columns) > 10 else ""
            return f"{kind} shape={tuple(value.shape)} columns=[{', '.join(cols)}{more}]"
        if _is_series(value):
            return f"{kind} length={len(value)} dtype={value.dtype} name={value.name!r}"
        if _is_array(value):
            return f"{kind} shape={tuple(value.shape)} dtype={value.dtype}"
        if isinstance(value, (str, bytes)):
            return f"{kind} len={len(value)} {short_repr(value, 60)}"
        if isinstance(value, (bool, int, float, complex)) or value is None:
            return f"{kind} {short_repr(value, 60)}"
        if isinstance(value, (list, tuple, set, frozenset, dict)):
            return f"{kind} len={len(value)}"
        if isinstance(value, type):
            return f"class {value.__module__}.{value.__qualname__}"
        if callable(value):
            return f"{kind} {getattr(value, '__qualname__', '')}".rstrip()
    except Exception as exc:  # noqa: BLE001 - user objects' properties may raise anything
        return f"{kind} (could not inspect: {type(exc).__name__})"
    return kind


def user_variables(namespace: Mapping[str, Any], hidden: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The user's own variables: no private names, modules or IPython's built-in names."""
    hidden = hidden or {}
    out = {}
    for name, value in namespace.items():
        if name.startswith("_") or name in _IPYTHON_NAMES:
            continue
        if name in hidden and hidden[name] is value:
            continue
        if type(value).__name__ == "module":
            continue
        out[name] = value
    return out


def list_variables_text(namespace: Mapping[str, Any], hidden: Mapping[str, Any] | None = None) -> str:
    variables = user_variables(namespace, hidden)
    if not variables:
        return "No user variables are defined."
    rows = [f"{name}: {summary(value)}" for name, value in sorted(variables.items())[:MAX_VARIABLES]]
    if len(variables) > MAX_VARIABLES:
        rows.append(f"... and {len(variables) - MAX_VARIABLES} more")
    return "\n".join(rows)


def resolve_name(expr: str, namespace: Mapping[str, Any]) -> Any:
    """``name`` or ``name.attr.attr`` (attribute lookups only, nothing is evaluated)."""
    head, *attrs = expr.strip().split(".")
    if not head.isidentifier():
        raise KeyError(f"{expr!r} is not a variable name")
    if head not in namespace:
        raise KeyError(f"no variable named {head!r}")
    value = namespace[head]
    for attr in attrs:
        if not attr.isidentifier():
            raise KeyError(f"{expr!r} is not a variable name")
        value = getattr(value, attr)
    return value


def describe_text(expr: str, namespace: Mapping[str, Any]) -> str:
    try:
        value = resolve_name(expr, namespace)
    except (KeyError, AttributeError) as exc:
        return f"Error: {exc.args[0] if exc.args else exc}"
    lines = [f"{expr}: {summary(value)}"]
    try:
        if _is_dataframe(value):
            lines.append("dtypes:")
            lines.append(value.dtypes.to_string())
            lines.append("head(5):")
            lines.append(value.head(5).to_string())
            if len(value) > 5:
                lines.append(f"... {len(value) - 5} more rows")
        elif _is_series(value):
            lines.append("head(5):")
            lines.append(value.head(5).to_string())
        elif _is_array(value):
            size = int(getattr(value, "size", 0) or 0)
            kind = getattr(getattr(value, "dtype", None), "kind", "")
            if size and kind in "biuf" and hasattr(value, "min"):
                lines.append(f"min={value.min()!r} max={value.max()!r} mean={value.mean()!r}")
            lines.append(short_repr(value))
        else:
            lines.append(short_repr(value))
            doc = (getattr(value, "__doc__", None) or "") if callable(value) else ""
            if doc.strip():
                lines.append(f"doc: {doc.strip().splitlines()[0]}")
    except Exception as exc:  # noqa: BLE001 - user objects' properties may raise anything
        lines.append(f"(could not inspect further: {type(exc).__name__}: {exc})")
    return truncate("\n".join(lines), MAX_STREAM_CHARS)


# --- the tools -------------------------------------------------------------------------------


def kernel_tools(
    namespace: Callable[[], dict[str, Any]] | dict[str, Any],
    hidden: Callable[[], Mapping[str, Any]] | None = None,
) -> list[FunctionTool]:
    """``run_python`` (approval ``ask``), ``list_variables`` and ``describe_variable`` (``auto``)."""
    get_ns = namespace if callable(namespace) else (lambda: namespace)
    get_hidden = hidden or (lambda: {})

    def run_python(code: str) -> str:
        """Run Python code in the user's Jupyter kernel (their namespace) and return stdout, stderr,
        the value of the last expression and any traceback. Variables you define stay defined."""
        return run_code(code, get_ns())

    def list_variables() -> str:
        """List the user's variables in the kernel with their types and shapes."""
        return list_variables_text(get_ns(), get_hidden())

    def describe_variable(name: str) -> str:
        """Describe one variable (or name.attribute): DataFrames give shape, dtypes and head;
        arrays shape, dtype and range; other objects their repr."""
        return describe_text(name, get_ns())

    tools = [
        FunctionTool.from_callable(run_python, approval="ask"),
        FunctionTool.from_callable(list_variables, approval="auto"),
        FunctionTool.from_callable(describe_variable, approval="auto"),
    ]
    tools[0].runs_code = True
    for tool in tools:
        tool.needs_kernel_thread = True
        tool.description = " ".join((tool.fn.__doc__ or "").split())
    return tools


# --- running on the kernel thread ------------------------------------------------------------


@contextlib.contextmanager
def _interruptible() -> Any:
    """On the main thread: let SIGINT raise KeyboardInterrupt in the tool's code.

    While an async cell runs, ipykernel's SIGINT handler only schedules the cell's cancellation,
    which would wait for blocking code (``time.sleep``) to finish. Yields the previous handler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    try:
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    except (ValueError, OSError):  # pragma: no cover - no signals here
        yield None
        return
    try:
        yield previous
    finally:
        signal.signal(signal.SIGINT, previous)


class ToolInterrupted(Exception):
    """The kernel was interrupted while a tool ran on its thread."""


class KernelRunner:
    """Runs callables on the kernel's main thread, via its asyncio loop.

    While a ``%%agent`` cell awaits its turn (or the kernel is idle and a panel turn runs) the
    kernel's loop is free, so a callback scheduled on it runs between the cell's awaits. When the
    kernel thread is blocked (``blocked()``, the no-autoawait fallback) the callable runs in a
    worker thread instead, and so it does when the kernel thread has not picked it up within
    ``fallback_after`` seconds (a long user cell, or a cell blocked on ``handle.result()``): a
    busy kernel must not hang the turn. A ``KeyboardInterrupt`` (kernel interrupt) inside it
    calls ``on_interrupt`` (cancel the turn) rather than escaping into the kernel's loop.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_interrupt: Callable[[], None] | None = None,
        *,
        fallback_after: float = 10.0,
    ) -> None:
        self.loop = loop
        self.on_interrupt = on_interrupt
        self.fallback_after = fallback_after
        #: How many calls ran on a worker thread because the kernel thread was busy.
        self.fallbacks = 0
        self._blocked = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def blocked(self) -> Any:
        """Mark the kernel thread as blocked (it cannot run callbacks) for the ``with`` body."""
        with self._lock:
            self._blocked += 1
        try:
            yield
        finally:
            with self._lock:
                self._blocked -= 1

    def __call__(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            with claim:
                if future.running() or future.done() or not future.set_running_or_notify_cancel():
                    return
            with _interruptible() as previous:
                try:
                    future.set_result(fn())
                except KeyboardInterrupt:
                    future.set_exception(ToolInterrupted("KeyboardInterrupt: the user interrupted the code."))
                    if self.on_interrupt is not None:
                        self.on_interrupt()
                    if callable(previous) and previous is not signal.default_int_handler:  # ipykernel: cancel the cell
                        previous(signal.SIGINT, None)
                except BaseException as exc:  # noqa: BLE001 - reported through the future
                    future.set_exception(exc)

        claim = threading.Lock()

        def fall_back() -> None:
            if not future.running() and not future.done():
                self.fallbacks += 1
                run()

        if self._blocked or self.loop.is_closed() or not self.loop.is_running():
            threading.Thread(target=run, name="jupyter-agent-tool", daemon=True).start()
        else:
            self.loop.call_soon_threadsafe(run)
            timer = threading.Timer(self.fallback_after, fall_back)
            timer.daemon = True
            timer.start()
            future.add_done_callback(lambda _f: timer.cancel())
        return future


def kernel_loop(shell: Any) -> asyncio.AbstractEventLoop | None:
    """The asyncio loop of the kernel's main thread (None outside a kernel)."""
    io_loop = getattr(getattr(shell, "kernel", None), "io_loop", None)
    loop = getattr(io_loop, "asyncio_loop", None)
    if isinstance(loop, asyncio.AbstractEventLoop):
        return loop
    if threading.current_thread() is threading.main_thread():
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None
    return None


def install_kernel_tools(agent: Any, shell: Any) -> KernelRunner | None:
    """Give ``agent`` the kernel tools over ``shell.user_ns`` and a runner on the kernel thread."""
    loop = kernel_loop(shell)
    runner = KernelRunner(loop, on_interrupt=agent.cancel) if loop is not None else None
    if runner is not None:
        agent.kernel_runner = runner
    if getattr(agent, "kernel_tools", True):
        for tool in kernel_tools(lambda: shell.user_ns, lambda: getattr(shell, "user_ns_hidden", {})):
            if tool.name not in agent.tools:
                agent.add_tool(tool)
    return runner
