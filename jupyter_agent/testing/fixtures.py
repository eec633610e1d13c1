"""Where the shared data fixtures live (recorded OpenAI streams, OpenAI's published schemas).

They come from other public projects and are not part of this repository: they sit next to the
checkout in ``../shared/fixtures/`` (CI always has them), or under the directory named by the
``JUPYTER_AGENT_FIXTURES`` environment variable. Tests reach them through the ``recorded_streams`` and
``openai_spec`` fixtures in ``tests/conftest.py``, which skip with this module's reason when absent.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "JUPYTER_AGENT_FIXTURES"
RECORDED_STREAMS = "recorded-streams"
OPENAI_SPEC = "openai-spec"
OPENAI_SPEC_FILE = "openai-spec-subset.json"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def fixtures_root(repo_root: Path | None = None) -> Path:
    """``$JUPYTER_AGENT_FIXTURES`` if set, else ``<repo root>/../shared/fixtures``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    return ((repo_root or _REPO_ROOT) / ".." / "shared" / "fixtures").resolve()


def shared_fixture(kind: str, repo_root: Path | None = None) -> tuple[Path | None, str]:
    """(directory, "") when ``kind`` is present, else (None, a reason naming where it was looked for)."""
    path = fixtures_root(repo_root) / kind
    if path.is_dir() and any(path.iterdir()):
        return path, ""
    return None, (
        f"shared fixtures {kind!r} not found at {path} (they are not part of the repository: "
        f"check out ../shared/fixtures next to the repo, or set {ENV_VAR} to the directory holding {kind}/)"
    )
