"""Kernel side of the JupyterLab side panel: a Jupyter comm bridge to the notebook's agent.

The panel opens a comm to the target ``"jupyter_agent"`` (registered by ``load_ipython_extension``)
with ``{"type": "hello", "version": 1}`` as its open data. Every message in both directions is a
typed, validated pydantic model (a discriminated union on ``type``); anything malformed or too
large gets an ``error`` reply and changes nothing.

panel -> kernel: ``hello``, ``send`` (start a turn), ``stop``, ``approval``, ``history``,
``notebook`` (the document, answering ``notebook_request``; ``notebook_bridge.py``), ``fix`` (a
turn that explains a cell's error and proposes the fix; ``fix.py``).
kernel -> panel: ``state`` (model, provider, transport, rate limits, busy), ``history``
(``agent.transcript()``), ``event`` (``AgentEvent.to_dict()`` of every turn, from cells and panel
alike), ``error``, ``notebook_request``.

Events arrive on the agent thread. They go into a queue that a small sender thread per comm
drains: consecutive text/reasoning deltas of one item are merged, so a model streaming thousands
of tiny deltas a second costs the kernel tens of comm messages a second, not thousands.
ipykernel's iopub socket is thread-safe, so the sender thread calls ``comm.send`` directly.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import events as ev
from .comm_messages import (
    MAX_ID_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_TEXT_BYTES,
    PROTOCOL_VERSION,
    TARGET_NAME,
    Approval,
    ErrorMessage,
    EventMessage,
    Fix,
    Hello,
    HistoryMessage,
    HistoryRequest,
    KernelMessage,
    MessageError,
    NotebookRequest,
    NotebookSnapshot,
    PanelMessage,
    Send,
    StateMessage,
    Stop,
    TranscriptEntry,
    _kernel_adapter,
    _Msg,
    _panel_adapter,
    coalesce,
    parse_panel_message,
    validate_kernel_message,
)

if TYPE_CHECKING:  # pragma: no cover
    from .agent import Agent

log = logging.getLogger("jupyter_agent.comm")

#: Pause between two drains of the event queue (merges deltas; bounds the comm message rate).
FRAME_INTERVAL = 1 / 50


# --- the bridge ------------------------------------------------------------------------------


class PanelBridge:
    """One open panel comm: validates requests, drives the agent, forwards its events."""

    def __init__(self, comm: Any, get_agent: Callable[[], Agent]) -> None:
        self.comm = comm
        self._get_agent = get_agent
        self._agent: Agent | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._running: set[str] = set()
        #: Once a turn event was seen, ``_running`` is the truth; before, ask the agent.
        self._seen_turn = False
        #: ``agent.history_version`` the panel last got a ``history`` message for (resume/reset).
        self._history_version: int | None = None
        self._closed = False
        self._document: Any = None  # notebook_bridge.DocumentSource once the panel offers the document
        self._send_lock = threading.Lock()
        self._sender = threading.Thread(target=self._pump, name="jupyter-agent-comm", daemon=True)
        self._sender.start()
        comm.on_msg(self._on_msg)
        comm.on_close(self._on_close)

    # -- agent ----------------------------------------------------------------------------

    @property
    def agent(self) -> Agent:
        if self._agent is None:
            self._agent = self._get_agent()
            self._unsubscribe = self._agent.subscribe(self._on_event)
            version = getattr(self._agent, "history_version", None)
            self._history_version = version if isinstance(version, int) else None
        return self._agent

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def _on_event(self, event: ev.AgentEvent) -> None:
        """Agent-thread callback: track busy, queue the event for the sender thread."""
        if isinstance(event, ev.TurnStarted):
            self._seen_turn = True
            self._running.add(event.turn_id)
        elif isinstance(event, ev.TurnDone):
            self._seen_turn = True
            self._running.discard(event.turn_id)
        if not self._closed:
            self._queue.put(event.to_dict())

    def _pump(self) -> None:
        import time

        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            boundary = False
            for event in coalesce(batch):
                self._send({"type": "event", "event": event})
                boundary = boundary or event["type"] in ("turn_started", "turn_done")
            if not self._closed and self._history_replaced():
                self.send_history()  # %agent resume / reset replaced the conversation
            if boundary and not self._closed:
                # Model, server model, rate limits and busy change at turn boundaries.
                try:
                    self._send(self.state())
                except Exception:  # a failed refresh waits for the next boundary
                    log.debug("state refresh failed", exc_info=True)
            if stop:
                return
            time.sleep(FRAME_INTERVAL)

    # -- comm I/O -------------------------------------------------------------------------

    def _send(self, data: dict[str, Any]) -> None:
        if self._closed:
            return
        try:
            payload = validate_kernel_message(data)
        except ValidationError:
            log.exception("refusing to send an invalid panel message")
            return
        with self._send_lock:
            try:
                self.comm.send(payload)
            except Exception:  # a dead iopub must not break the agent
                log.debug("comm send failed", exc_info=True)

    def send_error(self, message: str, request_type: str | None = None) -> None:
        self._send({"type": "error", "message": message, "request_type": request_type})

    def state(self) -> dict[str, Any]:
        agent = self.agent
        try:
            model, provider = agent.model_name, agent.provider_name
        except Exception as exc:  # noqa: BLE001 - no provider configured yet
            model, provider = "", f"unconfigured ({exc})"
        limits = {k: _snapshot_dict(v) for k, v in agent.rate_limits.items()}
        return {
            "type": "state",
            "model": model,
            "provider": provider,
            "transport": str(agent.transport),
            "rate_limits": limits,
            "busy": self.busy or (not self._seen_turn and agent.busy),
        }

    def send_state(self) -> None:
        self._send(self.state())

    def _history_replaced(self) -> bool:
        version = getattr(self._agent, "history_version", None)
        if not isinstance(version, int):
            return False
        if self._history_version is None:
            self._history_version = version
            return False
        return version != self._history_version

    def send_history(self) -> None:
        version = getattr(self._agent, "history_version", None)
        if isinstance(version, int):
            self._history_version = version
        messages = [
            {"role": str(m.get("role", "")), "text": str(m.get("text", "")), "phase": m.get("phase")}
            for m in self.agent.transcript()
        ]
        self._send({"type": "history", "messages": messages})

    def _on_msg(self, msg: dict[str, Any]) -> None:
        self.handle(msg.get("content", {}).get("data"))

    def _on_close(self, msg: dict[str, Any] | None = None) -> None:
        self.close()

    def close(self) -> None:
        """Stop forwarding (comm closed by the panel or the kernel shutting down)."""
        if self._closed:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._closed = True
        from . import notebook_bridge

        notebook_bridge.detach(self._document)
        self._queue.put(None)

    def _start_fix(self, cell_id: str) -> None:
        """Start the fix turn of ``cell_id``; the cell is read from the document off this thread
        (the comm handler must stay free to receive the document's answer)."""
        if self._document is None:
            self.send_error("Fixing a cell needs the notebook bridge of the JupyterLab extension.", "fix")
            return
        args = (self, self._document, cell_id)
        threading.Thread(target=_fix_in_thread, args=args, name="jupyter-agent-fix", daemon=True).start()

    def _resume(self) -> None:
        """Restore the saved conversation after a restart (nothing to do when the agent has one)."""
        agent = self.agent
        if getattr(agent, "store", None) is None or getattr(agent, "history", None):
            return
        try:
            agent.resume()
        except Exception as exc:  # noqa: BLE001 - an unreadable store must not break the panel
            log.warning("resume after restart failed: %s", exc)
            self.send_error(f"could not restore the saved conversation: {exc}", "hello")

    def _adopt_notebook(self, path: str) -> None:
        """Use the panel's notebook path for saved conversations when the kernel cannot see its own."""
        store = self.agent.store
        if store is None or not hasattr(store, "adopt_notebook"):
            return
        try:
            store.adopt_notebook(path)
        except (OSError, ValueError) as exc:
            log.warning("cannot key conversations by the panel's notebook path: %s", exc)
            self.send_error(f"could not use the notebook path for saved conversations: {exc}", "hello")

    def handle(self, data: Any) -> None:
        """Validate and apply one panel message; reply ``error`` on anything bad."""
        try:
            msg = parse_panel_message(data)
        except MessageError as exc:
            self.send_error(str(exc), exc.request_type)
            return
        try:
            if isinstance(msg, Hello):
                if msg.version != PROTOCOL_VERSION:
                    self.send_error(
                        f"protocol version {msg.version} is not supported (kernel speaks {PROTOCOL_VERSION})", "hello"
                    )
                    return
                if msg.notebook:
                    self._adopt_notebook(msg.notebook)
                if msg.resume:
                    self._resume()
                if "notebook" in msg.features:
                    from . import notebook_bridge

                    self.agent  # noqa: B018 - creates the agent, which installs the notebook tools
                    notebook_bridge.detach(self._document)
                    self._document = notebook_bridge.attach(self._send)
                self.send_state()
                self.send_history()
            elif isinstance(msg, HistoryRequest):
                self.send_history()
            elif isinstance(msg, Send):
                self.agent.start(msg.text, source="panel")
            elif isinstance(msg, Fix):
                self._start_fix(msg.cell_id)
            elif isinstance(msg, Stop):
                self.agent.cancel()
            elif isinstance(msg, Approval):
                self.agent.resolve_approval(msg.call_id, msg.decision)
            elif isinstance(msg, NotebookSnapshot):
                if self._document is None or not self._document.resolve(msg.id, msg):
                    self.send_error(f"no notebook request {msg.id!r} is waiting", "notebook")
        except Exception as exc:  # report, never kill the kernel's comm handler
            log.exception("panel request %s failed", msg.type)
            self.send_error(f"{msg.type} failed: {exc}", msg.type)


def _fix_in_thread(bridge: PanelBridge, document: Any, cell_id: str) -> None:
    from . import fix

    try:
        failure = fix.document_failure(document, cell_id)
        agent = bridge.agent
        agent.start(fix.fix_prompt(failure, can_edit=fix.can_edit(agent)), source="panel", title=fix.fix_title(failure))
    except Exception as exc:  # noqa: BLE001 - told to the panel: e.g. the cell shows no error, a turn runs
        log.info("fix of cell %s not started: %s", cell_id, exc)
        bridge.send_error(f"Cannot fix this cell: {exc}", "fix")


def _snapshot_dict(snapshot: Any) -> dict[str, Any]:
    if isinstance(snapshot, dict):
        return snapshot
    return ev.jsonable(snapshot)


#: Open bridges in this kernel (tests and diagnostics).
bridges: list[PanelBridge] = []


def register_comm_target(shell: Any, get_agent: Callable[[], Agent]) -> None:
    """Register the ``jupyter_agent`` comm target; each panel that opens it gets a `PanelBridge`."""
    manager = _comm_manager(shell)
    if manager is None:
        log.debug("no comm manager (not running in ipykernel): side panel unavailable")
        return

    def on_open(comm: Any, open_msg: dict[str, Any]) -> None:
        bridge = PanelBridge(comm, get_agent)
        bridges[:] = [b for b in bridges if not b._closed] + [bridge]
        data = open_msg.get("content", {}).get("data")
        if data:
            bridge.handle(data)

    manager.register_target(TARGET_NAME, on_open)


def unregister_comm_target(shell: Any) -> None:
    manager = _comm_manager(shell)
    if manager is not None:
        manager.unregister_target(TARGET_NAME, None)
    for bridge in list(bridges):
        bridge.close()
    bridges.clear()


def _comm_manager(shell: Any) -> Any:
    kernel = getattr(shell, "kernel", None)
    manager = getattr(kernel, "comm_manager", None)
    if manager is not None:
        return manager
    if kernel is None:
        return None
    try:
        import comm as comm_pkg

        return comm_pkg.get_comm_manager()
    except Exception:  # noqa: BLE001 - no kernel comm manager here (plain IPython): no panel
        return None


__all__ = [
    "Approval",
    "ErrorMessage",
    "EventMessage",
    "Fix",
    "Hello",
    "HistoryMessage",
    "HistoryRequest",
    "KernelMessage",
    "MAX_ID_CHARS",
    "MAX_MESSAGE_BYTES",
    "MAX_TEXT_BYTES",
    "MessageError",
    "NotebookRequest",
    "NotebookSnapshot",
    "PROTOCOL_VERSION",
    "PanelMessage",
    "Send",
    "StateMessage",
    "Stop",
    "TARGET_NAME",
    "TranscriptEntry",
    "_Msg",
    "_kernel_adapter",
    "_panel_adapter",
    "coalesce",
    "parse_panel_message",
    "validate_kernel_message",
    "FRAME_INTERVAL",
    "PanelBridge",
    "register_comm_target",
    "unregister_comm_target",
]
