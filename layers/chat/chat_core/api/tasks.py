"""Reading tasks: reconnect from a cursor, resume a session's running turn, status, cancel.

    GET  /api/chat/tasks/{task_id}/stream?last_message_id=…   (or Last-Event-ID)
    GET  /api/chat/sessions/{id}/stream      the running turn from its start, or 204
    GET  /api/chat/{id}/stream               the same, where the AI SDK looks for it
    GET  /api/chat/tasks/{task_id}           {task_id, session_id, status, …}
    POST /api/chat/tasks/{task_id}/cancel    stops the turn; idempotent

404 TASK_NOT_FOUND for a task that does not exist or is someone else's; 410 TASK_EXPIRED
when only its stream is left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from .. import registry, tasks
from .errors import TASK_EXPIRED, TASK_NOT_FOUND
from .identity import UserId
from .openapi import UI_MESSAGE_STREAM, EventStream, responses
from .paths import SessionId, TaskId
from .reading import ENTRY_ID, resolve_cursor, task_stream_response
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
    {422: "INVALID_CURSOR", 503: "READERS_BUSY"},
    stream=UI_MESSAGE_STREAM,
    empty="No turn is running in this session (or it is over and nothing follows the cursor).",
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


async def _resume(
    session_id: str, request: Request, user_id: str | None, last_message_id: str | None
) -> Response:
    await load_session(session_id, user_id)
    cursor = resolve_cursor(request, last_message_id)
    task, _ = await tasks.active_task(session_id, user_id)
    if task is None:
        return Response(status_code=204)
    return await task_stream_response(task, cursor)


@router.get(
    "/sessions/{session_id}/stream",
    response_class=EventStream,
    responses=_RESUME,
    openapi_extra=_LAST_EVENT_ID,
)
async def resume_session(
    session_id: SessionId, request: Request, user_id: UserId, last_message_id: Cursor = None
) -> Response:
    return await _resume(session_id, request, user_id, last_message_id)


@router.get(
    "/{session_id}/stream",
    response_class=EventStream,
    responses=_RESUME,
    openapi_extra=_LAST_EVENT_ID,
)
async def resume_ai_sdk(
    session_id: SessionId, request: Request, user_id: UserId, last_message_id: Cursor = None
) -> Response:
    return await _resume(session_id, request, user_id, last_message_id)
