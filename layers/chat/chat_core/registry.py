"""The stream registry: each task's chunks in a Redis stream, replayable from any cursor.

    task = await create_task(session_id="s1", user_id="u1")
    await publish_chunks(task.task_id, [Start(message_id="m1"), StartStep()])
    async with subscribe(task.task_id, cursor="0-0") as sub:
        async for entry in sub:                 # replay, then live, until `finish`
            print(entry.id, entry.data)
    await mark_task_completed(task.task_id, "completed")   # appends the one `finish`

Per task, under the hash tag `{task_id}`: a meta HASH (who, what, status, lease, cancel
flag) and a STREAM (field `data` = chunk wire JSON). Every write is one Lua script on that
slot, so a status change and its chunks land together and the two keys' TTLs move together.
The TTL never drops below the lease, so a running task's meta cannot expire under it.

Outside the tag: `operation id → task id`, `session → active task` (O(1) lookup) and the
sorted set of running tasks by lease expiry, which is the sweeper's index.

Lifecycle: `running` → `completed` | `failed` | `cancelled`, only once (compare-and-set).
While running a task is in one phase: `queued` (waiting for a worker), `working` (a worker
holds the lease) or `awaiting` (an external operation will report back by webhook).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, NamedTuple

from . import keys
from .fanout import ReadersBusy as ReadersBusy  # re-exported: readers import them from here
from .fanout import StreamEntry as StreamEntry
from .fanout import Subscription
from .protocol.chunks import FINISH_JSON, Chunk, Error
from .redis_client import LuaScript, get_redis
from .settings import get_settings

FinalStatus = Literal["completed", "failed", "cancelled"]
TASK_EXPIRED = "TASK_EXPIRED"
TASK_NOT_FOUND = "TASK_NOT_FOUND"


class TaskAlreadyRunning(Exception):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} is still running in this session")
        self.task_id = task_id


class TaskNotRunning(Exception):
    """Writing to a task that finished (or vanished): its worker must stop."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} is not running")
        self.task_id = task_id


@dataclass(frozen=True)
class ActiveTask:
    task_id: str
    session_id: str
    user_id: str | None
    tool_call_id: str
    tool_name: str
    operation_id: str
    status: str
    created_at: datetime
    phase: str = "queued"
    lease_until_ms: int = 0
    worker: str = ""
    cancel_requested: bool = False
    tool_input: str = ""
    result_applied: bool = False

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> "ActiveTask":
        return cls(
            task_id=meta["task_id"],
            session_id=meta.get("session_id", ""),
            user_id=meta.get("user_id") or None,
            tool_call_id=meta.get("tool_call_id", ""),
            tool_name=meta.get("tool_name", ""),
            operation_id=meta.get("operation_id", ""),
            status=meta.get("status", ""),
            created_at=datetime.fromisoformat(meta["created_at"]),
            phase=meta.get("phase", ""),
            lease_until_ms=int(meta.get("lease_until") or 0),
            worker=meta.get("worker", ""),
            cancel_requested=meta.get("cancel") == "1",
            tool_input=meta.get("tool_input", ""),
            result_applied=meta.get("result_applied") == "1",
        )

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def is_operation(self) -> bool:
        """A long-running tool's own task (not a chat turn)."""
        return self.tool_name != "chat"

    def visible_to(self, user_id: str | None) -> bool:
        """Owned tasks are visible only to their owner; anonymous ones to whoever has the id."""
        return self.user_id is None or self.user_id == user_id


# --- Lua ------------------------------------------------------------------------------------
# keep_alive: meta and stream expire together, never before the lease runs out.
# finish: the single place a task leaves `running`, appending `error` (if any) and `finish`.
_PRELUDE = """
local function keep_alive(meta, stream, ttl, now)
  local lease = tonumber(redis.call('HGET', meta, 'lease_until') or '0') or 0
  if lease - now + ttl > ttl then ttl = lease - now + ttl end
  redis.call('PEXPIRE', meta, ttl)
  redis.call('PEXPIRE', stream, ttl)
end
local function finish(meta, stream, status, now, maxlen, ttl, error_json, finish_json)
  redis.call('HSET', meta, 'status', status, 'finished_at', now, 'lease_until', 0)
  local ids = {}
  if error_json ~= '' then
    ids[1] = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'data', error_json)
  end
  ids[#ids + 1] = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'data', finish_json)
  keep_alive(meta, stream, ttl, now)
  return ids
end
"""

