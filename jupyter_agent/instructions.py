"""Project instructions: ``AGENTS.md`` files added to the agent's instructions.

Like codex, the files are read from the notebook's directory up to the repository root (the first
ancestor holding ``.git``), or up to the home directory when the notebook is not in a repository,
and joined root first, nearest last: the most specific rules come last and win. The total is capped
(32 KiB by default); when the files exceed it, the farthest ones are cut first, so the notebook's own
directory is always heard. Files are re-read when they change (mtime and size), so edits apply on
the next turn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FILENAME = "AGENTS.md"
DEFAULT_CAP = 32 * 1024


@dataclass(frozen=True)
class InstructionPart:
    """One piece of the effective instructions and where it came from."""

    source: str  # "Agent.instructions" or a file path
    text: str
    truncated: bool = False


def search_dirs(start: Path, home: Path | None = None) -> list[Path]:
    """Directories to search, root first: ``start`` up to the repository root, else up to ``home``."""
    start = start.resolve()
    chain = [start, *start.parents]
    for i, directory in enumerate(chain):
        if (directory / ".git").exists():
            return list(reversed(chain[: i + 1]))
    home = (home or Path.home()).resolve()
    if start == home or home in start.parents:
        return list(reversed(chain[: chain.index(home) + 1]))
    return [start]


def find_agents_files(start: Path, home: Path | None = None) -> list[Path]:
    """The ``AGENTS.md`` files that apply to ``start``, root first (nearest last)."""
    return [d / FILENAME for d in search_dirs(start, home) if (d / FILENAME).is_file()]


_cache: dict[Path, tuple[tuple[int, int], str]] = {}


def _read(path: Path) -> str | None:
    try:
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        cached = _cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    _cache[path] = (key, text)
    return text


def project_parts(start: Path, cap: int = DEFAULT_CAP, home: Path | None = None) -> list[InstructionPart]:
    """The ``AGENTS.md`` parts for ``start`` within ``cap`` bytes (UTF-8), root first."""
    budget = max(cap, 0)
    kept: list[InstructionPart] = []
    for path in reversed(find_agents_files(start, home)):  # nearest first: it keeps its budget
        text = (_read(path) or "").strip()
        if not text:
            continue
        data = text.encode("utf-8")
        if budget <= 0:
            kept.append(InstructionPart(str(path), "", truncated=True))
            continue
        truncated = len(data) > budget
        if truncated:
            text = data[:budget].decode("utf-8", errors="ignore").rstrip()
        budget -= len(text.encode("utf-8"))
        kept.append(InstructionPart(str(path), text, truncated))
    return list(reversed(kept))


def assemble(parts: list[InstructionPart]) -> str:
    """The instructions text sent to the model: base first, then each file under a header naming it."""
    chunks = []
    for part in parts:
        if not part.text:
            continue
        if part.source.endswith(FILENAME):
            chunks.append(f"# Project instructions from {part.source}\n\n{part.text}")
        else:
            chunks.append(part.text)
    return "\n\n".join(chunks)


def notebook_dir(user_ns: dict | None = None) -> Path:
    """The notebook's directory: the session's absolute notebook path, else the kernel's cwd."""
    ns = user_ns or {}
    for value in (ns.get("__session__"), os.environ.get("JPY_SESSION_NAME"), ns.get("__vsc_ipynb_file__")):
        if isinstance(value, str) and value.strip():
            path = Path(value.strip()).expanduser()
            if path.is_absolute() and path.parent.is_dir():
                return path.parent
            break  # a server-relative path: Jupyter starts the kernel in the notebook's directory
    return Path.cwd()
