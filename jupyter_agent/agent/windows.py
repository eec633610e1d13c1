"""Known context windows of OpenAI model families: the last source ``context.py`` consults.

Only used when neither ``Agent.context_window`` nor the server says. Each row names the page it
comes from (OpenAI's model pages, https://platform.openai.com/docs/models/<name>, as of 2026); a
model that matches no row is "unknown": the gauge says so rather than guess.

Longest prefix wins, so ``gpt-4o-mini-2024-07-18`` matches ``gpt-4o-mini``; the match ignores case
and a provider prefix such as ``openai/``.
"""

from __future__ import annotations

#: prefix -> (context window in tokens, source page)
MODEL_WINDOWS: dict[str, tuple[int, str]] = {
    "gpt-5": (400_000, "platform.openai.com/docs/models/gpt-5"),
    "gpt-5-mini": (400_000, "platform.openai.com/docs/models/gpt-5-mini"),
    "gpt-5-nano": (400_000, "platform.openai.com/docs/models/gpt-5-nano"),
    "gpt-5-codex": (400_000, "platform.openai.com/docs/models/gpt-5-codex"),
    "gpt-5-chat": (128_000, "platform.openai.com/docs/models/gpt-5-chat-latest"),
    "gpt-5.1": (400_000, "platform.openai.com/docs/models/gpt-5.1"),
    "gpt-5.1-chat": (128_000, "platform.openai.com/docs/models/gpt-5.1-chat-latest"),
    "gpt-5.2": (400_000, "platform.openai.com/docs/models/gpt-5.2"),
    "gpt-5.2-chat": (128_000, "platform.openai.com/docs/models/gpt-5.2-chat-latest"),
    "gpt-5.3-codex": (400_000, "platform.openai.com/docs/models/gpt-5.3-codex"),
    "gpt-4.1": (1_047_576, "platform.openai.com/docs/models/gpt-4.1"),
    "gpt-4.1-mini": (1_047_576, "platform.openai.com/docs/models/gpt-4.1-mini"),
    "gpt-4.1-nano": (1_047_576, "platform.openai.com/docs/models/gpt-4.1-nano"),
    "gpt-4o": (128_000, "platform.openai.com/docs/models/gpt-4o"),
    "gpt-4o-mini": (128_000, "platform.openai.com/docs/models/gpt-4o-mini"),
    "gpt-4-turbo": (128_000, "platform.openai.com/docs/models/gpt-4-turbo"),
    "gpt-3.5-turbo": (16_385, "platform.openai.com/docs/models/gpt-3.5-turbo"),
    "o1": (200_000, "platform.openai.com/docs/models/o1"),
    "o3": (200_000, "platform.openai.com/docs/models/o3"),
    "o3-mini": (200_000, "platform.openai.com/docs/models/o3-mini"),
    "o4-mini": (200_000, "platform.openai.com/docs/models/o4-mini"),
    "codex-mini": (200_000, "platform.openai.com/docs/models/codex-mini-latest"),
}


def known_window(model: str) -> tuple[int, str] | None:
    """``(tokens, source)`` for a known OpenAI model family, else None (never a guess)."""
    name = model.lower().rsplit("/", 1)[-1]
    best: str | None = None
    for prefix in MODEL_WINDOWS:
        if (name == prefix or name.startswith(prefix + "-")) and (best is None or len(prefix) > len(best)):
            best = prefix
    return MODEL_WINDOWS[best] if best is not None else None