# KEYS: meta, stream. ARGV: ttl, now, field, value, ...
_CREATE = LuaScript(
    _PRELUDE
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
keep_alive(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
return 1
"""
)

# KEYS: meta, stream. ARGV: maxlen, ttl, now, is operation result ('1'/'0'), data, ...
# → entry ids, or nil if not running
_PUBLISH = LuaScript(
    _PRELUDE
    + """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
local ids = {}
for i = 5, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'data', ARGV[i])
end
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'result_applied', '1') end
keep_alive(KEYS[1], KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[3]))
return ids
"""
)

# KEYS: meta, stream. ARGV: status, now, maxlen, ttl, error_json, finish_json, closing chunks...
_COMPLETE = LuaScript(
    _PRELUDE
    + """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
if redis.call('HGET', KEYS[1], 'result_applied') ~= '1' then
  for i = 7, #ARGV do
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', ARGV[i])
  end
end
return finish(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]),
              ARGV[5], ARGV[6])
"""
)

# KEYS: meta, stream. ARGV: now, maxlen, ttl, finish_json, then the message per phase
# (queued, working, awaiting). → 'gone' | 'failed' | the lease (ms) if it was extended
# An operation whose result never came also gets its tool call closed with the message.
_EXPIRE = LuaScript(
    _PRELUDE
    + """
local st = redis.call('HMGET', KEYS[1], 'status', 'lease_until', 'phase', 'tool_name',
                      'tool_call_id', 'result_applied')
if st[1] ~= 'running' then return 'gone' end
local lease = tonumber(st[2] or '0') or 0
if lease > tonumber(ARGV[1]) then return tostring(lease) end
local message = ARGV[5]
if st[3] == 'working' then message = ARGV[6] elseif st[3] == 'awaiting' then message = ARGV[7] end
if st[4] ~= 'chat' and st[6] ~= '1' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'data',
             cjson.encode({type = 'tool-output-error', toolCallId = st[5], errorText = message}))
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'data', '{"type":"finish-step"}')
end
finish(KEYS[1], KEYS[2], 'failed', tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]),
       cjson.encode({type = 'error', errorText = message}), ARGV[4])
return 'failed'
"""
)

# KEYS: meta, stream. ARGV: worker, lease_ms, now, ttl  → 'ok' | 'taken' | 'not-running'
_CLAIM = LuaScript(
    _PRELUDE
    + """
local st = redis.call('HMGET', KEYS[1], 'status', 'worker')
if st[1] ~= 'running' then return 'not-running' end
if st[2] and st[2] ~= '' then return 'taken' end
local now = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'worker', ARGV[1], 'phase', 'working', 'lease_until', now + tonumber(ARGV[2]))
keep_alive(KEYS[1], KEYS[2], tonumber(ARGV[4]), now)
return 'ok'
"""
)

# KEYS: meta, stream. ARGV: worker, lease_ms, now, ttl  → {status, cancel, held}
_REFRESH = LuaScript(
    _PRELUDE
    + """
local st = redis.call('HMGET', KEYS[1], 'status', 'worker', 'cancel')
if st[1] ~= 'running' or st[2] ~= ARGV[1] then return {st[1] or '', st[3] or '', 0} end
local now = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'lease_until', now + tonumber(ARGV[2]))
keep_alive(KEYS[1], KEYS[2], tonumber(ARGV[4]), now)
return {st[1], st[3] or '', 1}
"""
)

# KEYS: meta, stream. ARGV: phase, lease_until, now, ttl  → 1, or nil if not running
_SET_PHASE = LuaScript(
    _PRELUDE
    + """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
redis.call('HSET', KEYS[1], 'phase', ARGV[1], 'lease_until', ARGV[2], 'worker', '')
keep_alive(KEYS[1], KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[3]))
return 1
"""
)

# KEYS: meta, stream. ARGV: operation_id, maxlen, ttl, now, lease_until, data, ...
# Publishes an operation's result once and hands the task back to the queue for a worker.
_APPLY_RESULT = LuaScript(
    _PRELUDE
    + """
local st = redis.call('HMGET', KEYS[1], 'status', 'operation_id', 'result_applied')
if st[1] ~= 'running' then return 'not-running' end
if st[2] ~= ARGV[1] then return 'wrong-operation' end
if st[3] == '1' then return 'duplicate' end
for i = 6, #ARGV do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[i])
end
redis.call('HSET', KEYS[1], 'result_applied', '1', 'phase', 'queued', 'lease_until', ARGV[5], 'worker', '')
keep_alive(KEYS[1], KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
return 'applied'
"""
)

# KEYS: meta. → {status, phase}; raises the cancel flag only on a running task
_CANCEL = LuaScript(
    """
local st = redis.call('HMGET', KEYS[1], 'status', 'phase')
if st[1] == 'running' then redis.call('HSET', KEYS[1], 'cancel', '1') end
return {st[1] or '', st[2] or ''}
"""
)

# KEYS: session pointer. ARGV: task_id, ttl, expected current ('' = none)  → nil, or the holder
_CLAIM_SESSION = LuaScript(
    """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[3] then return current end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
)

