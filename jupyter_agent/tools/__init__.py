"""Tools the agent can call: function tools from Python callables (see ``base``)."""

from .base import ApprovalPolicy, FunctionTool, as_tool

__all__ = ["ApprovalPolicy", "FunctionTool", "as_tool"]
