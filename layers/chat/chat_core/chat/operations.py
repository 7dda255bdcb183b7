"""Long-running tools, from the turn's side: each call gets its own operation task, and
the turn moves on.

    chunk = await start(tool, tools, call_id, arguments, session_id=…, user_id=…,
                        turn_task_id=…, save=…)
    # → data-operation-started {"operationId", "taskId", "toolName", "toolCallId"}

Starting one answers `data-operation-started`, not a tool output: the tool part stays
pending until the operation's own stream brings the result, which an AI SDK reader
follows into (chat_core.aisdk.chain). It takes a duplicate-run guard on the tool call (per session); a new operation task
whose stream opens with the tool's input; a pending tool message in the session; then
either the external service is called (a delegated tool: a 202 means accepted, and the
webhook finishes the job) or the worker is asked to run the tool. The session stays free:
the user may go on chatting while the operation works. If the start fails, the user sees
a tool error, the operation task ends failed and nothing is left running.

Finishing one (the webhook's result, or the worker that ran the tool) is a transition of
the operation's task: see `chat_core.tasks.apply_result`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .. import tasks
from ..protocol.chunks import Chunk, Data, ToolOutputAvailable, ToolOutputError
from ..sessions.models import OPERATION_PENDING, ChatMessage
from ..tools import Tool, ToolContext, ToolError, ToolRegistry
from ..worker.dispatch import get_dispatcher
from ..worker.jobs import RunTool

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
    async def answer(content: dict[str, Any]) -> None:
        await save(ChatMessage(role="tool", tool_call_id=tool_call_id, content=json.dumps(content)))

    try:
        args = tools.parse_args(tool.name, arguments)
    except ToolError as exc:
        await answer({"error": str(exc)})
        return ToolOutputError(tool_call_id=tool_call_id, error_text=str(exc))

    if not await tasks.acquire_guard(session_id, tool_call_id, turn_task_id):
        in_progress = {
            "type": "operation_in_progress",
            "tool_name": tool.name,
            "message": f"{tool.name} is already running for this request; its result will follow.",
        }
        await answer(in_progress)
        return ToolOutputAvailable(tool_call_id=tool_call_id, output=in_progress)

    operation = await tasks.create_operation(
        session_id=session_id,
        user_id=user_id,
        tool_call_id=tool_call_id,
        tool_name=tool.name,
        tool_input=args.model_dump(exclude_none=True),
    )
    ids = {
        "operation_id": operation.operation_id,
        "task_id": operation.task_id,
        "tool_name": tool.name,
    }
    # Saved before the external call: its webhook may arrive before that call returns.
    await answer({"type": OPERATION_PENDING, **ids, "message": f"{tool.name} is running."})
    try:
        if tool.delegated:
            # Awaiting before the call: the webhook may beat the 202 back.
            await tasks.await_operation(operation)
            await tool.run(ToolContext.for_operation(operation), args)
        else:
            await get_dispatcher().dispatch(RunTool(task_id=operation.task_id))
    except Exception as exc:
        error = str(exc) if isinstance(exc, ToolError) else f"{tool.name} could not be started."
        if not isinstance(exc, ToolError):
            logger.exception("starting %s failed", tool.name)
        await tasks.finish(operation, "failed", error)
        return ToolOutputError(tool_call_id=tool_call_id, error_text=error)
    started = {
        "operationId": operation.operation_id,
        "taskId": operation.task_id,
        "toolName": tool.name,
        "toolCallId": tool_call_id,
    }
    return Data(type="data-operation-started", id=tool_call_id, data=started)
