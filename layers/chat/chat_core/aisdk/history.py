"""The session's conversation as AI SDK UIMessages, and the stored one following the client's.

    messages, resumable = await conversation(session)   # GET /sessions/{id}/messages
    plan = follow_client(session, request)              # POST /api/chat: what to rewind

A turn starts with two records: the user's message carrying the client's own UIMessage,
and a view record: the assistant's UIMessage (id = the stream's `start.messageId`). When a
turn or one of its operations ends, the worker folds the message's chunks and appends a
fresh view record (`snapshot`); the latest per message id wins. The model's OpenAI-shaped
history is the other records, each stamped with its message id, so an edit or a
regenerate rewinds both at once by truncating at the message's first record.

A message still in progress is left out of `messages` when it is the session's latest:
the AI SDK appends a resumed stream to a new assistant message (v5, v6) or replaces the
one with its id (v7), and a resume replays it from its `start`, so listing it too would
show its parts twice. An older message whose operation is still pending (the user went
on chatting) is listed as it is now, its tool part pending.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..sessions import get_session_store
from ..sessions.models import ChatMessage, ChatSession
from .chain import fold_message

logger = logging.getLogger(__name__)


@dataclass
class UIEntry:
    message_id: str
    role: str
    ui: dict[str, Any]
    first_sequence: int
    task_id: str | None = None
    """The turn's task, for an assistant message we stream."""
    complete: bool = True

    @property
    def streamed(self) -> bool:
        return self.task_id is not None


def entries(session: ChatSession) -> list[UIEntry]:
    """The UIMessages as last stored, in conversation order (no stream read)."""
    found: dict[str, UIEntry] = {}
    for record in session.messages:
        sequence = record.sequence or 0
        message_id = record.message_id
        if message_id is None:
            if record.role in ("user", "assistant") and record.content and not record.tool_calls:
                message_id = f"legacy-{sequence}"  # saved before messages had ids
            else:
                continue
        entry = found.get(message_id)
        if record.ui is not None:
            if entry is None:
                found[message_id] = UIEntry(
                    message_id,
                    record.role,
                    record.ui,
                    sequence,
                    task_id=record.task_id if record.is_view else None,
                    complete=bool(record.complete) or not record.is_view,
                )
            elif record.is_view:
                entry.ui, entry.complete = record.ui, bool(record.complete)
        elif entry is None and record.role in ("user", "assistant") and record.content:
            text = {"type": "text", "text": record.content}
            if record.role == "assistant":
                text["state"] = "done"
            ui = {"id": message_id, "role": record.role, "parts": [text]}
            found[message_id] = UIEntry(message_id, record.role, ui, sequence)
    return list(found.values())


async def conversation(session: ChatSession) -> tuple[list[dict[str, Any]], UIEntry | None]:
    """What the user saw, and the message a resume replays (left out of the list)."""
    listed = entries(session)
    latest = next((e for e in reversed(listed) if e.streamed), None)
    resumable: UIEntry | None = None
    for entry in listed:
        if entry.complete or not entry.streamed:
            continue
        assert entry.task_id is not None
        folded = await fold_message(entry.task_id, entry.message_id)
        if folded.found or folded.live:
            entry.ui = folded.ui
        if folded.complete:
            entry.complete = True
            await _store(session.session_id, entry.task_id, folded.ui)
        elif folded.live and entry is latest:
            resumable = entry
    messages = [
        e.ui for e in listed if e is not resumable and (e.ui.get("parts") or e.role != "assistant")
    ]
    return messages, resumable


async def snapshot(session_id: str, task_id: str, message_id: str) -> None:
    """Fold the message a task belongs to and store it (after the task ended)."""
    folded = await fold_message(task_id, message_id)
    if folded.found:
        await _store(session_id, task_id, folded.ui, folded.complete)


async def _store(session_id: str, task_id: str, ui: dict[str, Any], complete: bool = True) -> None:
    record = ChatMessage(
        role="assistant", message_id=ui["id"], task_id=task_id, ui=ui, complete=complete
    )
    try:
        await get_session_store().append_messages(session_id, [record])
    except Exception:  # the session was deleted meanwhile: nothing to keep it for
        logger.warning("could not store message %s of session %s", ui["id"], session_id)


def message_of_task(
    session: ChatSession, task_id: str, tool_call_id: str | None
) -> tuple[str, str] | None:
    """(message id, turn task id) of a turn task, or of an operation by its tool call."""
    for record in session.messages:
        if tool_call_id and record.role == "tool" and record.tool_call_id == tool_call_id:
            if record.message_id and record.task_id:
                return record.message_id, record.task_id
        elif not tool_call_id and record.is_view and record.task_id == task_id:
            return record.ui["id"], task_id  # type: ignore[index]
    return None
