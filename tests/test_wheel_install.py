"""The built wheel ships the prebuilt labextension: it installs and is enabled with no Node around.

A clean copy of the tracked sources (no node_modules, no built extension) is built with
``pip wheel`` (hatch-jupyter-builder runs jlpm there), then the wheel goes into a fresh venv whose
PATH holds only that venv's bin directory, and ``jupyter labextension list`` must show
``jupyter-agent`` enabled and OK, installed by the Python package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return [f for f in out.stdout.splitlines() if (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None:
        pytest.skip("building the wheel from source needs Node (installing it does not)")
    src = tmp_path_factory.mktemp("src")
    for rel in tracked_files():
        dest = src / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    assert not (src / "jupyter_agent" / "labextension").exists()
    assert not (src / "labextension" / "node_modules").exists()
    dist = tmp_path_factory.mktemp("dist")
    t0 = time.perf_counter()
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    print(f"\nwheel built from a clean tree in {time.perf_counter() - t0:.1f}s")
    (whl,) = dist.glob("jupyter_agent-*.whl")
    return whl


def test_wheel_contains_the_prebuilt_extension(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    prefix = "jupyter_agent-0.1.0.data/data/share/jupyter/labextensions/jupyter-agent/"
    for required in ("package.json", "install.json", "static/style.js", "schemas/jupyter-agent/plugin.json"):
        assert prefix + required in names, required
    assert any(n.startswith(prefix + "static/remoteEntry.") for n in names)
    assert "jupyter_agent/comm.py" in names and "jupyter_agent/_labextension.py" in names
    assert not any("node_modules" in n or "/.yarn/" in n for n in names)


def test_wheel_installs_enabled_without_node(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = str(bin_dir)  # nothing else: no node, no npm, no jlpm
    env["HOME"] = str(tmp_path / "home")  # no user-level extensions either
    assert shutil.which("node", path=env["PATH"]) is None
    t0 = time.perf_counter()
    inst = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--progress-bar", "off", str(wheel), "jupyterlab"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert inst.returncode == 0, inst.stdout[-3000:] + inst.stderr[-3000:]
    print(f"\nwheel + jupyterlab installed into a fresh venv in {time.perf_counter() - t0:.1f}s")
    listing = subprocess.run(
        [str(bin_dir / "jupyter"), "labextension", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    text = listing.stdout + listing.stderr
    lines = [ln.strip() for ln in text.splitlines()]
    ours = [ln for ln in lines if ln.startswith("jupyter-agent ")]
    assert ours, text
    assert "enabled" in ours[0] and "OK" in ours[0] and "(python, jupyter_agent)" in ours[0], ours[0]
    # Listed from the fresh venv's own share/jupyter/labextensions.
    section = [ln for ln in lines[: lines.index(ours[0])] if ln.startswith("/")][-1]
    assert section == str(venv / "share" / "jupyter" / "labextensions"), text
    check = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import jupyter_agent, jupyter_agent.comm as c; from jupyter_agent._labextension import _jupyter_labextension_paths as p; print(c.TARGET_NAME, p())",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert "jupyter_agent [{'src': 'labextension', 'dest': 'jupyter-agent'}]" in check.stdout
