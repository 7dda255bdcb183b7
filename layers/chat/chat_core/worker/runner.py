"""The worker: runs a job to the end, writing every chunk to its task's stream.

    await run_job(RunTurn(task_id=task.task_id))

Every job on a task first claims the task's lease; only the first claim wins, so a Lambda
async retry or a duplicate dispatch never runs a turn twice. While it works the lease is
refreshed (the task's keys live as long as it does) and the cancel flag is watched: a
cancel stops the model within `cancel_poll_ms`, the partial answer is saved, and the task
ends `cancelled`. A worker that dies leaves a lease that runs out; the sweeper then fails
the task with a message the reader sees. A Redis blip is ridden out: writes and lease
refreshes are retried with bounded backoff; past the budget the turn ends failed, visibly,
with its partial answer saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from .. import background, registry, tasks
from .. import tools as tool_catalog
from ..aisdk import history
from ..chat.service import TurnFailed, stream_chat_completion
from ..completions.consumer import drain
from ..observability import count, milliseconds
from ..protocol.chunks import Data, TextDelta
from ..publisher import ChunkPublisher
from ..retry import BLIPS, retrying
from ..sessions import get_session_store
from ..sessions.models import ChatSession
from ..settings import get_settings
from ..tools import ToolContext
from ..users import BusinessUnderstanding, get_user_store
from .jobs import ContinueOperation, DrainCompletions, Job, RunTool, RunTurn, SessionRef

logger = logging.getLogger(__name__)

WORKER_ID = f"worker-{uuid.uuid4().hex[:12]}"
UNEXPECTED_FAILURE = "Something went wrong while answering. Please try again."
STORE_UNREACHABLE = (
    "The answer was interrupted because the chat store could not be reached. "
    "Please send your message again."
)

Outcome = tuple[registry.FinalStatus, str | None]
Body = Callable[[registry.TaskRecord], Coroutine[Any, Any, Outcome]]


async def run_job(job: Job, worker_id: str = WORKER_ID) -> str:
    """Run one job; returns how it ended (for logs and tests). It waits for nothing but
    its own work: the process may be running other jobs beside it."""
    if isinstance(job, RunTurn | ContinueOperation):
        # Read beside the claim: the claim, the session and what the assistant knows of the
        # user are one round trip, not three.
        read, knows = _read_ahead(job.session), _understanding_ahead(job.session)
        context, message_id = (
            (job.context, job.message_id) if isinstance(job, RunTurn) else (None, None)
        )

        def answer(task: registry.TaskRecord) -> Coroutine[Any, Any, Outcome]:
            ahead = knows if job.session and job.session.user_id == task.user_id else None
            return _answer(task, context, message_id, read, ahead)

        try:
            return await run_on_task(job.task_id, worker_id, answer)
        finally:
            _discard(read)
            _discard(knows)
    if isinstance(job, RunTool):
        return await run_on_task(job.task_id, worker_id, lambda t: _run_tool(t, worker_id))
    if isinstance(job, DrainCompletions):
        return f"drained {await drain(consumer=worker_id)}"
    raise ValueError(f"unknown job {job!r}")


async def run_invocation(job: Job) -> str:
    """One job per Lambda invocation: what it spawned beside it (a session title) ends
    before the handler returns, since a frozen environment finishes nothing."""
    try:
        return await run_job(job)
    finally:
        await background.drain()


async def run_on_task(task_id: str, worker_id: str, body: Body) -> str:
    """Claim the task, run `body` (the content) under a watched lease, and end the task
    by how the body ended: the task frames the content, the body only produces it."""
    claim, task = await tasks.claim(task_id, worker_id)
    if task is None:
        logger.info("task %s not run: %s", task_id, claim)
        return claim
    work = asyncio.create_task(body(task), name=f"work:{task_id}")
    watch = asyncio.create_task(_watch(task, worker_id, work), name=f"lease:{task_id}")
    try:
        status, error = await work
    except asyncio.CancelledError:
        verdict = watch.result() if watch.done() and not watch.cancelled() else "shutdown"
        if verdict == "lost":
            return "lost"
        if verdict == "shutdown":  # this process is being stopped, not the task
            await asyncio.shield(tasks.finish(task, "cancelled"))
            raise
        status, error = "cancelled", None
    except registry.TaskNotRunning:
        return "lost"  # it ended elsewhere: swept, or cancelled by force
    except BLIPS:
        logger.exception("task %s: Redis stayed unreachable past the retry budget", task_id)
        status, error = "failed", STORE_UNREACHABLE
    except Exception:
        logger.exception("task %s failed", task_id)
        status, error = "failed", UNEXPECTED_FAILURE
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    try:
        # Up to the lease: past it the sweeper ends the task anyway.
        lease = get_settings().worker_lease_seconds
        await retrying(lambda: tasks.finish(task, status, error), budget_seconds=lease)
    except BLIPS:
        logger.exception("task %s could not be finished; the sweeper will end it", task_id)
    await _snapshot(task)
    return status


async def _message_of(
    task: registry.TaskRecord, session: ChatSession | None = None
) -> tuple[str, str] | None:
    """(message id, turn task id) of the assistant message the task writes."""
    session = session or await get_session_store().get(task.session_id, task.user_id)
    if session is None:
        return None
    tool_call_id = task.tool_call_id if task.is_operation else None
    return history.message_of_task(session, task.task_id, tool_call_id)


async def _snapshot(task: registry.TaskRecord) -> None:
    """The message as it now stands is kept with the session, beyond the streams' TTL."""
    try:
        if found := await _message_of(task):
            message_id, turn_task_id = found
            await history.snapshot(task.session_id, turn_task_id, message_id)
    except Exception:
        logger.warning("could not keep the message of task %s", task.task_id, exc_info=True)


