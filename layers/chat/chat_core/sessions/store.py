"""The session store interface. Implementations: Redis (the embedded default, also right
for MemoryDB) and DynamoDB (the AWS default); both pass one contract test suite.

    store = get_session_store()
    session = await store.create(user_id="u1")
    await store.append_messages(session.session_id, [ChatMessage(role="user", content="Hi")])
    session = await store.get(session.session_id, user_id="u1")

Every read is owner-checked: another user's session is simply not found (None), exactly
like one that does not exist. Appends are atomic per call, so two writers appending to the
same session at once both keep every message.
"""

from __future__ import annotations

from typing import Protocol

from .models import ChatMessage, ChatSession, SessionSummary, Usage


class SessionNotFound(Exception):
    pass


class SessionStore(Protocol):
    async def create(self, user_id: str | None, session_id: str | None = None) -> ChatSession: ...

    async def get(self, session_id: str, user_id: str | None) -> ChatSession | None:
        """The session with all messages (ordered by sequence) and usage; None when it does
        not exist or belongs to another user."""

    async def append_messages(
        self, session_id: str, messages: list[ChatMessage]
    ) -> list[ChatMessage]:
        """Append atomically; returns the messages with their assigned sequences.
        Raises SessionNotFound when the session does not exist."""

    async def list_sessions(
        self, user_id: str, limit: int = 50, offset: int = 0
    ) -> tuple[list[SessionSummary], int]:
        """The user's sessions, most recently updated first, and how many there are."""

    async def delete(self, session_id: str, user_id: str | None) -> bool:
        """False when it does not exist or belongs to another user."""

    async def assign_user(self, session_id: str, user_id: str) -> bool:
        """An anonymous session becomes the user's. True also when it already is theirs;
        False when missing or owned by someone else."""

    async def update_title(self, session_id: str, title: str) -> bool: ...

    async def add_usage(self, session_id: str, usage: Usage) -> None: ...

    async def truncate_messages(self, session_id: str, keep: int) -> bool:
        """Drop every message from sequence `keep` on (an edit or a regenerate rewinds the
        conversation); the next append continues at `keep`. False when the session is gone."""

    async def update_tool_message(
        self, session_id: str, tool_call_id: str, content: str, *, if_pending: bool = False
    ) -> bool:
        """Replace the content of the tool message answering `tool_call_id` (a pending
        long-running operation becoming its result); with `if_pending`, only while it is
        still the pending one (`models.OPERATION_PENDING`). False when nothing was replaced."""
