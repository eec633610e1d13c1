"""Persistent conversations: an append-only JSONL file per conversation, per notebook.

Layout: ``<root>/<notebook key>/<conversation id>.jsonl``. The first line describes the
conversation (``{"type": "conversation", ...}``), every later line is one history item as the
agent appended it (``{"type": "item", "item": {...}}``). Each append is written and flushed to
the OS before the agent goes on, so a kernel process that dies mid-turn loses nothing already
received; the fsync follows at once on a background thread (a machine crash loses at most the
last few milliseconds), so the agent loop never waits on the disk (``sync()`` waits). A torn
last line (a crash mid-write) is skipped on load and never glued to the next append. Secrets are never written: the agent's API key and anything shaped like an OpenAI key
are redacted from every string except ``encrypted_content`` (opaque, replayed verbatim).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("jupyter_agent.store")

FORMAT_VERSION = 1
REDACTED = "[redacted]"
_KEY_PATTERN = re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}")
_OPAQUE_FIELDS = frozenset({"encrypted_content"})


def default_root() -> Path:
    """``$JUPYTER_AGENT_HISTORY_DIR``, else ``<jupyter data dir>/agent/conversations``."""
    env = os.environ.get("JUPYTER_AGENT_HISTORY_DIR")
    if env:
        return Path(env).expanduser()
    from jupyter_core.paths import jupyter_data_dir  # a dependency of ipykernel

    return Path(jupyter_data_dir()) / "agent" / "conversations"


#: Last path component of the identity of a kernel that cannot see its notebook.
_UNKNOWN_NOTEBOOK = "(kernel)"
#: Longest notebook path a frontend may name (the panel's hello).
MAX_NOTEBOOK_CHARS = 4096


def notebook_identity(user_ns: dict[str, Any] | None = None) -> str:
    """The notebook this kernel serves: ``__session__`` / ``JPY_SESSION_NAME`` (set by
    ipykernel from Jupyter Server), VS Code's ``__vsc_ipynb_file__``, else the kernel's cwd
    (``<cwd>/(kernel)``: every notebook of that directory shares it, see `is_unknown_notebook`)."""
    ns = user_ns or {}
    for value in (ns.get("__session__"), os.environ.get("JPY_SESSION_NAME"), ns.get("__vsc_ipynb_file__")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return os.path.join(os.getcwd(), _UNKNOWN_NOTEBOOK)


def is_unknown_notebook(identity: str) -> bool:
    """True for the cwd fallback of `notebook_identity`: the kernel could not see its notebook
    (e.g. a Kernel Gateway kernel, which gets neither ``JPY_SESSION_NAME`` nor the notebook's cwd)."""
    return os.path.basename(identity) == _UNKNOWN_NOTEBOOK


def notebook_key(identity: str) -> str:
    """A directory name for ``identity``: readable stem plus a hash of the whole path."""
    stem = Path(identity).stem or "kernel"
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")[:40] or "kernel"
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{stem}-{digest}"


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` with secrets replaced in every string (opaque fields kept)."""
    keys = [s for s in secrets if s and len(s) >= 8]

    def clean(text: str) -> str:
        for key in keys:
            text = text.replace(key, REDACTED)
        return _KEY_PATTERN.sub(REDACTED, text)

    def walk(obj: Any) -> Any:
        if isinstance(obj, str):
            return clean(obj)
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        if isinstance(obj, dict):
            return {k: (v if k in _OPAQUE_FIELDS else walk(v)) for k, v in obj.items()}
        return obj

    return walk(value)


@dataclass
class StoredConversation:
    """A conversation read back from disk."""

    id: str
    path: Path
    created: float
    notebook: str
    items: list[dict[str, Any]] = field(default_factory=list)
    skipped_lines: int = 0

    @property
    def user_messages(self) -> list[str]:
        out = []
        for item in self.items:
            if item.get("type", "message") == "message" and item.get("role") == "user" and not is_warning_item(item):
                out.append(_content_text(item.get("content")))
        return out


class ConversationStore:
    """Append-only conversation files for one notebook."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        notebook: str | None = None,
        secrets: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self.notebook = notebook or notebook_identity()
        self.root = Path(root) if root is not None else default_root()
        self.directory = self.root / notebook_key(self.notebook)
        self.secrets = secrets or (lambda: ())
        self._lock = threading.Lock()
        self._open_id: str | None = None
        self._fh: Any = None
        self._dirty = threading.Condition()
        self._pending = 0  # appends written but not yet fsync'ed
        self._syncer: threading.Thread | None = None

    # -- identity ---------------------------------------------------------------------------

    def adopt_notebook(self, path: str) -> bool:
        """Key conversations by ``path``, the notebook the frontend names (the panel's hello), when
        this kernel could not see its notebook; a known identity is kept. The conversation this
        kernel is writing moves along, so nothing it said stays under the shared fallback key.
        Returns True when the identity changed."""
        path = path.strip()
        if not path or len(path) > MAX_NOTEBOOK_CHARS or "\x00" in path:
            raise ValueError("not a notebook path")
        if not is_unknown_notebook(self.notebook) or path == self.notebook:
            return False
        with self._lock:
            current = self._open_id
            self._close_locked()
            old_directory = self.directory
            self.notebook = path
            self.directory = self.root / notebook_key(path)
            if current is not None:
                old, new = old_directory / f"{current}.jsonl", self.path_for(current)
                if old.is_file() and not new.exists():
                    new.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(old, new)
        log.info("conversations keyed by the frontend's notebook path")
        return True

    # -- writing ----------------------------------------------------------------------------

    def path_for(self, conversation_id: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", conversation_id) or conversation_id.startswith("."):
            raise ValueError(f"bad conversation id {conversation_id!r}")
        return self.directory / f"{conversation_id}.jsonl"

    def append(self, conversation_id: str, item: dict[str, Any]) -> None:
        """Write one history item (write + flush now, fsync on the background thread)."""
        self._write(conversation_id, {"type": "item", "item": redact(item, self.secrets())})

    def compacted(self, conversation_id: str, items: list[dict[str, Any]]) -> None:
        """Record a compaction (issue 14): on load, ``items`` replace everything before this line."""
        self._write(conversation_id, {"type": "compacted", "items": redact(items, self.secrets())})

    def _write(self, conversation_id: str, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            fh = self._file(conversation_id)
            fh.write(line.encode("utf-8", "surrogatepass") + b"\n")
            fh.flush()
        with self._dirty:
            self._pending += 1
            self._dirty.notify_all()
            if self._syncer is None or not self._syncer.is_alive():
                self._syncer = threading.Thread(target=self._sync_loop, name="jupyter-agent-store", daemon=True)
                self._syncer.start()

    def sync(self, timeout: float | None = 10.0) -> bool:
        """Wait until every append so far is fsync'ed; False on timeout."""
        with self._dirty:
            return self._dirty.wait_for(lambda: self._pending == 0, timeout)

    def _sync_loop(self) -> None:
        while True:
            with self._dirty:
                self._dirty.wait_for(lambda: self._pending > 0)
                batch = self._pending
            self._fsync_open_file()
            with self._dirty:
                self._pending -= batch
                self._dirty.notify_all()

    def _fsync_open_file(self) -> None:
        with self._lock:
            if self._fh is None:
                return
            fd = os.dup(self._fh.fileno())  # fsync outside the lock: appends never wait on the disk
        try:
            os.fsync(fd)
        except OSError:  # pragma: no cover - e.g. a file system without fsync
            log.debug("fsync failed", exc_info=True)
        finally:
            os.close(fd)

    def _file(self, conversation_id: str) -> Any:
        if self._open_id == conversation_id and self._fh is not None:
            return self._fh
        self._close_locked()
        path = self.path_for(conversation_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "ab")  # kept open across appends
        if fh.tell() == 0:
            meta = {
                "type": "conversation",
                "version": FORMAT_VERSION,
                "id": conversation_id,
                "notebook": self.notebook,
                "created": time.time(),
            }
            fh.write(json.dumps(meta, separators=(",", ":")).encode() + b"\n")
        elif not _ends_with_newline(path):
            fh.write(b"\n")  # a torn last line stays a line of its own (skipped on load)
        fh.flush()
        os.fsync(fh.fileno())
        self._fh, self._open_id = fh, conversation_id
        return fh

    def close(self) -> None:
        """Close the open conversation file (after an fsync of what was written)."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._fh is not None:
            try:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()
            finally:
                self._fh, self._open_id = None, None

    # -- reading ----------------------------------------------------------------------------

    def conversations(self) -> list[Path]:
        """This notebook's conversation files, most recently written first."""
        if not self.directory.is_dir():
            return []
        files = [p for p in self.directory.glob("*.jsonl") if p.is_file()]
        return sorted(files, key=lambda p: p.stat().st_mtime_ns, reverse=True)

    def load(self, conversation_id: str) -> StoredConversation:
        return read_conversation(self.path_for(conversation_id))

    def latest(self, exclude: str | None = None) -> StoredConversation | None:
        """The most recent conversation with at least one item (other than ``exclude``)."""
        for path in self.conversations():
            if path.stem == exclude:
                continue
            conv = read_conversation(path)
            if conv.items:
                return conv
        return None


def read_conversation(path: Path) -> StoredConversation:
    """Parse a conversation file; unreadable lines (a torn last write) are skipped and counted."""
    conv = StoredConversation(id=path.stem, path=path, created=0.0, notebook="")
    with open(path, "rb") as fh:
        for raw in fh:
            raw = raw.strip()
            if not raw:
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                conv.skipped_lines += 1
                continue
            if not isinstance(record, dict):
                conv.skipped_lines += 1
            elif record.get("type") == "conversation":
                conv.created = float(record.get("created") or 0.0)
                conv.notebook = str(record.get("notebook") or "")
            elif record.get("type") == "item" and isinstance(record.get("item"), dict):
                conv.items.append(record["item"])
            elif record.get("type") == "compacted" and isinstance(record.get("items"), list):
                conv.items = [i for i in record["items"] if isinstance(i, dict)]
            else:
                conv.skipped_lines += 1
    if conv.skipped_lines:
        log.warning("%s: skipped %d unreadable line(s)", path, conv.skipped_lines)
    return conv


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return True
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return ""


WARNING_PREFIX = "Warning: "


def warning_item(message: str) -> dict[str, Any]:
    """The history item for a reroute warning (spec §4: a user message ``"Warning: " + message``).

    Its ``content`` is a plain string (``EasyInputMessage``), while every user prompt is stored as a
    list of ``input_text`` parts: the shape is the marker, so no user text can pass for a warning
    (issue 15 item 11). The model sees the same words either way."""
    return {"type": "message", "role": "user", "content": WARNING_PREFIX + message}


def is_warning_item(item: dict[str, Any]) -> bool:
    content = item.get("content")
    return (
        item.get("type", "message") == "message"
        and item.get("role") == "user"
        and isinstance(content, str)
        and content.startswith(WARNING_PREFIX)
    )


def dangling_calls(items: list[dict[str, Any]]) -> list[str]:
    """Call ids of function calls without an output (the kernel died while a tool ran)."""
    answered = {i.get("call_id") for i in items if i.get("type") == "function_call_output"}
    return [
        str(i.get("call_id")) for i in items if i.get("type") == "function_call" and i.get("call_id") not in answered
    ]


def resume_summary(conv: StoredConversation, max_chars: int = 160) -> str:
    """A short description of a restored conversation for ``%agent resume``."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(conv.created)) if conv.created else "an earlier session"
    users = conv.user_messages
    lines = [
        f"Resumed the conversation started {when}: {len(users)} user message(s), {len(conv.items)} history item(s)."
    ]
    if users:
        lines.append(f"Last question: {_clip(users[-1], max_chars)}")
    answers = [i for i in conv.items if i.get("type", "message") == "message" and i.get("role") == "assistant"]
    if answers:
        lines.append(f"Last answer: {_clip(_content_text(answers[-1].get('content')), max_chars)}")
    if conv.skipped_lines:
        lines.append(f"({conv.skipped_lines} unreadable line(s) skipped, e.g. a write cut short by a crash.)")
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
