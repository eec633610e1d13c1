"""Tools the agent can call: function tools from Python callables (``base``) and the kernel
tools that run code and inspect variables in the user's namespace (``kernel``)."""

from .base import ApprovalPolicy, FunctionTool, as_tool
from .kernel import KernelRunner, kernel_tools

__all__ = ["ApprovalPolicy", "FunctionTool", "KernelRunner", "as_tool", "kernel_tools"]
