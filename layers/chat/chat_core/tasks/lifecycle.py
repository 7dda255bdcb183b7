"""The transitions of a task (see the table in `chat_core.tasks`)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, cast

from .. import background, keys, lua
from ..notifications import SessionEvent, notify
from ..protocol.chunks import (
    FINISH_JSON,
    Chunk,
    Error,
    FinishStep,
    Start,
    StartStep,
    ToolInputAvailable,
    ToolInputStart,
    ToolOutputAvailable,
    ToolOutputError,
)
from ..redis_client import get_redis
from ..registry import (
    TURN,
    FinalStatus,
    TaskRecord,
    get_task,
    get_tasks,
    get_tasks_at_end,
    now_ms,
    task_keys,
    ttl_ms,
    wire,
)
from ..sessions import get_session_store
from ..sessions.models import ChatMessage
from ..settings import get_settings
from ..worker.dispatch import DispatchError, get_dispatcher
from ..worker.jobs import RunTurn, SessionRef

logger = logging.getLogger(__name__)
# A claim's side effects still in flight, by task id (see `claim`).
_claiming: dict[str, asyncio.Task[None]] = {}

DISPATCH_FAILED = "The assistant could not be started. Please try again."
CANCELLED_OPERATION = "Cancelled by the user."
NO_RESULT = "The operation ended without a result."
EXPIRED = {
    "queued": "The assistant could not be started in time. Please send your message again.",
    "working": "The assistant stopped unexpectedly while answering. Please send your message again.",
    "awaiting": "The operation did not report back in time, so it was given up.",
}


class TurnInProgress(Exception):
    """A turn of this session is still running (answered 429)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} is still running in this session")
        self.task_id = task_id


class LeaseState(NamedTuple):
    status: str
    cancel_requested: bool
    held: bool


def _lease_ms() -> int:
    return get_settings().worker_lease_seconds * 1000


# --- Creating -------------------------------------------------------------------------------
async def create_turn(
    session_id: str,
    user_id: str | None,
    *,
    task_id: str | None = None,
    message_id: str | None = None,
    check: Awaitable[object] | None = None,
) -> TaskRecord:
    """A running turn task, the session's one running turn. Its stream opens with `start`.
    `TurnInProgress` while another turn of the session runs (a pending operation does not
    count: the user may go on chatting while it works). `check`, what must hold for the
    turn to start (the session is there, and the caller's), is awaited beside the claim of
    the session; what it raises, the call raises, and nothing is left behind."""
    task_id = task_id or str(uuid.uuid4())
    meta = _meta(task_id, session_id, user_id, "chat_stream", TURN, "")
    pointer = keys.session_turn(session_id)
    # The index entry and the check go in beside the claim of the session: round trips
    # less before the first token, and the entry still before the task exists.
    steps = [_hold_turn(pointer, task_id), _index(meta), *([check] if check is not None else [])]
    try:
        holder, *others = await asyncio.gather(*steps, return_exceptions=True)
        failure = next((r for r in [holder, *others] if isinstance(r, BaseException)), None)
        if failure is None and holder is None:
            return await _open(meta, [Start(message_id=message_id or f"msg-{uuid.uuid4().hex}")])
    except BaseException:
        await lua.SESSION_RELEASE_TURN(pointer=pointer, task_id=task_id)
        raise
    undo = [_unindex(meta)]
    if not isinstance(holder, str):  # the pointer is ours (or may be): let it go
        undo.append(lua.SESSION_RELEASE_TURN(pointer=pointer, task_id=task_id))
    await asyncio.gather(*undo)
    if failure is not None:
        raise failure
    raise TurnInProgress(str(holder))


async def _hold_turn(pointer: str, task_id: str) -> str | None:
    """Point the session at its new turn; the running turn that holds it instead, if any."""
    expected = ""
    for _ in range(3):
        holder = await lua.SESSION_CLAIM_TURN(
            pointer=pointer, ttl_ms=ttl_ms() + _lease_ms(), task_id=task_id, expected=expected
        )
        if holder is None:
            return None
        # A turn that ended without clearing the pointer (a crash between the two writes)
        # no longer holds the session.
        if await get_redis().hget(keys.task_meta(holder), "status") == "running":
            return str(holder)
        expected = holder
    return expected


