"""Drive a real ipykernel through jupyter_client, as a notebook front end would."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import start_new_kernel


@dataclass
class ExecResult:
    status: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    interrupt_to_reply: float | None = None

    @property
    def text(self) -> str:
        """All text output: streams, text/plain and text/markdown, errors."""
        parts = []
        for msg in self.outputs:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                parts.append(content["text"])
            elif msg["msg_type"] in ("display_data", "execute_result", "update_display_data"):
                data = content.get("data", {})
                parts.append(data.get("text/markdown") or data.get("text/plain", ""))
            elif msg["msg_type"] == "error":
                parts.append(f"{content['ename']}: {content['evalue']}")
        return "\n".join(parts)

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.outputs if m["msg_type"] in types]


class KernelDriver:
    def __init__(self, cwd: str | None = None, env: dict[str, str] | None = None) -> None:
        kernel_env = dict(os.environ)
        for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
            kernel_env.pop(key, None)
        kernel_env.update(env or {})
        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=cwd, env=kernel_env)

    def run(
        self,
        code: str,
        timeout: float = 60.0,
        interrupt_after: float | None = None,
        interrupt_when: Callable[[], bool] | None = None,
    ) -> ExecResult:
        """Execute ``code``; interrupt the kernel after a delay or once ``interrupt_when()`` holds."""
        msg_id = self.kc.execute(code)
        start = time.perf_counter()
        outputs: list[dict[str, Any]] = []
        interrupted_at = None
        while True:
            now = time.perf_counter()
            if now - start > timeout:
                raise TimeoutError(f"cell did not finish in {timeout}s: {code[:80]!r}")
            due = (interrupt_after is not None and now - start >= interrupt_after) or (
                interrupt_when is not None and interrupt_when()
            )
            if due and interrupted_at is None:
                self.km.interrupt_kernel()
                interrupted_at = time.perf_counter()
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            if msg["msg_type"] not in ("status", "execute_input"):
                outputs.append(msg)
        reply = self.kc.get_shell_msg(timeout=10)
        end = time.perf_counter()
        return ExecResult(
            status=reply["content"]["status"],
            outputs=outputs,
            seconds=end - start,
            interrupt_to_reply=(end - interrupted_at) if interrupted_at else None,
        )

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
