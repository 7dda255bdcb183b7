"""Reading tasks: reconnect from a cursor, resume a session's running turn, status, cancel.

    GET  /api/chat/tasks/{task_id}/stream?last_message_id=…   (or Last-Event-ID)
    GET  /api/chat/sessions/{id}/stream      the message in progress from its start, or 204
    GET  /api/chat/{id}/stream               the same, where the AI SDK looks for it
    POST /api/chat/{id}/stop                 stops the chat's message in progress; 204
    GET  /api/chat/tasks/{task_id}           {task_id, session_id, status, …}
    POST /api/chat/tasks/{task_id}/cancel    stops the turn; idempotent

404 TASK_NOT_FOUND for a task that does not exist or is someone else's (a task follows its
session: claimed with it, deleted with it); 410 TASK_EXPIRED when only its stream is left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from .. import registry, tasks
from ..aisdk import history
from ..aisdk.chain import running_tasks_of
from ..sessions import get_session_store
from ..sessions.models import ChatSession
from .errors import TASK_EXPIRED, TASK_NOT_FOUND
from .identity import UserId
from .openapi import UI_MESSAGE_STREAM, EventStream, responses
from .paths import SessionId, TaskId
from .reading import ENTRY_ID, message_stream_response, resolve_cursor, task_stream_response
from .sessions import load_session

router = APIRouter(tags=["tasks"])

_RESUME_AFTER = "Resume after this stream entry id (an SSE event's `id:`)"
Cursor = Annotated[
    str | None,
    Query(
        description=f"{_RESUME_AFTER}; wins over Last-Event-ID",
        json_schema_extra={"pattern": ENTRY_ID.pattern},
    ),
]
# Read by resolve_cursor from the request, as EventSource sends it on reconnecting.
_LAST_EVENT_ID = {
    "parameters": [
        {"name": "Last-Event-ID", "in": "header", "required": False, "description": _RESUME_AFTER,
         "schema": {"type": "string", "pattern": ENTRY_ID.pattern}}
    ]
}  # fmt: skip
STATUS = "running, completed, failed or cancelled"


class TaskStatus(BaseModel):
    task_id: str
    session_id: str
    status: str = Field(description=STATUS)
    tool_name: str
    operation_id: str
    created_at: datetime


class CancelResult(BaseModel):
    task_id: str
    status: str = Field(description=f"The task's status now: {STATUS}")


_EXPIRED = {410: "TASK_EXPIRED"}
_READ = responses(
    {**_EXPIRED, 422: "INVALID_CURSOR", 503: "READERS_BUSY"},
    stream=UI_MESSAGE_STREAM,
    empty="The task is over and nothing follows the cursor: stop reconnecting.",
)
_RESUME = responses(
    {503: "READERS_BUSY"},
    stream=UI_MESSAGE_STREAM,
    empty="No message is in progress in this chat; on `/{id}/stream` also a chat that does "
    "not exist yet or is not the caller's (the AI SDK treats anything else as a failure).",
)


async def load_task(task_id: str, user_id: str | None) -> registry.TaskRecord:
    task, expired = await registry.get_task_or_expiry(task_id)
    if expired:
        raise TASK_EXPIRED
    if task is None or not task.visible_to(user_id):
        raise TASK_NOT_FOUND
    return task


@router.get("/tasks/{task_id}", response_model=TaskStatus, responses=responses(_EXPIRED))
async def task_status(task_id: TaskId, user_id: UserId) -> dict[str, Any]:
    task = await load_task(task_id, user_id)
    return {
        "task_id": task.task_id,
        "session_id": task.session_id,
        "status": task.status,
        "tool_name": task.tool_name,
        "operation_id": task.operation_id,
        "created_at": task.created_at,
    }


@router.get(
    "/tasks/{task_id}/stream",
    response_class=EventStream,
    responses=_READ,
    openapi_extra=_LAST_EVENT_ID,
)
async def task_stream(
    task_id: TaskId, request: Request, user_id: UserId, last_message_id: Cursor = None
) -> Response:
    cursor = resolve_cursor(request, last_message_id)
    return await task_stream_response(await load_task(task_id, user_id), cursor)


@router.post("/tasks/{task_id}/cancel", response_model=CancelResult, responses=responses(_EXPIRED))
async def cancel(task_id: TaskId, user_id: UserId) -> dict[str, str]:
    task = await load_task(task_id, user_id)
    return {"task_id": task_id, "status": await tasks.cancel(task)}


async def _resume(session: ChatSession) -> Response:
    """The session's message in progress, replayed whole from its `start`, or 204."""
    _, resumable = await history.conversation(session)
    if resumable is None or resumable.task_id is None:
        return Response(status_code=204)
    return message_stream_response(resumable.task_id)


@router.get("/sessions/{session_id}/stream", response_class=EventStream, responses=_RESUME)
async def resume_session(session_id: SessionId, user_id: UserId) -> Response:
    return await _resume(await load_session(session_id, user_id))


@router.get("/{session_id}/stream", response_class=EventStream, responses=_RESUME)
async def resume_ai_sdk(session_id: SessionId, user_id: UserId) -> Response:
    # A chat id the client made up and has not posted to yet, or someone else's: nothing
    # to resume. The AI SDK treats anything but 200 and 204 as a failure.
    session = await get_session_store().get(session_id, user_id)
    if session is None:
        return Response(status_code=204)
    return await _resume(session)


@router.post("/{session_id}/stop", status_code=204)
async def stop(session_id: SessionId, user_id: UserId) -> Response:
    """The AI SDK's stop convention: the chat's message in progress stops, with the
    operations it is waiting for. Idempotent: nothing running (or no such chat) is 204 too."""
    session = await get_session_store().get(session_id, user_id)
    if session is not None:
        _, resumable = await history.conversation(session)
        if resumable is not None and resumable.task_id is not None:
            for task_id in await running_tasks_of(resumable.task_id):
                if (task := await registry.get_task(task_id)) is not None:
                    await tasks.cancel(task)
    return Response(status_code=204)