async def _watch(task: registry.TaskRecord, worker_id: str, work: asyncio.Task[Any]) -> str:
    """Keep the lease and stop the work when a cancel is asked for or the task is lost.
    A Redis error does not end the watch: the refresh is tried again at the next poll."""
    settings = get_settings()
    poll = settings.cancel_poll_ms / 1000
    refresh_every = settings.worker_lease_seconds / 3
    last_refresh = time.monotonic()
    try:
        return await _watch_until_done(task, worker_id, work, poll, refresh_every, last_refresh)
    finally:
        registry.forget_published(task.task_id)


async def _watch_until_done(
    task: registry.TaskRecord,
    worker_id: str,
    work: asyncio.Task[Any],
    poll: float,
    refresh_every: float,
    last_refresh: float,
) -> str:
    while not work.done():
        await asyncio.sleep(poll)
        try:
            if time.monotonic() - last_refresh >= refresh_every:
                state = await tasks.refresh(task, worker_id)
                last_refresh = time.monotonic()
                status, cancel = state.status, state.cancel_requested
            else:
                # While the turn writes, its publishes bring the cancel flag back: no poll.
                status, cancel = await registry.task_state(task.task_id, fresh_within=poll)
        except BLIPS as exc:
            logger.warning("task %s: lease not refreshed (%s); retrying", task.task_id, exc)
            continue
        if cancel or status != "running":
            work.cancel()
            return "cancelled" if status == "running" else "lost"
    return "done"


def _read_ahead(ref: SessionRef | None) -> asyncio.Future[ChatSession | None] | None:
    if ref is None:
        return None
    return asyncio.ensure_future(get_session_store().get(ref.session_id, ref.user_id))


def _understanding_ahead(
    ref: SessionRef | None,
) -> asyncio.Future[BusinessUnderstanding | None] | None:
    if ref is None or ref.user_id is None:
        return None
    return asyncio.ensure_future(get_user_store().get_understanding(ref.user_id))


def _discard(read: asyncio.Future[Any] | None) -> None:
    if read is not None:
        if not read.done():
            read.cancel()
        elif not read.cancelled():
            read.exception()  # retrieved: a failed read ahead was replaced by a fresh one


async def _session_of(
    task: registry.TaskRecord, read: asyncio.Future[ChatSession | None] | None
) -> ChatSession | None:
    """The session read ahead if it is the claimed task's, else read now."""
    if read is not None:
        with contextlib.suppress(Exception):
            session = await read
            if (
                session is not None
                and session.session_id == task.session_id
                and session.visible_to(task.user_id)
            ):
                return session
    return await get_session_store().get(task.session_id, task.user_id)


async def _answer(
    task: registry.TaskRecord,
    context: dict[str, Any] | None,
    message_id: str | None = None,
    read: asyncio.Future[ChatSession | None] | None = None,
    understanding: asyncio.Future[BusinessUnderstanding | None] | None = None,
) -> Outcome:
    """Stream the model's answer for the task's session into the task."""
    # Read once (or ahead, beside the claim): the turn answers from it, and an operation
    # finds in it the turn's message it continues.
    session = await _session_of(task, read)
    if message_id is None and task.is_operation and session is not None:
        found = await _message_of(task, session)
        message_id = found[0] if found else None
    error: str | None = None
    started, first_text_at, chunks = time.monotonic(), None, 0
    out = ChunkPublisher(task.task_id)
    turn = stream_chat_completion(
        task.session_id,
        None,
        task.user_id,
        session=session,
        context=context,
        task_id=task.task_id,
        message_id=message_id,
        understanding=understanding,
    )
    try:
        try:
            async for chunk in turn:
                if first_text_at is None and isinstance(chunk, TextDelta):
                    first_text_at = time.monotonic()
                chunks += 1
                await out.send(chunk)
        except TurnFailed as failure:
            error = str(failure)
        except BaseException:
            await turn.aclose()  # on cancel: the turn saves its partial answer here
            with contextlib.suppress(Exception):
                await out.aclose()  # and what it already produced still reaches the stream
            raise
        await out.aclose()
    finally:
        count("ChunksPerTask", chunks)
        if first_text_at is not None:
            milliseconds("TimeToFirstChunk", (first_text_at - started) * 1000)
    return ("failed", error) if error else ("completed", None)


async def _run_tool(task: registry.TaskRecord, worker_id: str) -> Outcome:
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
    await tasks.apply_result(task, outcome.ok, outcome.output, outcome.error, worker=worker_id)
    return await _answer(task, None)
