"""Where the prebuilt JupyterLab extension lives inside the package (``jupyter labextension``)."""

from __future__ import annotations


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """``jupyter_agent/labextension`` is installed as ``share/jupyter/labextensions/jupyter-agent``."""
    return [{"src": "labextension", "dest": "jupyter-agent"}]