async def start_turn(
    session_id: str,
    message: str | None,
    user_id: str | None,
    *,
    check: Awaitable[object] | None = None,
    is_user_message: bool = True,
    context: dict[str, Any] | None = None,
    user_ui: dict[str, Any] | None = None,
    keep: int | None = None,
) -> TaskRecord:
    """Create the turn's task, save the message, hand the turn to the worker. If the
    hand-over fails the task ends failed at once, so the reader sees why instead of
    waiting for a worker that will never come. `check`: see `create_turn`.

    For AI SDK readers (chat_core.aisdk.history): `keep` rewinds the stored conversation
    first (an edit or a regenerate); the user's message carries the client's own UIMessage
    (`user_ui`), and a view record holds the assistant message whose id the stream's
    `start` carries."""
    message_id = f"msg-{uuid.uuid4().hex}"
    task = await create_turn(session_id, user_id, message_id=message_id, check=check)
    store = get_session_store()
    try:
        if keep is not None:
            await store.truncate_messages(session_id, keep)
        records = []
        if message:
            role = "user" if is_user_message else "assistant"
            ui = user_ui or {
                "id": f"msg-{uuid.uuid4().hex}",
                "role": role,
                "parts": [{"type": "text", "text": message}],
            }
            said = ChatMessage(
                role=role, content=message, task_id=task.task_id, message_id=ui["id"]
            )
            if role == "user":
                said.ui = ui
            records.append(said)
        view = {"id": message_id, "role": "assistant", "parts": []}
        records.append(
            ChatMessage(
                role="assistant",
                task_id=task.task_id,
                message_id=message_id,
                ui=view,
                complete=False,
            )
        )
        await store.append_messages(session_id, records)
        await get_dispatcher().dispatch(
            RunTurn(
                task_id=task.task_id,
                context=context,
                message_id=message_id,
                session=SessionRef(session_id=session_id, user_id=user_id),
            )
        )
    except DispatchError:
        logger.exception("dispatching task %s failed", task.task_id)
        await finish(task, "failed", DISPATCH_FAILED)
    except BaseException:
        await finish(task, "failed", DISPATCH_FAILED)
        raise
    return task


async def create_operation(
    *,
    session_id: str,
    user_id: str | None,
    tool_call_id: str,
    tool_name: str,
    tool_input: dict[str, Any],
) -> TaskRecord:
    """A long-running tool's own task, whose stream opens with the tool's input so a reader
    of that task alone sees a whole message. Listed in the session's pending operations."""
    task_id = str(uuid.uuid4())
    await lua.SESSION_ADD_OPERATION(
        operations=keys.session_operations(session_id),
        ttl_ms=ttl_ms() + get_settings().operation_timeout_seconds * 1000,
        task_id=task_id,
    )
    meta = _meta(task_id, session_id, user_id, tool_call_id, tool_name, json.dumps(tool_input))
    opening = [
        Start(message_id=f"msg-{uuid.uuid4().hex}"),
        StartStep(),
        ToolInputStart(tool_call_id=tool_call_id, tool_name=tool_name),
        ToolInputAvailable(tool_call_id=tool_call_id, tool_name=tool_name, input=tool_input),
    ]
    return await _create(meta, opening)


def _meta(
    task_id: str,
    session_id: str,
    user_id: str | None,
    tool_call_id: str,
    tool_name: str,
    tool_input: str,
) -> dict[str, str]:
    return {
        "task_id": task_id,
        "session_id": session_id,
        "user_id": user_id or "",
        "tool_call_id": tool_call_id,
        "tool_name": tool_name,
        "operation_id": str(uuid.uuid4()),
        "status": "running",
        "phase": "queued",
        "created_at": datetime.now(UTC).isoformat(),
        "lease_until": str(now_ms() + _lease_ms()),
        "worker": "",
        "tool_input": tool_input,
    }


