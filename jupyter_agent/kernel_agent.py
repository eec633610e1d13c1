"""The kernel's one ``Agent``: created on first use, with its kernel tools, the notebook bridge,
the project directory for AGENTS.md discovery and the conversation store of this notebook."""

from __future__ import annotations

import threading
from typing import Any

from .agent import Agent
from .instructions import notebook_dir

__all__ = ["get_agent"]

_default_agent: Agent | None = None
_lock = threading.Lock()


def get_agent(shell: Any | None = None) -> Agent:
    """The notebook's agent (one per kernel), created on first use."""
    global _default_agent
    with _lock:
        if _default_agent is None:
            if shell is None:
                from IPython import get_ipython

                shell = get_ipython()
            _default_agent = Agent(parent=shell) if shell is not None else Agent()
            if shell is not None and _default_agent not in shell.configurables:
                shell.configurables.append(_default_agent)
            if shell is not None and getattr(shell, "user_ns", None) is not None:
                _setup_kernel(_default_agent, shell)
        return _default_agent


def _setup_kernel(agent: Agent, shell: Any) -> None:
    """Kernel tools on the kernel thread, and conversations saved per notebook."""
    from .store import ConversationStore, notebook_identity
    from .tools.kernel import install_kernel_tools

    try:
        install_kernel_tools(agent, shell)
    except Exception:  # the agent still answers without tools
        import logging

        logging.getLogger("jupyter_agent").exception("kernel tools not installed")
    if getattr(agent, "kernel_tools", True):
        from . import notebook_bridge

        notebook_bridge.install(agent, shell)
    try:
        agent.project_dir = str(notebook_dir(shell.user_ns))  # AGENTS.md discovery starts here
    except OSError:  # the kernel's cwd is gone: discovery then starts at each turn's cwd
        pass
    if agent.persist:
        store = ConversationStore(
            agent.history_dir or None,
            notebook_identity(shell.user_ns),
            secrets=agent.secret_values,
        )
        agent.attach_store(store)
        if agent.auto_resume:
            try:
                agent.resume()
            except Exception:  # an unreadable store must not stop the extension loading
                import logging

                logging.getLogger("jupyter_agent").exception("auto-resume failed")
