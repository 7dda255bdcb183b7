"""Long-running tools: each call gets its own operation id and task, and the turn moves on.

    chunk = await start(tool, tools, call_id, arguments, session_id=…, user_id=…,
                        turn_task_id=…, save=…)
    # → tool-output-available {"type": "operation_started", "operation_id", "task_id", …}

Starting one: a duplicate-run guard on the tool call id; a new task whose stream opens
with the tool's input (so a reader of that task alone sees a whole message); a pending tool
message in the session; then either the external service is called (a delegated tool: a
202 means accepted, and the webhook finishes the job) or the worker is asked to run the
tool. The session's active task moves to the operation, so a reload follows it and a new
message waits until it is done. If the start fails, the user sees a tool error, the
operation task ends failed and nothing is left running.

Finishing one (from the webhook's consumer, or the worker that ran the tool): the result
goes to the task stream once, the pending tool message becomes the result, the guard is
released, and the model's continuation streams into the same task.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from .. import registry
from ..keys import running_operation
from ..protocol.chunks import (
    Chunk,
    FinishStep,
    Start,
    StartStep,
    ToolInputAvailable,
    ToolInputStart,
    ToolOutputAvailable,
    ToolOutputError,
)
from ..redis_client import get_redis
from ..sessions import get_session_store
from ..sessions.models import ChatMessage
from ..settings import get_settings
from ..tools import Tool, ToolContext, ToolError, ToolRegistry

logger = logging.getLogger(__name__)


async def start(
    tool: Tool,
    tools: ToolRegistry,
    tool_call_id: str,
    arguments: str,
    *,
    session_id: str,
    user_id: str | None,
    turn_task_id: str,
    save: Callable[[ChatMessage], Awaitable[None]],
) -> Chunk:
    settings = get_settings()

    async def answer(content: dict[str, Any]) -> None:
        await save(ChatMessage(role="tool", tool_call_id=tool_call_id, content=json.dumps(content)))

    try:
        args = tools.parse_args(tool.name, arguments)
    except ToolError as exc:
        await answer({"error": str(exc)})
        return ToolOutputError(tool_call_id=tool_call_id, error_text=str(exc))

    guard_ttl = settings.operation_timeout_seconds + settings.dispatch_grace_seconds
    if not await get_redis().set(
        running_operation(tool_call_id), turn_task_id, nx=True, ex=guard_ttl
    ):
        in_progress = {
            "type": "operation_in_progress",
            "tool_name": tool.name,
            "message": f"{tool.name} is already running for this request; its result will follow.",
        }
        await answer(in_progress)
        return ToolOutputAvailable(tool_call_id=tool_call_id, output=in_progress)

    operation = await registry.create_task(
        session_id=session_id,
        user_id=user_id,
        tool_call_id=tool_call_id,
        tool_name=tool.name,
        tool_input=args.model_dump_json(exclude_none=True),
        claim_session=False,
    )
    await registry.publish_chunks(
        operation.task_id,
        [
            Start(message_id=f"msg-{uuid.uuid4().hex}"),
            StartStep(),
            ToolInputStart(tool_call_id=tool_call_id, tool_name=tool.name),
            ToolInputAvailable(
                tool_call_id=tool_call_id,
                tool_name=tool.name,
                input=args.model_dump(exclude_none=True),
            ),
        ],
    )
    ids = {
        "operation_id": operation.operation_id,
        "task_id": operation.task_id,
        "tool_name": tool.name,
    }
    # Saved before the external call: its webhook may arrive before that call returns.
    await answer({"type": "operation_pending", **ids, "message": f"{tool.name} is running."})
    try:
        await _launch(tool, args, operation, turn_task_id)
    except Exception as exc:
        error = str(exc) if isinstance(exc, ToolError) else f"{tool.name} could not be started."
        if not isinstance(exc, ToolError):
            logger.exception("starting %s failed", tool.name)
        await _abort(operation, turn_task_id, error)
        return ToolOutputError(tool_call_id=tool_call_id, error_text=error)
    started = {
        "type": "operation_started",
        **ids,
        "message": f"{tool.name} has started. The result will appear when it finishes.",
    }
    return ToolOutputAvailable(tool_call_id=tool_call_id, output=started)


async def _launch(tool: Tool, args: Any, operation: registry.ActiveTask, turn_task_id: str) -> None:
    settings = get_settings()
    if tool.delegated:
        # Awaiting before the call: the webhook may beat the 202 back.
        await registry.set_phase(operation, "awaiting", settings.operation_timeout_seconds)
        await registry.hand_over_session(operation.session_id, turn_task_id, operation.task_id)
        await tool.run(ToolContext.for_operation(operation), args)
    else:
        from ..worker.dispatch import get_dispatcher
        from ..worker.jobs import RunTool

        await registry.hand_over_session(operation.session_id, turn_task_id, operation.task_id)
        await get_dispatcher().dispatch(RunTool(task_id=operation.task_id))


async def _abort(operation: registry.ActiveTask, turn_task_id: str, error: str) -> None:
    """The operation never started: end its task failed and leave nothing running."""
    await registry.mark_task_completed(
        operation.task_id, "failed", error, closing=unfinished_call(operation, error)
    )
    await registry.hand_over_session(operation.session_id, operation.task_id, turn_task_id)
    await abandon(operation, error)


def unfinished_call(task: registry.ActiveTask, error: str) -> list[Chunk]:
    """What closes an operation's tool call that will never get its result, so a reader's
    tool card shows the reason instead of waiting forever."""
    return [ToolOutputError(tool_call_id=task.tool_call_id, error_text=error), FinishStep()]


async def abandon(task: registry.ActiveTask, error: str) -> None:
    """An operation ended without its result: its pending tool message says why, and the
    duplicate-run guard goes. Nothing to do for a chat turn or a result already saved."""
    if not task.is_operation or task.result_applied:
        return
    await get_session_store().update_tool_message(
        task.session_id, task.tool_call_id, json.dumps({"error": error})
    )
    await release_guard(task.tool_call_id)


def result_chunks(tool_call_id: str, success: bool, result: Any, error: str | None) -> list[Chunk]:
    """What the reader sees when an operation finishes; the tool step closes with it."""
    if success:
        output = result if result is not None else {"status": "completed"}
        return [ToolOutputAvailable(tool_call_id=tool_call_id, output=output), FinishStep()]
    text = error or "The operation failed."
    return [ToolOutputError(tool_call_id=tool_call_id, error_text=text), FinishStep()]


def result_message(success: bool, result: Any, error: str | None) -> str:
    """The tool message content the model reads on its next call."""
    if success:
        output = result if result is not None else {"status": "completed"}
        return output if isinstance(output, str) else json.dumps(output, default=str)
    return json.dumps({"error": error or "The operation failed."})


async def save_result(
    task: registry.ActiveTask, success: bool, result: Any, error: str | None
) -> None:
    """The pending tool message becomes the result, and the guard is released. Idempotent."""
    updated = await get_session_store().update_tool_message(
        task.session_id, task.tool_call_id, result_message(success, result, error)
    )
    if not updated:
        logger.warning(
            "no pending tool message %s in session %s", task.tool_call_id, task.session_id
        )
    await release_guard(task.tool_call_id)


async def release_guard(tool_call_id: str) -> None:
    await get_redis().delete(running_operation(tool_call_id))