async def _create(meta: dict[str, str], opening: Sequence[Chunk]) -> TaskRecord:
    """Index first: whatever fails after it, the sweeper finds the task (or its absence)."""
    await _index(meta)
    return await _open(meta, opening)


async def _index(meta: dict[str, str]) -> None:
    task_id = meta["task_id"]
    pipe = get_redis().pipeline(transaction=False)
    pipe.zadd(keys.RUNNING_TASKS, {task_id: int(meta["lease_until"])})
    pipe.set(keys.operation(meta["operation_id"]), task_id, px=ttl_ms() + _lease_ms())
    await pipe.execute()


async def _unindex(meta: dict[str, str]) -> None:
    """A task that will not be created after all: not left for the sweeper to find."""
    pipe = get_redis().pipeline(transaction=False)
    pipe.zrem(keys.RUNNING_TASKS, meta["task_id"])
    pipe.delete(keys.operation(meta["operation_id"]))
    await pipe.execute()


async def _open(meta: dict[str, str], opening: Sequence[Chunk]) -> TaskRecord:
    task_id = meta["task_id"]
    created = await lua.TASK_CREATE(
        **task_keys(task_id),
        now_ms=now_ms(),
        ttl_ms=ttl_ms(),
        fields_json=json.dumps(meta),
        rest=[wire(c) for c in opening],
    )
    if not created:
        raise ValueError(f"task {task_id} already exists")
    return TaskRecord.from_meta(meta)


async def acquire_guard(session_id: str, tool_call_id: str, holder: str) -> bool:
    """The duplicate-run guard of a long-running tool call: False if it already runs."""
    settings = get_settings()
    seconds = settings.operation_timeout_seconds + settings.worker_lease_seconds
    guard = keys.running_operation(session_id, tool_call_id)
    return bool(await get_redis().set(guard, holder, nx=True, ex=seconds))


# --- Working --------------------------------------------------------------------------------
async def claim(task_id: str, worker_id: str) -> tuple[str, TaskRecord | None]:
    """Take a task's worker lease: ("ok", task), or ("taken" | "not-running", None). Only
    the first claim wins, so a retried invocation of the same job never runs it twice."""
    now = now_ms()
    outcome = await lua.TASK_CLAIM(
        **task_keys(task_id), now_ms=now, ttl_ms=ttl_ms(), worker=worker_id, lease_ms=_lease_ms()
    )
    if isinstance(outcome, str):
        return outcome, None
    # The script answers with the claimed task's meta: no second read before the work starts.
    had_lease, *flat = outcome
    task = TaskRecord.from_meta(dict(zip(flat[::2], flat[1::2], strict=True)))
    # The sweeper judges a task by the lease in its meta; the index entry (the lease it had)
    # only says when to look. A queued task's entry is due before this new lease, so it stays
    # until the first refresh moves it; only a longer one (an awaited operation's deadline)
    # is brought forward. Beside the work, with the notice for pages: the task's end waits
    # for them, so they never land after it.
    lease_until = now + _lease_ms()
    reindex = int(had_lease) > lease_until
    _claiming[task_id] = background.spawn(
        _claimed(task, lease_until if reindex else None), name=f"claimed:{task_id}"
    )
    return "ok", task


async def _claimed(task: TaskRecord, reindex_at: int | None) -> None:
    started = SessionEvent(type="task_started", session_id=task.session_id, task_id=task.task_id)
    writes = [notify(task.user_id, started)]
    if reindex_at is not None:
        writes.append(_extend_index(task, reindex_at))
    try:
        await asyncio.gather(*writes)
    finally:
        _claiming.pop(task.task_id, None)


async def refresh(task: TaskRecord, worker_id: str) -> LeaseState:
    """Extend the worker's lease (and every key of the task with it); report cancellation."""
    now = now_ms()
    status, cancel, held = await lua.TASK_REFRESH(
        **task_keys(task.task_id),
        now_ms=now,
        ttl_ms=ttl_ms(),
        worker=worker_id,
        lease_ms=_lease_ms(),
    )
    if held:
        await _extend_index(task, now + _lease_ms())
    return LeaseState(status, cancel == "1", bool(held))


