"""jupyter_agent: a model agent inside the Jupyter kernel."""

__version__ = "0.1.0"
