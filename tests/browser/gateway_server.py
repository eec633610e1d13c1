"""Jupyter Kernel Gateway for the remote-kernel tests and benchmark: ``kernel_gateway()`` runs
``jupyter kernelgateway`` on 127.0.0.1 in its own directory and gives the JupyterLab options that
send every kernel to it (``lab_args``). Options as in the README's "Remote kernels" section:

- ``list_kernels=True``: without it Lab's ``/api/status`` and kernel listing get 403 from the gateway.
- ``env_process_whitelist`` (repeated, one variable each: a comma list silently becomes one name)
  passes the gateway's API-key variable (here the canary key) and the history directory on to its
  kernels, which otherwise get little more than ``PATH``.
- No ``JPY_SESSION_NAME`` forwarding: the kernel cannot see which notebook it serves, so the panel's
  ``hello`` names it (saved conversations are keyed by it).

The gateway's log and every file under its directory are searched for the canary key afterwards.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .lab_server import (
    CANARY,
    CANARY_ENV,
    PROVIDER_ENV,
    assert_no_leak_under,
    free_port,
    stop_server,
    wait_until_serving,
)


@dataclass(frozen=True)
class KernelGateway:
    url: str
    token: str
    root: Path
    log: Path
    lab_args: list[str] = field(default_factory=list)


@contextmanager
def kernel_gateway(
    root: Path, *, env: dict[str, str] | None = None, forward: Sequence[str] = ()
) -> Iterator[KernelGateway]:
    """Run Kernel Gateway in ``root`` until the block ends. ``env`` is the gateway's environment on
    top of this process's (provider keys removed, the canary key added); ``forward`` names more of
    its variables its kernels get (the canary key's variable always)."""
    exe = Path(sys.executable).parent / "jupyter-kernelgateway"
    if not exe.exists():
        pytest.fail("jupyter-kernelgateway is not installed (pip install -e '.[test]')")
    token = secrets.token_hex(16)
    full_env = {k: v for k, v in os.environ.items() if k not in PROVIDER_ENV and k != "JPY_SESSION_NAME"}
    full_env[CANARY_ENV] = CANARY
    full_env.update(env or {})
    port = free_port()
    whitelist = [f"--KernelGatewayApp.env_process_whitelist={name}" for name in (CANARY_ENV, *forward)]
    log_path = root / "kernelgateway.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [
            str(exe),
            "--KernelGatewayApp.ip=127.0.0.1",
            f"--KernelGatewayApp.port={port}",
            "--KernelGatewayApp.port_retries=0",
            f"--KernelGatewayApp.auth_token={token}",
            "--JupyterWebsocketPersonality.list_kernels=True",
            *whitelist,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=root,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    gateway = KernelGateway(
        url, token, root, log_path, [f"--GatewayClient.url={url}", f"--GatewayClient.auth_token={token}"]
    )
    request = urllib.request.Request(f"{url}/api/kernelspecs", headers={"Authorization": f"token {token}"})
    try:
        wait_until_serving(proc, request, log_path, "kernel gateway")
        yield gateway
    finally:
        stop_server(proc, log)
    assert_no_leak_under(root)


def wait_for_idle_kernel(pg: Any) -> int:
    """Wait until the notebook's gateway kernel is idle. Lab opens two websockets to the gateway
    for one kernel and the kernel's replies sometimes go to the stale one: the kernel then never
    leaves "starting" for this page. Kernel → Reconnect to Kernel fixes it, as for a user; returns
    how many reconnects that took."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    pg.wait_for_function(
        "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel; }",
        timeout=60_000,
    )
    for reconnects in range(6):
        try:
            pg.wait_for_function(
                "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                timeout=20_000,
            )
            return reconnects
        except PlaywrightTimeout:
            pg.evaluate("() => window.jupyterapp.commands.execute('kernelmenu:reconnect-to-kernel')")
    raise AssertionError("the gateway kernel never became idle, even after 6 reconnects")