async def await_operation(task: TaskRecord) -> bool:
    """The operation's external service has it: no worker, and the webhook has
    `operation_timeout_seconds` before the sweeper gives the operation up."""
    now = now_ms()
    lease_until = now + get_settings().operation_timeout_seconds * 1000
    ok = await lua.TASK_SET_PHASE(
        **task_keys(task.task_id),
        now_ms=now,
        ttl_ms=ttl_ms(),
        phase="awaiting",
        lease_until=lease_until,
    )
    if ok:
        await _extend_index(task, lease_until)
    return bool(ok)


async def _extend_index(task: TaskRecord, lease_until: int) -> None:
    """Move the keys outside the task's slot along with its lease."""
    ttl = ttl_ms() + max(0, lease_until - now_ms())
    pipe = get_redis().pipeline(transaction=False)
    pipe.zadd(keys.RUNNING_TASKS, {task.task_id: lease_until})
    pipe.pexpire(keys.operation(task.operation_id), ttl)
    if task.is_operation:
        extend = lua.SESSION_ADD_OPERATION(
            operations=keys.session_operations(task.session_id), ttl_ms=ttl, task_id=task.task_id
        )
    else:
        extend = lua.SESSION_EXTEND_TURN(
            pointer=keys.session_turn(task.session_id), ttl_ms=ttl, task_id=task.task_id
        )
    await asyncio.gather(pipe.execute(), extend)


# --- Operation results ----------------------------------------------------------------------
def result_chunks(tool_call_id: str, success: bool, result: Any, error: str | None) -> list[Chunk]:
    """What the reader sees when an operation finishes; the tool step closes with it."""
    if success:
        output = result if result is not None else {"status": "completed"}
        return [ToolOutputAvailable(tool_call_id=tool_call_id, output=output), FinishStep()]
    text = error or "The operation failed."
    return [ToolOutputError(tool_call_id=tool_call_id, error_text=text), FinishStep()]


def _result_message(success: bool, result: Any, error: str | None) -> str:
    """The tool message content the model reads on its next call."""
    if success:
        output = result if result is not None else {"status": "completed"}
        return output if isinstance(output, str) else json.dumps(output, default=str)
    return json.dumps({"error": error or "The operation failed."})


async def apply_result(
    task: TaskRecord, success: bool, result: Any, error: str | None, *, worker: str = ""
) -> Literal["applied", "duplicate", "not-running", "wrong-operation"]:
    """An operation's result: into its task stream once; the pending tool message becomes
    the result and the guard goes (a duplicate repeats both, so a redelivery after a crash
    finishes what was left). The task is then queued for the worker that writes the
    continuation, unless `worker` holds it (it ran the tool and continues). Nothing
    happens to a task that finished meanwhile (a cancel that came first wins).

    The writes go out together, in one round trip: the continuation waits for the first
    two. The message is replaced only while it is pending, and an end without a result
    replaces it whatever it holds (`_after_end`), so a cancel racing the result leaves the
    message and the stream telling the same story in either order. The guard goes beside
    the message (its result is applied, so the call cannot start again whichever lands
    first). The index entry is only moved, never added: a task that ended meanwhile has
    left it."""
    now = now_ms()
    lease_until = now + _lease_ms()
    keys_elsewhere = get_redis().pipeline(transaction=False)
    keys_elsewhere.delete(keys.running_operation(task.session_id, task.tool_call_id))
    if not worker:  # the sweeper looks again when the new lease ends
        keys_elsewhere.zadd(keys.RUNNING_TASKS, {task.task_id: lease_until}, xx=True)
    outcome, updated, _ = await asyncio.gather(
        lua.TASK_APPLY_RESULT(
            **task_keys(task.task_id),
            now_ms=now,
            ttl_ms=ttl_ms(),
            operation_id=task.operation_id,
            worker=worker,
            lease_until=lease_until,
            rest=[wire(c) for c in result_chunks(task.tool_call_id, success, result, error)],
        ),
        get_session_store().update_tool_message(
            task.session_id, task.tool_call_id, _result_message(success, result, error),
            if_pending=True,
        ),
        keys_elsewhere.execute(),
    )  # fmt: skip
    if not updated:  # a duplicate, or a cancel that came first
        logger.info("no pending tool message %s in session %s", task.tool_call_id, task.session_id)
    return cast(Literal["applied", "duplicate", "not-running", "wrong-operation"], outcome)


