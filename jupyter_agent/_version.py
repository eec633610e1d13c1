"""The package version, apart from ``__init__`` so low layers can read it without importing the frontends."""

__version__ = "0.1.0"
