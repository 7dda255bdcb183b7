"""The worker: runs a job to the end, writing every chunk to its task's stream.

    await run_job(RunTurn(task_id=task.task_id))

Every job on a task first claims the task's lease; only the first claim wins, so a Lambda
async retry or a duplicate dispatch never runs a turn twice. While it works the lease is
refreshed (the task's keys live as long as it does) and the cancel flag is watched: a
cancel stops the model within `cancel_poll_ms`, the partial answer is saved, and the task
ends `cancelled`. A worker that dies leaves a lease that runs out; the sweeper then fails
the task with a message the reader sees.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from .. import background, registry
from ..chat import operations
from ..chat.service import stream_chat_completion
from ..notifications import SessionEvent, notify
from ..observability import count, milliseconds
from ..protocol.chunks import Data, Error, Finish, TextDelta
from ..publisher import ChunkPublisher
from ..settings import get_settings
from .. import tools as tool_catalog
from ..tools import ToolContext
from .jobs import ContinueOperation, DrainCompletions, Job, RunTool, RunTurn

logger = logging.getLogger(__name__)

WORKER_ID = f"worker-{uuid.uuid4().hex[:12]}"
UNEXPECTED_FAILURE = "Something went wrong while answering. Please try again."

Outcome = tuple[registry.FinalStatus, str | None]
Body = Callable[[registry.ActiveTask], Awaitable[Outcome]]


async def run_job(job: Job, worker_id: str = WORKER_ID) -> str:
    """Run one job; returns how it ended (for logs and tests)."""
    try:
        if isinstance(job, RunTurn):
            return await run_on_task(
                job.task_id, worker_id, lambda t: _answer(t, job.context, True)
            )
        if isinstance(job, ContinueOperation):
            return await continue_operation(job.task_id, worker_id)
        if isinstance(job, RunTool):
            return await run_on_task(job.task_id, worker_id, _run_tool)
        if isinstance(job, DrainCompletions):
            from ..completions.consumer import drain

            return f"drained {await drain(consumer=worker_id)}"
        raise ValueError(f"unknown job {job!r}")
    finally:
        await background.drain()


async def continue_operation(task_id: str, worker_id: str) -> str:
    """The operation's result is in its task: write the model's continuation and end it."""
    return await run_on_task(task_id, worker_id, lambda t: _answer(t, None, False))


async def run_on_task(task_id: str, worker_id: str, body: Body) -> str:
    claim = await registry.claim_task(task_id, worker_id)
    if claim != "ok":
        logger.info("task %s not run: %s", task_id, claim)
        return claim
    task = await registry.get_task(task_id)
    assert task is not None
    await notify(
        task.user_id, SessionEvent(type="task_started", session_id=task.session_id, task_id=task_id)
    )
    work = asyncio.create_task(body(task), name=f"work:{task_id}")
    watch = asyncio.create_task(_watch(task, worker_id, work), name=f"lease:{task_id}")
    try:
        status, error = await work
    except asyncio.CancelledError:
        verdict = watch.result() if watch.done() else "shutdown"
        if verdict == "lost":
            return "lost"
        if verdict == "shutdown":  # this process is being stopped, not the task
            await asyncio.shield(_finish(task, "cancelled", None))
            raise
        status, error = "cancelled", None
    except registry.TaskNotRunning:
        return "lost"  # it ended elsewhere: swept, or cancelled by force
    except Exception:
        logger.exception("task %s failed", task_id)
        status, error = "failed", UNEXPECTED_FAILURE
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    await _finish(task, status, error)
    return status


async def _finish(
    task: registry.ActiveTask, status: registry.FinalStatus, error: str | None
) -> None:
    if await registry.mark_task_completed(task.task_id, status, error):
        await notify(
            task.user_id,
            SessionEvent(
                type="task_finished",
                session_id=task.session_id,
                task_id=task.task_id,
                status=status,
            ),
        )


async def _watch(task: registry.ActiveTask, worker_id: str, work: asyncio.Task[Any]) -> str:
    """Keep the lease and stop the work when a cancel is asked for or the task is lost."""
    settings = get_settings()
    poll = settings.cancel_poll_ms / 1000
    refresh_every = settings.worker_lease_seconds / 3
    last_refresh = time.monotonic()
    while not work.done():
        await asyncio.sleep(poll)
        if time.monotonic() - last_refresh >= refresh_every:
            state = await registry.refresh_lease(task, worker_id)
            last_refresh = time.monotonic()
            status, cancel = state.status, state.cancel_requested
        else:
            status, cancel = await registry.task_state(task.task_id)
        if cancel or status != "running":
            work.cancel()
            return "cancelled" if status == "running" else "lost"
    return "done"


async def _answer(
    task: registry.ActiveTask, context: dict[str, Any] | None, emit_start: bool
) -> Outcome:
    """Stream the model's answer for the task's session into the task."""
    error: str | None = None
    started, first_text_at, chunks = time.monotonic(), None, 0
    out = ChunkPublisher(task.task_id)
    turn = stream_chat_completion(
        task.session_id,
        None,
        task.user_id,
        context=context,
        task_id=task.task_id,
        emit_start=emit_start,
    )
    try:
        async for chunk in turn:
            if isinstance(chunk, Finish):
                break  # the task's completion appends the one finish
            if isinstance(chunk, Error):
                error = chunk.error_text  # and the error before it
                continue
            if first_text_at is None and isinstance(chunk, TextDelta):
                first_text_at = time.monotonic()
            chunks += 1
            await out.send(chunk)
    finally:
        await turn.aclose()  # on cancel: the turn saves its partial answer here
        try:
            await out.aclose()  # and what it already produced still reaches the stream
        except registry.TaskNotRunning:
            pass
        count("ChunksPerTask", chunks)
        if first_text_at is not None:
            milliseconds("TimeToFirstChunk", (first_text_at - started) * 1000)
    return ("failed", error) if error else ("completed", None)


async def _run_tool(task: registry.ActiveTask) -> Outcome:
    """A long-running tool that is not delegated: run it here, then continue the turn."""
    settings = get_settings()
    tools = tool_catalog.default_tools()
    started = time.monotonic()

    async def heartbeat() -> None:
        elapsed = int(time.monotonic() - started)
        progress = {"status": "running", "toolName": task.tool_name, "elapsedSeconds": elapsed}
        await registry.publish_chunk(
            task.task_id, Data(type="data-progress", id=task.tool_call_id, data=progress)
        )

    async def beat_until_done(work: asyncio.Task[Any]) -> None:
        while not work.done():
            await asyncio.sleep(settings.heartbeat_seconds)
            if not work.done():
                await heartbeat()

    ctx = ToolContext.for_operation(task, heartbeat)
    work = asyncio.create_task(tools.execute(task.tool_name, task.tool_input or "{}", ctx))
    beats = asyncio.create_task(beat_until_done(work))
    try:
        outcome = await work
    finally:
        beats.cancel()
        work.cancel()
        await asyncio.gather(beats, work, return_exceptions=True)
    await registry.publish_chunks(
        task.task_id,
        operations.result_chunks(task.tool_call_id, outcome.ok, outcome.output, outcome.error),
        operation_result=True,
    )
    await operations.save_result(task, outcome.ok, outcome.output, outcome.error)
    return await _answer(task, None, emit_start=False)