# --- Ending ---------------------------------------------------------------------------------
async def finish(task: TaskRecord, status: FinalStatus, error: str | None = None) -> bool:
    """End a running task: for an operation whose result never came, the chunks that close
    its tool call (so a reader's tool card shows why instead of waiting); the `error` (when
    failed); the single `finish`. Then the index, the turn pointer or the operation set, the
    guard, the pending tool message, and `task_finished`. Only the first call does anything;
    later ones return False."""
    reason = error or (CANCELLED_OPERATION if status == "cancelled" else NO_RESULT)
    shown = (error or "The request failed.") if status == "failed" else None
    return await _end(task, status, shown, reason) is True


async def _end(
    task: TaskRecord,
    status: FinalStatus,
    error: str | None,
    reason: str,
    *,
    expired_before: int = 0,
) -> bool | int:
    if (claimed := _claiming.get(task.task_id)) is not None:
        await asyncio.gather(claimed, return_exceptions=True)
    closing = (
        [ToolOutputError(tool_call_id=task.tool_call_id, error_text=reason), FinishStep()]
        if task.is_operation
        else []
    )
    reply = await lua.TASK_FINISH(
        **task_keys(task.task_id),
        now_ms=now_ms(),
        ttl_ms=ttl_ms(),
        status=status,
        error_json=Error(error_text=error).to_json() if error is not None else "",
        finish_json=FINISH_JSON,
        expired_before=expired_before,
        phase=task.phase if expired_before else "",
        rest=[wire(c) for c in closing],
    )
    if reply[0] == "alive":
        return int(reply[1])
    if reply[0] != "finished":
        return False
    await _after_end(task, status, result_applied=reply[1] == "1", reason=reason)
    return True


async def _after_end(task: TaskRecord, status: str, *, result_applied: bool, reason: str) -> None:
    r = get_redis()
    pipe = r.pipeline(transaction=False)
    pipe.zrem(keys.RUNNING_TASKS, task.task_id)
    if task.is_operation:
        pipe.srem(keys.session_operations(task.session_id), task.task_id)
        pipe.delete(keys.running_operation(task.session_id, task.tool_call_id))
    await pipe.execute()
    if not task.is_operation:
        await lua.SESSION_RELEASE_TURN(
            pointer=keys.session_turn(task.session_id), task_id=task.task_id
        )
    elif not result_applied:
        await get_session_store().update_tool_message(
            task.session_id, task.tool_call_id, json.dumps({"error": reason})
        )
    await notify(
        task.user_id,
        SessionEvent(
            type="task_finished", session_id=task.session_id, task_id=task.task_id, status=status
        ),
    )


async def cancel(task: TaskRecord) -> str:
    """Stop a task; idempotent. Returns its final status.

    A worker on the task stops within `cancel_poll_ms` and saves the partial answer. A task
    nobody works on (queued, or awaiting a webhook) is ended here. If the worker does not
    react within `cancel_grace_seconds` the task is ended anyway; the worker then learns
    it on its next write.
    """
    status, phase = await lua.TASK_REQUEST_CANCEL(meta=keys.task_meta(task.task_id))
    if status != "running":
        return status or "expired"
    if phase == "working":
        loop = asyncio.get_running_loop()
        deadline = loop.time() + get_settings().cancel_grace_seconds
        while loop.time() < deadline:
            await asyncio.sleep(0.05)
            current = await get_task(task.task_id)
            if current is None or not current.running:
                return current.status if current else "expired"
    await finish(task, "cancelled")
    current = await get_task(task.task_id)
    return current.status if current else "cancelled"


