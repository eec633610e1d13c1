"""Session-wide test set-up: saved conversations go to a temporary directory, never to the
user's Jupyter data dir (kernels started by tests inherit the variable)."""

from __future__ import annotations

import os
import shutil
import tempfile

_HISTORY_DIR = tempfile.mkdtemp(prefix="jupyter-agent-test-history-")
os.environ.setdefault("JUPYTER_AGENT_HISTORY_DIR", _HISTORY_DIR)


def pytest_sessionfinish(session, exitstatus):  # the pytest hook signature, unused arguments included
    shutil.rmtree(_HISTORY_DIR, ignore_errors=True)
