"""Conversation history: replay of output items, transcript, reset and resume, persistence.

``history`` is the Responses ``input`` list sent with every request (stateless replay; Azure
keeps item ids, spec "Common data shapes"). Every append goes through ``_append_history`` so the
store sees it; a wholesale replacement (reset, resume) bumps ``history_version`` and starts a
new session, so no state crosses conversations.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from ..loop import AgentLoop
from ..protocol.responses import FunctionCallItem, MessageItem, OtherItem, ReasoningItem, WebSearchCallItem
from ..session import ModelSession
from ..store import is_warning_item

log = logging.getLogger("jupyter_agent")


class HistoryMixin:
    """Part of ``Agent``: the conversation as items, and as display messages."""

    history: list[dict[str, Any]]
    turns: list[Any]
    conversation_id: str
    history_version: int
    store: Any
    on_history_append: Callable[[dict[str, Any]], None] | None
    _provider_lock: threading.RLock
    _session: ModelSession | None
    _tasks: dict[str, Any]
    _loop: AgentLoop
    _refuse_while_running: Callable[[str], None]
    #: The conversation ``resume`` loaded last (None: the current one started in this kernel).
    resumed_id: str | None = None

    def add_history_message(self, role: str, text: str) -> None:
        """Append a user or assistant message (e.g. a voice transcript) to the conversation."""
        part = "output_text" if role == "assistant" else "input_text"
        self._append_history({"type": "message", "role": role, "content": [{"type": part, "text": text}]})

    def reset(self) -> None:
        """Start a new conversation (history cleared, new conversation id; the old one stays saved).

        Refused with ``TurnRunning`` while a turn runs: its items would land in the new conversation
        without their user message (issue 15 item 10).
        """
        self._refuse_while_running("starting a new conversation")
        self._replace_history([], str(uuid.uuid4()))

    def _replace_history(self, items: list[dict[str, Any]], conversation_id: str) -> None:
        with self._provider_lock:
            self.history = list(items)
            self.turns = []
            self.conversation_id = conversation_id
            self.history_version += 1
            old, self._session = self._session, None
        if old is not None:
            self._loop.submit(old.aclose())

    def load_history(self, items: list[dict[str, Any]], conversation_id: str | None = None) -> None:
        """Continue a saved conversation: its items become the history, replayed on the next request.

        Function calls without an output (the kernel died while a tool ran) get one, so the next
        request is valid; those outputs are saved too.
        """
        from ..store import dangling_calls

        self._replace_history(items, conversation_id or str(uuid.uuid4()))
        for call_id in dangling_calls(self.history):
            self._append_history(
                {
                    "type": "function_call_output",
                    "call_id": call_id,
                    "output": "Tool result lost: the kernel stopped before the tool finished.",
                }
            )

    def attach_store(self, store: Any) -> None:
        """Save every history item to ``store`` (a ``store.ConversationStore``) as it is appended."""
        self.store = store
        self.on_history_append = lambda item: store.append(self.conversation_id, item)

    def resume(self, conversation_id: str | None = None) -> Any:
        """Load the most recent saved conversation of this notebook (or the given one).

        Returns the ``StoredConversation`` (None when there is nothing to resume). Raises
        ``RuntimeError`` when no store is attached or a turn is running. A conversation that was
        itself resumed (by the panel after a kernel restart, say) counts as this notebook's: asking
        again returns it as it is saved, without reloading or skipping to an older one.
        """
        if self.store is None:
            raise RuntimeError("conversations are not saved here (no store attached; see Agent.persist)")
        if self._tasks:
            raise RuntimeError("a turn is running; stop it before resuming another conversation")
        if conversation_id:
            conv = self.store.load(conversation_id)
        elif self.history and self.resumed_id == self.conversation_id:
            return self.store.load(self.conversation_id)
        else:
            conv = self.store.latest(exclude=self.conversation_id if self.history else None)
        if conv is None:
            return None
        self.load_history(conv.items, conv.id)
        self.resumed_id = conv.id
        return conv

    def transcript(self) -> list[dict[str, Any]]:
        """The conversation as display messages: ``{"role", "text", "phase"}``."""
        out: list[dict[str, Any]] = []
        for item in self.history:
            kind = item.get("type", "message")
            if kind == "message":
                text = _content_text(item.get("content"))
                role = item.get("role", "user")
                if role == "user" and is_warning_item(item):
                    role = "warning"
                out.append({"role": role, "text": text, "phase": item.get("phase")})
            elif kind == "function_call":
                out.append({"role": "tool", "text": f"{item.get('name')}({item.get('arguments', '')})", "phase": None})
            elif kind == "web_search_call":
                parsed = WebSearchCallItem.model_validate(item)
                out.append({"role": "tool", "text": f"Searched {parsed.display_detail()[1]}".rstrip(), "phase": None})
        return out

    def _append_history(self, item: dict[str, Any]) -> None:
        self.history.append(item)
        if self.on_history_append is not None:
            try:
                self.on_history_append(item)
            except Exception:  # a failing store must not fail the turn; the item is in memory
                log.exception("history persistence failed")

    def _close_dangling(self, calls: list[FunctionCallItem], output: str) -> None:
        """Give every function call in history an output, so the next request is valid."""
        answered = {i.get("call_id") for i in self.history if i.get("type") == "function_call_output"}
        for call in calls:
            if call.call_id not in answered:
                self._append_history({"type": "function_call_output", "call_id": call.call_id, "output": output})


def _user_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _assistant_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or p.get("refusal") or "") for p in content if isinstance(p, dict))
    return ""


def _replay_item(item: Any, keep_ids: bool) -> dict[str, Any] | None:
    """An output item as it is sent back on later requests (None: not replayable)."""
    if isinstance(item, ReasoningItem) and not item.encrypted_content and not keep_ids:
        return None  # stateless replay needs the encrypted content
    if isinstance(item, OtherItem) and not item.replayable:
        return None  # a type the API does not take as input would fail every later request
    data = item.to_input(keep_id=keep_ids)
    if data.get("type") == "message":
        data.pop("status", None)
    return data


def _final_text(items: list[Any]) -> str:
    messages = [i for i in items if isinstance(i, MessageItem) and i.role == "assistant"]
    finals = [m for m in messages if m.phase == "final_answer"]
    chosen = finals or [m for m in messages if m.phase != "commentary"] or messages
    return "\n\n".join(m.text for m in chosen if m.text)