async def expired_task_ids(limit: int = 100) -> list[str]:
    return await get_redis().zrangebyscore(keys.RUNNING_TASKS, 0, now_ms(), start=0, num=limit)


async def expire(task_id: str) -> Literal["failed", "extended", "gone"]:
    """Fail a running task whose lease ran out, with the `error` its reader sees for the
    phase it was in. Keeps the sweeper's index honest either way."""
    task = await get_task(task_id)
    if task is None or not task.running:
        await get_redis().zrem(keys.RUNNING_TASKS, task_id)
        if task is not None and not task.is_operation:
            await lua.SESSION_RELEASE_TURN(
                pointer=keys.session_turn(task.session_id), task_id=task_id
            )
        return "gone"
    now = now_ms()
    if task.lease_until_ms > now:
        await get_redis().zadd(keys.RUNNING_TASKS, {task_id: task.lease_until_ms})
        return "extended"
    message = EXPIRED.get(task.phase, EXPIRED["working"])
    ended = await _end(task, "failed", message, message, expired_before=now)
    if ended is True:
        return "failed"
    if ended is False:
        await get_redis().zrem(keys.RUNNING_TASKS, task_id)
        return "gone"
    await get_redis().zadd(keys.RUNNING_TASKS, {task_id: ended})
    return "extended"


async def end_session(session_id: str, task_ids: Sequence[str] = ()) -> None:
    """A session is being deleted: what runs in it is cancelled, and its tasks (`task_ids`,
    those its messages name, and whatever its pointer and operation set hold) are deleted
    at once, so neither their streams nor their status can be read again."""
    ids = await _session_task_ids(session_id, task_ids)
    for task in await get_tasks(sorted(ids)):
        if task.running:
            await lua.TASK_REQUEST_CANCEL(meta=keys.task_meta(task.task_id))
            await finish(task, "cancelled")
    await asyncio.gather(*(lua.TASK_DELETE(**task_keys(t)) for t in ids))
    await get_redis().delete(keys.session_turn(session_id), keys.session_operations(session_id))


async def claim_owner(session_id: str, user_id: str, task_ids: Sequence[str] = ()) -> None:
    """An anonymous session was claimed by `user_id`: its tasks (`task_ids`, those its
    messages name, and whatever its pointer and operation set hold) follow it, so whoever
    held only their ids can no longer read or cancel them."""
    ids = await _session_task_ids(session_id, task_ids)
    await asyncio.gather(
        *(lua.TASK_CLAIM_OWNER(meta=keys.task_meta(t), user_id=user_id) for t in ids)
    )


async def _session_task_ids(session_id: str, task_ids: Sequence[str]) -> set[str]:
    pipe = get_redis().pipeline(transaction=False)
    pipe.get(keys.session_turn(session_id))
    pipe.smembers(keys.session_operations(session_id))
    turn_id, operation_ids = await pipe.execute()
    return {*task_ids, *operation_ids, *([turn_id] if turn_id else [])}


# --- Finding a session's running task -------------------------------------------------------
async def active_task(session_id: str, user_id: str | None = None) -> tuple[TaskRecord | None, str]:
    """The session's running turn, else its newest pending operation, and the task's last
    entry id: a pointer and a small set read on the session's slot, never a SCAN."""
    pipe = get_redis().pipeline(transaction=False)
    pipe.get(keys.session_turn(session_id))
    pipe.smembers(keys.session_operations(session_id))
    turn_id, operation_ids = await pipe.execute()
    found = [f for f in await get_tasks_at_end([turn_id] if turn_id else []) if f[0].running]
    if not found and operation_ids:
        running = [f for f in await get_tasks_at_end(sorted(operation_ids)) if f[0].running]
        found = sorted(running, key=lambda f: f[0].created_at, reverse=True)[:1]
    if not found or not found[0][0].visible_to(user_id):
        return None, "0-0"
    return found[0]
