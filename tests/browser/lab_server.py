"""Shared set-up of the browser tests: a real Jupyter server on 127.0.0.1, headless Chromium.

`jupyter_server()` starts JupyterLab (``app="lab"``) or Notebook 7 (``app="notebook"``) in a
temporary root with update checks and news off, waits until it answers, and stops it afterwards.
The server (and so every kernel it starts) gets a canary API key in ``CANARY_ENV``; notebooks use
it with ``%agent connect ... --api-key-env CANARY_ENV``. When the server stops, its log and every
file under its root (saved notebooks, settings, conversations) are searched: the key must appear
nowhere. `assert_no_canary(page)` does the same for the page (DOM, widget state, storage).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
#: What the probe measured on these machines: without the background-networking flags Chromium's
#: connections are refused by the closed network, many at a time.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CANARY_ENV = "JUPYTER_AGENT_TEST_CANARY_KEY"
CANARY = f"sk-canary-browser-{secrets.token_hex(12)}"
#: The Agent side panel of the labextension.
PANEL = "#jupyter-agent-panel"
PROVIDER_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT")


@dataclass(frozen=True)
class JupyterServer:
    base: str
    token: str
    root: Path
    log: Path

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"


def write_notebook(path: Path, *sources: str) -> Path:
    """Write a Python 3 notebook with one code cell per source."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def require_browser() -> None:
    """Fail (not skip) without Chromium: `make test` installs it, so a missing one is a broken set-up."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("JUPYTER_AGENT_SKIP_BROWSER") == "1":
        pytest.skip(f"no Chromium at {CHROMIUM} (JUPYTER_AGENT_SKIP_BROWSER=1)")
    pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser-deps` (or set JUPYTER_AGENT_SKIP_BROWSER=1)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def jupyter_server(
    root: Path,
    *,
    token: str,
    app: str = "lab",
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    with_key: bool = True,
) -> Iterator[JupyterServer]:
    """Run a Jupyter server rooted at ``root`` until the block ends; then check it leaked no key.
    ``args``: more command-line options (e.g. ``--GatewayClient.url=...`` for remote kernels).
    ``with_key=False``: the server's environment lacks the canary key (remote kernels get it from the
    gateway's environment; jupyter_server's gateway client logs the whole environment it starts a
    kernel with, so a key in Lab's environment lands in Lab's log)."""
    require_browser()
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"checkForUpdates": False, "fetchNews": "false"})
    )
    full_env = {k: v for k, v in os.environ.items() if k not in PROVIDER_ENV}
    full_env.update(JUPYTERLAB_SETTINGS_DIR=str(root / ".settings"), JUPYTERLAB_WORKSPACES_DIR=str(root / ".ws"))
    if with_key:
        full_env[CANARY_ENV] = CANARY
    else:
        full_env.pop(CANARY_ENV, None)
    full_env.update(env or {})
    bin_dir = Path(sys.executable).parent
    if app == "lab":
        cmd = [
            str(bin_dir / "jupyter-lab"),
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--LabApp.expose_app_in_browser=True",
        ]
    elif app == "notebook":
        cmd = [str(bin_dir / "jupyter-notebook"), "--JupyterNotebookApp.expose_app_in_browser=True"]
    else:
        raise ValueError(f"unknown app {app!r}")
    if shutil.which(cmd[0]) is None:
        pytest.fail(f"{cmd[0]} is not installed in this environment")
    port = free_port()
    log_path = root / f"{app}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [
            *cmd,
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            *args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=root,
        start_new_session=True,
    )
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root, log_path)
    try:
        wait_until_serving(proc, server.url("api/status"), log_path, app)
        yield server
    finally:
        stop_server(proc, log)
    assert_no_leak_under(root)


@contextmanager
def browser_page(
    *, viewport: tuple[int, int] = (1400, 900), permissions: Sequence[str] = ()
) -> Iterator[tuple[Any, list[str]]]:
    """A page in headless Chromium (30 s default timeout). Yields it and the page errors seen so far
    (the list keeps growing); ``permissions`` are granted to the context (e.g. ``clipboard-read``)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            if permissions:
                context.grant_permissions(list(permissions))
            pg = context.new_page()
            pg.set_default_timeout(30_000)
            errors: list[str] = []
            pg.on("pageerror", lambda e: errors.append(str(e)))
            yield pg, errors
        finally:
            browser.close()


