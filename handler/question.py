"""What a decoded event asks: plain text or a conversation, plus the choices the event made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Question:
    """One question: `text` (answered in the configured mode) or `messages` (a conversation)."""

    text: str | None = None
    messages: tuple[Message, ...] | None = None
    model: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    # Where the question came from inside a batch envelope (message id, object key); None otherwise.
    source: str | None = None