# KEYS: session pointer. ARGV: task id, ttl. Extends it only while it points at this task.
_EXTEND_IF = LuaScript(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
)

# KEYS: key. ARGV: expected value
_DELETE_IF = LuaScript(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ttl_ms() -> int:
    return get_settings().stream_ttl_seconds * 1000


def _json(chunk: Chunk | str) -> str:
    return chunk if isinstance(chunk, str) else chunk.to_json()


def _task_keys(task_id: str) -> list[str]:
    return [keys.task_meta(task_id), keys.task_stream(task_id)]


async def _extend_index(task: ActiveTask, lease_until: int) -> None:
    """Move the keys outside the task's slot along with its lease. The session pointer only
    while it is this task's: a turn that handed the session over must not shorten it."""
    ttl = _ttl_ms() + max(0, lease_until - _now_ms())
    pipe = get_redis().pipeline(transaction=False)
    pipe.zadd(keys.RUNNING_TASKS, {task.task_id: lease_until})
    pipe.pexpire(keys.operation(task.operation_id), ttl)
    pointer = keys.session_active_task(task.session_id)
    await asyncio.gather(pipe.execute(), _EXTEND_IF(keys=[pointer], args=[task.task_id, ttl]))


# --- Creating and writing -------------------------------------------------------------------
async def create_task(
    *,
    session_id: str,
    user_id: str | None,
    tool_call_id: str = "chat_stream",
    tool_name: str = "chat",
    operation_id: str | None = None,
    task_id: str | None = None,
    tool_input: str = "",
    claim_session: bool = True,
    lease_seconds: int | None = None,
) -> ActiveTask:
    """Create a running task and (unless `claim_session` is False) make it the session's
    active one. A session runs one task at a time: `TaskAlreadyRunning` if another runs.
    Every key is written with its TTL; none can be left without one.
    """
    settings = get_settings()
    task_id = task_id or str(uuid.uuid4())
    operation_id = operation_id or str(uuid.uuid4())
    now = _now_ms()
    lease_until = now + (lease_seconds or settings.dispatch_grace_seconds) * 1000
    ttl = _ttl_ms() + (lease_until - now)

    if claim_session:
        await _claim_session(session_id, task_id, ttl, expected="")

    meta = {
        "task_id": task_id,
        "session_id": session_id,
        "user_id": user_id or "",
        "tool_call_id": tool_call_id,
        "tool_name": tool_name,
        "operation_id": operation_id,
        "status": "running",
        "phase": "queued",
        "created_at": datetime.now(timezone.utc).isoformat(),
        "lease_until": str(lease_until),
        "worker": "",
        "tool_input": tool_input,
    }
    pipe = get_redis().pipeline(transaction=False)
    pipe.set(keys.operation(operation_id), task_id, px=ttl)
    pipe.zadd(keys.RUNNING_TASKS, {task_id: lease_until})
    created, _ = await asyncio.gather(
        _CREATE(keys=_task_keys(task_id), args=[_ttl_ms(), now, *_flatten(meta)]),
        pipe.execute(),
    )
    if not created:
        raise ValueError(f"task {task_id} already exists")
    return ActiveTask.from_meta(meta)


def _flatten(mapping: dict[str, str]) -> list[str]:
    return [item for pair in mapping.items() for item in pair]


async def _claim_session(session_id: str, task_id: str, ttl: int, expected: str) -> None:
    pointer = keys.session_active_task(session_id)
    for _ in range(3):
        holder = await _CLAIM_SESSION(keys=[pointer], args=[task_id, ttl, expected])
        if holder is None:
            return
        # A task that ended without clearing the pointer (a crash between the two
        # writes) no longer holds the session.
        if await get_redis().hget(keys.task_meta(holder), "status") == "running":
            raise TaskAlreadyRunning(holder)
        expected = holder
    raise TaskAlreadyRunning(expected)


async def hand_over_session(session_id: str, from_task_id: str, to_task_id: str) -> bool:
    """Make `to_task_id` the session's active task if `from_task_id` still is: a turn handing
    the session to the operation it started, or an operation that failed to start handing
    it back."""
    holder = await _CLAIM_SESSION(
        keys=[keys.session_active_task(session_id)],
        args=[
            to_task_id,
            _ttl_ms() + get_settings().operation_timeout_seconds * 1000,
            from_task_id,
        ],
    )
    return holder is None


async def publish_chunk(task_id: str, chunk: Chunk | str) -> str:
    return (await publish_chunks(task_id, [chunk]))[0]


async def publish_chunks(
    task_id: str, chunks: Sequence[Chunk | str], *, operation_result: bool = False
) -> list[str]:
    """Append chunks in one round trip (XADD each, TTLs of stream and meta refreshed
    together); returns their entry ids. `operation_result`: these chunks are the result of
    the task's operation (no closing error may follow them).

    Raises `TaskNotRunning` once the task has finished: a worker that lost its task (the
    sweeper failed it, a user cancelled it) learns it on its next write and stops.
    """
    if not chunks:
        return []
    ids = await _PUBLISH(
        keys=_task_keys(task_id),
        args=[
            get_settings().stream_max_length,
            _ttl_ms(),
            _now_ms(),
            "1" if operation_result else "0",
            *map(_json, chunks),
        ],
    )
    if ids is None:
        raise TaskNotRunning(task_id)
    return list(ids)


async def mark_task_completed(
    task_id: str,
    status: FinalStatus = "completed",
    error_text: str | None = None,
    closing: Sequence[Chunk | str] = (),
) -> bool:
    """End a running task and append its single `finish` (after an `error` when failed).

    `closing` chunks close an operation's tool call that will never get its result; they go
    first, in the same script, and only if this call ends the task and no result was applied.
    Only the first call changes anything; later calls return False and append nothing.
    """
    if status not in ("completed", "failed", "cancelled"):
        raise ValueError(f"cannot complete a task as {status!r}")
    error_json = (
        Error(error_text=error_text or "The request failed.").to_json()
        if status == "failed"
        else ""
    )
    ids = await _COMPLETE(
        keys=_task_keys(task_id),
        args=[
            status,
            _now_ms(),
            get_settings().stream_max_length,
            _ttl_ms(),
            error_json,
            FINISH_JSON,
            *map(_json, closing),
        ],
    )
    if ids is None:
        return False
    await _forget_running(task_id)
    return True


async def _forget_running(task_id: str) -> None:
    r = get_redis()
    session_id = await r.hget(keys.task_meta(task_id), "session_id")
    cleared = [r.zrem(keys.RUNNING_TASKS, task_id)]
    if session_id:
        cleared.append(_DELETE_IF(keys=[keys.session_active_task(session_id)], args=[task_id]))
    await asyncio.gather(*cleared)


# --- Reading ------------------------------------------------------------------------------
async def get_task(task_id: str) -> ActiveTask | None:
    meta = await get_redis().hgetall(keys.task_meta(task_id))
    return ActiveTask.from_meta(meta) if meta else None


async def find_task_by_operation_id(operation_id: str) -> ActiveTask | None:
    task_id = await get_redis().get(keys.operation(operation_id))
    return await get_task(task_id) if task_id else None


async def get_task_with_expiry_info(task_id: str) -> tuple[ActiveTask | None, str | None]:
    """(task, None); (None, TASK_EXPIRED) when only its stream is left; else TASK_NOT_FOUND."""
    pipe = get_redis().pipeline(transaction=False)
    pipe.hgetall(keys.task_meta(task_id))
    pipe.exists(keys.task_stream(task_id))
    meta, stream_exists = await pipe.execute()
    if meta:
        return ActiveTask.from_meta(meta), None
    return None, TASK_EXPIRED if stream_exists else TASK_NOT_FOUND


async def last_entry_id(task_id: str) -> str:
    entries = await get_redis().xrevrange(keys.task_stream(task_id), count=1)
    return entries[0][0] if entries else "0-0"


async def get_active_task_for_session(
    session_id: str, user_id: str | None = None
) -> tuple[ActiveTask | None, str]:
    """The session's running task and its last entry id: a pointer read, then one
    round trip on the task's slot. Never a SCAN."""
    r = get_redis()
    task_id = await r.get(keys.session_active_task(session_id))
    if not task_id:
        return None, "0-0"
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(keys.task_meta(task_id))
    pipe.xrevrange(keys.task_stream(task_id), count=1)
    meta, last = await pipe.execute()
    if not meta:
        return None, "0-0"
    task = ActiveTask.from_meta(meta)
    if not task.running or not task.visible_to(user_id):
        return None, "0-0"
    return task, last[0][0] if last else "0-0"


# --- Workers, leases, cancellation ----------------------------------------------------------
async def claim_task(task_id: str, worker_id: str) -> Literal["ok", "taken", "not-running"]:
    """Take a task's worker lease. Only the first claim wins, so a retried invocation of
    the same job never runs a turn twice."""
    now = _now_ms()
    lease_ms = get_settings().worker_lease_seconds * 1000
    result = await _CLAIM(keys=_task_keys(task_id), args=[worker_id, lease_ms, now, _ttl_ms()])
    if result == "ok":
        await get_redis().zadd(keys.RUNNING_TASKS, {task_id: now + lease_ms})
    return result


class LeaseState(NamedTuple):
    status: str
    cancel_requested: bool
    held: bool


async def refresh_lease(task: ActiveTask, worker_id: str) -> LeaseState:
    """Extend the worker's lease (and every key of the task with it); report cancellation."""
    now = _now_ms()
    lease_ms = get_settings().worker_lease_seconds * 1000
    status, cancel, held = await _REFRESH(
        keys=_task_keys(task.task_id), args=[worker_id, lease_ms, now, _ttl_ms()]
    )
    if held:
        await _extend_index(task, now + lease_ms)
    return LeaseState(status, cancel == "1", bool(held))


async def set_phase(task: ActiveTask, phase: Literal["queued", "awaiting"], seconds: int) -> bool:
    """Release the worker lease and give the task `seconds` before the sweeper fails it:
    `awaiting` a webhook, or `queued` for the next worker."""
    now = _now_ms()
    lease_until = now + seconds * 1000
    ok = await _SET_PHASE(keys=_task_keys(task.task_id), args=[phase, lease_until, now, _ttl_ms()])
    if ok:
        await _extend_index(task, lease_until)
    return bool(ok)


async def apply_operation_result(
    task: ActiveTask, chunks: Sequence[Chunk | str]
) -> Literal["applied", "duplicate", "not-running", "wrong-operation"]:
    """Publish an operation's result into its task exactly once, then queue the task for
    the worker that writes the continuation. Duplicates and late arrivals publish nothing."""
    settings = get_settings()
    now = _now_ms()
    lease_until = now + settings.dispatch_grace_seconds * 1000
    result = await _APPLY_RESULT(
        keys=_task_keys(task.task_id),
        args=[
            task.operation_id,
            settings.stream_max_length,
            _ttl_ms(),
            now,
            lease_until,
            *map(_json, chunks),
        ],
    )
    if result == "applied":
        await _extend_index(task, lease_until)
    return result


async def request_cancel(task_id: str) -> tuple[str, str]:
    """Raise the cancel flag of a running task; returns its (status, phase) as it was.

    A worker holding the task notices within `cancel_poll_ms`; a task with no worker on it
    (queued or awaiting a webhook) is for the caller to end.
    """
    status, phase = await _CANCEL(keys=[keys.task_meta(task_id)], args=[])
    return status, phase


async def task_state(task_id: str) -> tuple[str, bool]:
    """(status, cancel requested): what a worker polls while it works; "" for a vanished task."""
    status, cancel = await get_redis().hmget(keys.task_meta(task_id), "status", "cancel")
    return status or "", cancel == "1"


# --- Sweeping -------------------------------------------------------------------------------
async def expired_task_ids(limit: int = 100) -> list[str]:
    return await get_redis().zrangebyscore(keys.RUNNING_TASKS, 0, _now_ms(), start=0, num=limit)


async def fail_if_lease_expired(
    task_id: str, messages: dict[str, str]
) -> Literal["failed", "extended", "gone"]:
    """Fail a running task whose lease ran out, with the `error` its reader sees for the
    phase it was in (`messages`: queued / working / awaiting → text). Keeps the index
    honest either way."""
    texts = [messages[p] for p in ("queued", "working", "awaiting")]
    result = await _EXPIRE(
        keys=_task_keys(task_id),
        args=[_now_ms(), get_settings().stream_max_length, _ttl_ms(), FINISH_JSON, *texts],
    )
    if result in ("failed", "gone"):
        await _forget_running(task_id)
        return result
    await get_redis().zadd(keys.RUNNING_TASKS, {task_id: int(result)})
    return "extended"


# --- Subscribing ----------------------------------------------------------------------------
def subscribe(task_id: str, cursor: str = "0-0") -> Subscription:
    """Replay the task's stream after `cursor`, then follow it live until `finish`, through
    the process's fan-out (one Redis read per task, whatever the number of readers).
    `ReadersBusy` when the process already serves `max_readers_per_process` readers."""
    return Subscription(task_id, cursor)
