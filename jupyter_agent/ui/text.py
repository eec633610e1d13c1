"""Plain results of line commands: text/plain plus an optional text/markdown rendering."""

from __future__ import annotations

from typing import Any


class TextOutput:
    """A line command's rich result; terminal IPython and nbval see the plain text."""

    def __init__(self, text: str, markdown: str | None = None) -> None:
        self.text = text
        self.md = markdown

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        bundle = {"text/plain": self.text}
        if self.md:
            bundle["text/markdown"] = self.md
        return bundle

    def __repr__(self) -> str:
        return self.text
