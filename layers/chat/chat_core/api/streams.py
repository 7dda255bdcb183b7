"""Starting a turn: `POST /sessions/{id}/stream` and the AI SDK's `POST /api/chat`.

    POST /api/chat/sessions/{id}/stream   {"message": "Hi", "context": {"url": "…"}}
    POST /api/chat                        {"id": "<chat id>", "messages": [...], "trigger": "submit-message"}

Both check the owner and the input, start the turn (one per session: 429 while one runs),
and answer with the task's SSE stream from its first chunk. The AI SDK transport posts the
whole conversation; the server keeps its own history and takes only the last user message.
A chat id the server has not seen yet becomes a new session of the caller's.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from .. import tasks
from ..notifications import SessionEvent, notify
from ..observability import logger
from ..sessions import get_session_store
from ..settings import get_settings
from .errors import SESSION_NOT_FOUND, ApiError
from .identity import UserId
from .openapi import UI_MESSAGE_STREAM, EventStream, responses
from .paths import SessionId, checked_id
from .reading import check_reader_room, task_stream_response
from .sessions import load_session

router = APIRouter(tags=["streams"])


class PageContext(BaseModel):
    url: str | None = Field(None, max_length=2048)
    content: str | None = Field(None, max_length=20_000)


class StreamRequest(BaseModel):
    message: str = Field(min_length=1)
    is_user_message: bool = True
    context: PageContext | None = None


class UIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    role: Literal["system", "user", "assistant"]
    parts: list[dict[str, Any]] = Field(default_factory=list)


class ChatRequest(BaseModel):
    """What the AI SDK's DefaultChatTransport posts."""

    model_config = ConfigDict(extra="allow")

    id: str
    messages: list[UIMessage] = Field(default_factory=list)
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
    session_id: str, user_id: str | None, message: str | None, **options: Any
) -> Response:
    check_reader_room()  # a busy process refuses the turn rather than start it unread
    session = await load_session(session_id, user_id)
    try:
        task = await tasks.start_turn(session, message, user_id, **options)
    except tasks.TurnInProgress as running:
        raise ApiError(
            429,
            "TURN_IN_PROGRESS",
            f"A turn is already running in this session (task {running.task_id}); wait for it "
            "to finish or cancel it.",
        ) from running
    logger.set_correlation_id(task.task_id)  # the rest of this request is about the task
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
            404: "SESSION_NOT_FOUND",
            413: "MESSAGE_TOO_LARGE",
            422: "NO_USER_MESSAGE",
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
    if await store.get(session_id, user_id) is None:
        if not await _create_for_caller(session_id, user_id):
            raise SESSION_NOT_FOUND
    return await _start(session_id, user_id, message)


async def _create_for_caller(session_id: str, user_id: str | None) -> bool:
    """A chat id the client made up becomes a session of its own, unless it is taken."""
    try:
        await get_session_store().create(user_id, session_id=session_id)
    except ValueError:  # taken: it is someone else's
        return False
    await notify(user_id, SessionEvent(type="session_created", session_id=session_id))
    return True


def _last_user_text(messages: list[UIMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            text = "".join(p.get("text", "") for p in message.parts if p.get("type") == "text")
            if text.strip():
                return text
            break
    raise ApiError(422, "NO_USER_MESSAGE", "The request has no user message with text to answer.")