@contextmanager
def lab_page(
    url: str, *, viewport: tuple[int, int] = (1400, 900), permissions: Sequence[str] = ()
) -> Iterator[tuple[Any, list[str]]]:
    """`browser_page` on a JupyterLab ``url`` that opens a notebook, once the splash is gone and the
    notebook's session context exists."""
    with browser_page(viewport=viewport, permissions=permissions) as (pg, errors):
        pg.goto(url)
        pg.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
        pg.wait_for_function(
            "window.jupyterapp && window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.sessionContext"
        )
        yield pg, errors


def agent_errors(errors: list[str]) -> list[str]:
    """The page errors that come from this extension (others are JupyterLab's own)."""
    return [e for e in errors if "jupyter-agent" in e or "AgentPanel" in e]


def wait_until_serving(proc: subprocess.Popen[bytes], request: Any, log_path: Path, what: str) -> None:
    """Poll ``request`` (a URL or ``urllib.request.Request``) until the server answers (60 s)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(request, timeout=2).read()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what} did not start:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.2)  # polling a subprocess's HTTP port: there is no event to await


def stop_server(proc: subprocess.Popen[bytes], log: Any) -> None:
    """Terminate the server (kill it after 10 s) and close its log."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    log.close()


def assert_no_leak_under(root: Path) -> None:
    """No file the server wrote under ``root`` (logs, notebooks, conversations) contains the key."""
    leaks = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]
    assert not leaks, f"the API key leaked into {leaks}"


def assert_no_canary(page: Any) -> None:
    """The key is nowhere in the page: DOM (rendered outputs and widgets), local and session storage."""
    found = page.evaluate(
        """canary => {
            const places = {dom: document.documentElement.outerHTML,
                            localStorage: JSON.stringify({...localStorage}),
                            sessionStorage: JSON.stringify({...sessionStorage})};
            return Object.entries(places).filter(([, text]) => text.includes(canary)).map(([k]) => k);
        }""",
        CANARY,
    )
    assert found == [], f"the API key is visible in the page: {found}"


# --- the Agent panel in JupyterLab: helpers shared by the panel tests -----------------------


def notebook(*sources: str) -> dict[str, Any]:
    """A Python 3 notebook (nbformat JSON) with one code cell per source."""
    cells = [
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": src} for src in sources
    ]
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def shot(pg: Any, name: str) -> Path:
    """Save a screenshot of the page as test-artifacts/<name>.png."""
    path = ARTIFACTS / f"{name}.png"
    pg.screenshot(path=str(path))
    return path


def run_all_cells(pg: Any) -> None:
    """Run every cell of the current notebook and wait until its kernel is idle again."""
    pg.evaluate("""async () => {
        const nb = window.jupyterapp.shell.currentWidget;
        await nb.sessionContext.ready;
        await window.jupyterapp.commands.execute('notebook:run-all-cells');
    }""")
    pg.wait_for_function("""() => {
        const nb = window.jupyterapp.shell.currentWidget;
        const cells = nb.content.widgets;
        return cells.every(c => c.model.type !== 'code' || c.model.executionCount !== null)
            && nb.sessionContext.session.kernel.status === 'idle';
    }""")


def open_panel(pg: Any) -> None:
    """Show the Agent side panel (click its side-bar tab unless it is visible)."""
    if not pg.locator(PANEL).is_visible():
        pg.click(f".lm-TabBar-tab[data-id='{PANEL[1:]}']")
    pg.wait_for_selector(PANEL, state="visible")


def send(pg: Any, text: str) -> None:
    """Type ``text`` into the panel's input and press Enter."""
    pg.fill(f"{PANEL} .jp-AgentPanel-input", text)
    pg.press(f"{PANEL} .jp-AgentPanel-input", "Enter")


def panel_status(pg: Any) -> str:
    return pg.get_attribute(PANEL, "data-status") or ""
