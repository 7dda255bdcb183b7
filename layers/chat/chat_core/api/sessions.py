"""Session CRUD: create, list, get (with the active stream), delete, assign to a user.

POST   /api/chat/sessions                     → {id, created_at, user_id}
GET    /api/chat/sessions?limit&offset        → {sessions: [...], total}   (signed in)
GET    /api/chat/sessions/{id}                → session, messages, active_stream
GET    /api/chat/sessions/{id}/messages       → {messages: UIMessage[]} (the AI SDK's shape)
PATCH  /api/chat/sessions/{id}                {title} → renamed
DELETE /api/chat/sessions/{id}                → 204
PATCH  /api/chat/sessions/{id}/assign-user    → the anonymous session becomes yours
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from .. import tasks
from ..aisdk import history
from ..notifications import SessionEvent, notify
from ..sessions import get_session_store
from ..sessions.models import ChatMessage, ChatSession
from .errors import SESSION_NOT_FOUND, ApiError
from .identity import SignedInUserId, UserId
from .paths import SessionId

router = APIRouter(tags=["sessions"])


class SessionCreated(BaseModel):
    id: str
    created_at: datetime
    user_id: str | None


class SessionSummary(BaseModel):
    id: str
    title: str | None
    created_at: datetime
    updated_at: datetime


class SessionList(BaseModel):
    sessions: list[SessionSummary]
    total: int


class ActiveStream(BaseModel):
    task_id: str
    last_message_id: str


class SessionDetail(BaseModel):
    id: str
    user_id: str | None
    title: str | None
    created_at: datetime
    updated_at: datetime
    messages: list[ChatMessage]
    """Messages in OpenAI shape; the running turn's answer is left out (its stream has it)."""
    active_stream: ActiveStream | None


class SessionAssigned(BaseModel):
    status: str
    id: str
    user_id: str


async def load_session(session_id: str, user_id: str | None) -> ChatSession:
    session = await get_session_store().get(session_id, user_id)
    if session is None:
        raise SESSION_NOT_FOUND
    return session


@router.post("/sessions", response_model=SessionCreated)
async def create_session(user_id: UserId) -> dict[str, Any]:
    session = await get_session_store().create(user_id)
    await notify(user_id, SessionEvent(type="session_created", session_id=session.session_id))
    return {"id": session.session_id, "created_at": session.created_at, "user_id": session.user_id}


@router.get("/sessions", response_model=SessionList)
async def list_sessions(
    user_id: SignedInUserId,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    summaries, total = await get_session_store().list_sessions(user_id, limit, offset)
    return {
        "sessions": [
            {
                "id": s.session_id,
                "title": s.title,
                "created_at": s.created_at,
                "updated_at": s.updated_at,
            }
            for s in summaries
        ],
        "total": total,
    }


# Unset message fields stay out of the answer, as the store leaves them out.
@router.get(
    "/sessions/{session_id}", response_model=SessionDetail, response_model_exclude_unset=True
)
async def get_session(session_id: SessionId, user_id: UserId) -> dict[str, Any]:
    session = await load_session(session_id, user_id)
    task, last_id = await tasks.active_task(session_id, user_id)
    # The running task's answer is left out: replaying its stream rebuilds it. The question
    # that started it stays, since no stream carries it.
    messages = [
        m.model_dump(mode="json", exclude_none=True, exclude={"ui", "complete"})
        for m in session.messages
        if not m.is_view and (task is None or m.task_id != task.task_id or m.role == "user")
    ]
    return {
        "id": session.session_id,
        "user_id": session.user_id,
        "title": session.title,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "messages": messages,
        "active_stream": {"task_id": task.task_id, "last_message_id": last_id} if task else None,
    }


class UIPart(BaseModel):
    """A part of a message as the AI SDK has it: `type` says which (`text`, `reasoning`,
    `step-start`, `tool-<name>`, `data-<name>`, …) and the other fields are that part's."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1)


class UIMessage(BaseModel):
    """The AI SDK's UIMessage: what `useChat` holds, posts, and is given back."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=200)
    role: Literal["system", "user", "assistant"]
    parts: list[UIPart]
    metadata: Any = None

    def stored(self) -> dict[str, Any]:
        return self.model_dump(include={"id", "role", "parts", "metadata"}, exclude_none=True)


class UIMessages(BaseModel):
    messages: list[UIMessage]


# Unset fields (a metadata nobody sent) stay out: the AI SDK rejects nulls in messages.
@router.get(
    "/sessions/{session_id}/messages", response_model=UIMessages, response_model_exclude_unset=True
)
async def get_messages(session_id: SessionId, user_id: UserId) -> UIMessages:
    """The conversation as an AI SDK client shows it, for `useChat({ messages })`; the
    message in progress is left out, since resuming its stream rebuilds it."""
    messages, _ = await history.conversation(await load_session(session_id, user_id))
    return UIMessages(messages=messages)


class Rename(BaseModel):
    title: str = Field(min_length=1, max_length=200)


class Renamed(BaseModel):
    id: str
    title: str


@router.patch("/sessions/{session_id}", response_model=Renamed)
async def rename_session(session_id: SessionId, body: Rename, user_id: UserId) -> dict[str, str]:
    """The user names the chat (the generated title is only a first guess)."""
    await load_session(session_id, user_id)
    title = body.title.strip()
    if not title:
        raise ApiError(422, "INVALID_REQUEST", "title: the title is blank")
    if not await get_session_store().update_title(session_id, title):
        raise SESSION_NOT_FOUND
    await notify(user_id, SessionEvent(type="title_changed", session_id=session_id, title=title))
    return {"id": session_id, "title": title}


@router.delete("/sessions/{session_id}", status_code=204)
async def delete_session(session_id: SessionId, user_id: UserId) -> Response:
    session = await load_session(session_id, user_id)
    # What runs stops and every task of the session becomes unreadable, before it goes.
    await tasks.end_session(session_id, [m.task_id for m in session.messages if m.task_id])
    if not await get_session_store().delete(session_id, user_id):
        raise SESSION_NOT_FOUND
    await notify(user_id, SessionEvent(type="session_deleted", session_id=session_id))
    return Response(status_code=204)


@router.patch("/sessions/{session_id}/assign-user", response_model=SessionAssigned)
async def assign_user(session_id: SessionId, user_id: SignedInUserId) -> dict[str, str]:
    store = get_session_store()
    if not await store.assign_user(session_id, user_id):
        raise SESSION_NOT_FOUND
    # Its tasks follow it: whoever held only their ids loses them with the session.
    session = await load_session(session_id, user_id)
    await tasks.claim_owner(session_id, user_id, [m.task_id for m in session.messages if m.task_id])
    await notify(user_id, SessionEvent(type="session_created", session_id=session_id))
    return {"status": "ok", "id": session_id, "user_id": user_id}
