"""Starting and stopping turns: what the HTTP side does before it only reads.

    task = await start_turn(session, "Hello!", user_id="u1")   # TaskAlreadyRunning → 429
    status = await cancel_task(task)                            # "cancelled" (or how it ended)

A turn is started by claiming the session (one running turn per session), saving the user's
message, and dispatching the worker. If the dispatch fails the task ends failed at once, so
the reader sees why instead of waiting for a worker that will never come.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .. import registry
from ..notifications import SessionEvent, notify
from ..sessions import get_session_store
from ..sessions.models import ChatMessage, ChatSession
from ..settings import get_settings
from ..worker.dispatch import DispatchError, get_dispatcher
from ..worker.jobs import RunTurn
from .operations import abandon, unfinished_call

logger = logging.getLogger(__name__)

DISPATCH_FAILED = "The assistant could not be started. Please try again."
CANCELLED_OPERATION = "Cancelled by the user."


async def start_turn(
    session: ChatSession,
    message: str | None,
    user_id: str | None,
    *,
    is_user_message: bool = True,
    context: dict[str, Any] | None = None,
) -> registry.ActiveTask:
    """Create the turn's task, save the message, hand the turn to the worker."""
    task = await registry.create_task(session_id=session.session_id, user_id=user_id)
    try:
        if message:
            role = "user" if is_user_message else "assistant"
            await get_session_store().append_messages(
                session.session_id, [ChatMessage(role=role, content=message, task_id=task.task_id)]
            )
        await get_dispatcher().dispatch(RunTurn(task_id=task.task_id, context=context))
    except DispatchError:
        logger.exception("dispatching task %s failed", task.task_id)
        await registry.mark_task_completed(task.task_id, "failed", DISPATCH_FAILED)
    except BaseException:
        await registry.mark_task_completed(task.task_id, "failed", DISPATCH_FAILED)
        raise
    return task


async def cancel_task(task: registry.ActiveTask) -> str:
    """Stop a task; idempotent. Returns the task's final status.

    A worker on the task stops within `cancel_poll_ms` and saves the partial answer. A task
    nobody works on (queued, or awaiting a webhook) is ended here. If the worker does not
    react within `cancel_grace_seconds` the task is ended anyway; the worker then learns
    it on its next write.
    """
    status, phase = await registry.request_cancel(task.task_id)
    if status != "running":
        return status or "expired"
    if phase != "working":
        await _end_cancelled(task)
    else:
        deadline = asyncio.get_running_loop().time() + get_settings().cancel_grace_seconds
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            current = await registry.get_task(task.task_id)
            if current is None or not current.running:
                return current.status if current else "expired"
        await _end_cancelled(task)
    current = await registry.get_task(task.task_id)
    return current.status if current else "cancelled"


async def _end_cancelled(task: registry.ActiveTask) -> None:
    closing = unfinished_call(task, CANCELLED_OPERATION) if task.is_operation else []
    if not await registry.mark_task_completed(task.task_id, "cancelled", closing=closing):
        return
    await abandon(task, CANCELLED_OPERATION)
    await notify(
        task.user_id,
        SessionEvent(
            type="task_finished",
            session_id=task.session_id,
            task_id=task.task_id,
            status="cancelled",
        ),
    )
