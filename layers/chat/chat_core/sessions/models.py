"""A chat session: its owner, title, messages in OpenAI shape, and token usage.

    session = ChatSession.new(user_id="u1")
    session.messages.append(ChatMessage(role="user", content="Hello"))
    session.to_openai_messages()     # [{'role': 'user', 'content': 'Hello'}]

Messages carry fields of ours besides the OpenAI ones: `sequence` (their position,
assigned by the store when they are saved; None = not saved yet), `task_id` (the task
whose turn wrote them, so a reader resuming that task's stream can leave them out),
`message_id` (the AI SDK UIMessage they belong to) and `ui` (that UIMessage as the user
saw it: on a user message, the client's own; on a view record, the assistant's answer
folded from its stream). View records are for readers only: the model never sees them.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

# The `type` of a tool message's content while its operation runs: the one content a
# result may replace (see `SessionStore.update_tool_message`).
OPERATION_PENDING = "operation_pending"


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_pending_result(content: str | None) -> bool:
    try:
        parsed = json.loads(content or "")
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("type") == OPERATION_PENDING


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    """OpenAI shape: [{"id", "type": "function", "function": {"name", "arguments"}}]."""
    tool_call_id: str | None = None
    sequence: int | None = None
    task_id: str | None = None
    message_id: str | None = None
    ui: dict[str, Any] | None = None
    complete: bool | None = None
    """On a view record: the message is whole and will not change any more."""
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def is_view(self) -> bool:
        """An assistant UIMessage snapshot, not a message of the model's conversation."""
        return self.role == "assistant" and self.ui is not None

    def to_openai(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name:
            message["name"] = self.name
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        if self.tool_call_id:
            message["tool_call_id"] = self.tool_call_id
        return message


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    model: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ChatSession(BaseModel):
    session_id: str
    user_id: str | None = None
    title: str | None = None
    messages: list[ChatMessage] = Field(default_factory=list)
    usage: list[Usage] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @classmethod
    def new(cls, user_id: str | None = None, session_id: str | None = None) -> ChatSession:
        return cls(session_id=session_id or str(uuid.uuid4()), user_id=user_id)

    def to_openai_messages(self) -> list[dict[str, Any]]:
        return [m.to_openai() for m in self.messages if not m.is_view]

    def visible_to(self, user_id: str | None) -> bool:
        """Owned sessions are visible only to their owner; anonymous ones to whoever has the id."""
        return self.user_id is None or self.user_id == user_id

    def summary(self) -> SessionSummary:
        return SessionSummary(
            session_id=self.session_id,
            user_id=self.user_id,
            title=self.title,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


class SessionSummary(BaseModel):
    session_id: str
    user_id: str | None
    title: str | None
    created_at: datetime
    updated_at: datetime
