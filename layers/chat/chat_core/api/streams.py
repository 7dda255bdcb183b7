"""Starting a turn: `POST /sessions/{id}/stream` and the AI SDK's `POST /api/chat`.

    POST /api/chat/sessions/{id}/stream   {"message": "Hi", "context": {"url": "…"}}
    POST /api/chat                        {"id": "<chat id>", "messages": [...], "trigger": "submit-message"}

Both check the owner and the input, start the turn (one per session: 429 while one runs),
and answer with the task's SSE stream from its first chunk. The AI SDK transport posts the
whole conversation: the server answers its last user message, and the stored
conversation follows the client's (an edit via `messageId`, a regenerate, or messages the
client dropped rewind it; see `_follow_client`). Its answer is the whole assistant message,
following into the operations the turn starts (chat_core.aisdk.chain). A chat id the
server has not seen yet becomes a new session of the caller's.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from .. import tasks
from ..aisdk import history
from ..notifications import SessionEvent, notify
from ..observability import logger
from ..sessions import get_session_store
from ..sessions.models import ChatSession
from ..settings import get_settings
from .errors import SESSION_NOT_FOUND, ApiError
from .identity import UserId
from .openapi import UI_MESSAGE_STREAM, EventStream, responses
from .paths import SessionId, checked_id
from .reading import check_reader_room, message_stream_response, task_stream_response
from .sessions import UIMessage, load_session

router = APIRouter(tags=["streams"])


class PageContext(BaseModel):
    url: str | None = Field(None, max_length=2048)
    content: str | None = Field(None, max_length=20_000)


class StreamRequest(BaseModel):
    message: str = Field(min_length=1)
    is_user_message: bool = True
    context: PageContext | None = None


class ChatRequest(BaseModel):
    """What the AI SDK's DefaultChatTransport posts."""

    model_config = ConfigDict(extra="allow")

    id: str
    messages: list[UIMessage]
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    message_id: str | None = Field(None, alias="messageId")


def _check_length(message: str) -> None:
    limit = get_settings().max_message_chars
    if len(message) > limit:
        raise ApiError(
            413,
            "MESSAGE_TOO_LARGE",
            f"The message is {len(message)} characters; the limit is {limit}.",
        )


async def _start(
    session_id: str,
    user_id: str | None,
    message: str | None,
    *,
    session: ChatSession | None = None,
    ai_sdk: bool = False,
    **options: Any,
) -> Response:
    check_reader_room()  # a busy process refuses the turn rather than start it unread
    # Loaded beside the session's claim: a 404 still starts nothing.
    check = load_session(session_id, user_id) if session is None else None
    try:
        task = await tasks.start_turn(session_id, message, user_id, check=check, **options)
    except tasks.TurnInProgress as running:
        raise ApiError(
            429,
            "TURN_IN_PROGRESS",
            f"A turn is already running in this session (task {running.task_id}); wait for it "
            "to finish or cancel it.",
        ) from running
    logger.set_correlation_id(task.task_id)  # the rest of this request is about the task
    if ai_sdk:
        return message_stream_response(task.task_id)
    return await task_stream_response(task, "0-0")


@router.post(
    "/sessions/{session_id}/stream",
    response_class=EventStream,
    responses=responses(
        {413: "MESSAGE_TOO_LARGE", 429: "TURN_IN_PROGRESS", 503: "READERS_BUSY"},
        stream=UI_MESSAGE_STREAM,
    ),
)
async def stream_turn(session_id: SessionId, body: StreamRequest, user_id: UserId) -> Response:
    _check_length(body.message)
    context = body.context.model_dump(exclude_none=True) if body.context else None
    return await _start(
        session_id,
        user_id,
        body.message,
        is_user_message=body.is_user_message,
        context=context or None,
    )


@router.post(
    "",
    response_class=EventStream,
    responses=responses(
        {
            404: ("SESSION_NOT_FOUND", "MESSAGE_NOT_FOUND"),
            413: "MESSAGE_TOO_LARGE",
            422: ("NO_USER_MESSAGE", "HISTORY_MISMATCH"),
            429: "TURN_IN_PROGRESS",
            503: "READERS_BUSY",
        },
        stream=UI_MESSAGE_STREAM,
    ),
)
async def ai_sdk_chat(body: ChatRequest, user_id: UserId) -> Response:
    session_id = checked_id(body.id, "SESSION_NOT_FOUND", "No such chat session.")
    message: str | None = None
    if body.trigger == "submit-message":
        message = _last_user_text(body.messages)
        _check_length(message)
    store = get_session_store()
    session = await store.get(session_id, user_id)
    if session is None:
        if not await _create_for_caller(session_id, user_id):
            raise SESSION_NOT_FOUND
        session = await load_session(session_id, user_id)
    keep = _follow_client(session, body)
    user_ui = body.messages[-1].stored() if message else None
    return await _start(
        session_id, user_id, message, session=session, ai_sdk=True, user_ui=user_ui, keep=keep
    )


def _follow_client(session: ChatSession, body: ChatRequest) -> int | None:
    """Where the stored conversation must be cut to follow the client's, or None.

    The client keeps `kept` (everything before its new user message; for a regenerate,
    everything it sent). Those must be the stored messages, in order, by id; stored
    messages after them are dropped (an edit, a regenerate, or a retry of a message the
    server already saved)."""
    stored = history.entries(session)
    kept = body.messages[:-1] if body.trigger == "submit-message" else body.messages
    if body.message_id is not None and not any(e.message_id == body.message_id for e in stored):
        raise ApiError(
            404, "MESSAGE_NOT_FOUND", f"This chat has no message {body.message_id!r} to replace."
        )
    for position, message in enumerate(kept):
        if position >= len(stored) or stored[position].message_id != message.id:
            raise ApiError(
                422,
                "HISTORY_MISMATCH",
                f"Message {message.id!r} at position {position} is not this chat's message "
                "there; reload the chat's messages (GET /sessions/{id}/messages) and retry.",
            )
    if len(stored) > len(kept):
        return stored[len(kept)].first_sequence
    return None


async def _create_for_caller(session_id: str, user_id: str | None) -> bool:
    """A chat id the client made up becomes a session of its own, unless it is taken."""
    try:
        await get_session_store().create(user_id, session_id=session_id)
    except ValueError:  # taken: it is someone else's
        return False
    await notify(user_id, SessionEvent(type="session_created", session_id=session_id))
    return True


def _last_user_text(messages: list[UIMessage]) -> str:
    last = messages[-1] if messages else None
    if last is not None and last.role == "user":
        text = "".join(str(getattr(p, "text", "")) for p in last.parts if p.type == "text")
        if text.strip():
            return text
    raise ApiError(
        422, "NO_USER_MESSAGE", "The last message is not a user message with text to answer."
    )
