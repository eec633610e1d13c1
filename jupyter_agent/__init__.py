"""jupyter_agent: a model agent inside the Jupyter kernel.

``%load_ext jupyter_agent`` registers ``%agent`` / ``%%agent`` and the side panel's comm target;
``from jupyter_agent import Agent`` gives the plain Python API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from .agent import Agent, Turn, TurnHandle

__all__ = [
    "Agent",
    "Turn",
    "TurnHandle",
    "get_agent",
    "load_ipython_extension",
    "unload_ipython_extension",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Lazy: importing the package (e.g. for labextension discovery) stays cheap.
    if name in ("Agent", "Turn", "TurnHandle"):
        from . import agent

        return getattr(agent, name)
    if name == "get_agent":
        from .magics import get_agent

        return get_agent
    raise AttributeError(name)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_agent``: magics, the %%agent rewrite and the side-panel comm target."""
    from . import magics
    from .comm import register_comm_target

    magics.register(ipython)
    register_comm_target(ipython, lambda: magics.get_agent(ipython))


def unload_ipython_extension(ipython: Any) -> None:
    from . import magics

    magics.unregister(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-agent"}]
