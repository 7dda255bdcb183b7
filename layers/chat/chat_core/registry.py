"""The stream registry: each task's record and chunks in Redis, replayable from any cursor.

    task = await get_task(task_id)                         # a TaskRecord, or None
    await publish_chunks(task_id, [TextDelta(id="t1", delta="Hel")])
    async with subscribe(task_id, cursor="0-0") as sub:
        async for entry in sub:                            # replay, then live, until `finish`
            print(entry.id, entry.data)

Per task, under the hash tag `{task_id}`: a meta HASH (who, what, status, lease, cancel
flag) and a STREAM (field `data` = chunk wire JSON). Every write is one Lua script on that
slot, so the two keys' TTLs move together, and the TTL never drops below the lease, so a
running task's meta cannot expire under it.

This module reads tasks and appends content to running ones. Every change of a task's
state (created, claimed, awaiting, result applied, cancelled, finished, expired) belongs
to `chat_core.tasks`, which owns the lifecycle.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from . import keys, lua
from .fanout import ReadersBusy as ReadersBusy  # re-exported: readers import them from here
from .fanout import StreamEntry as StreamEntry
from .fanout import Subscription, shared_read
from .protocol.chunks import Chunk
from .redis_client import get_redis, reader_redis
from .settings import get_settings

FinalStatus = Literal["completed", "failed", "cancelled"]
TURN = "chat"
"""The `tool_name` of a chat turn's task; any other name is a long-running tool's operation."""


class TaskNotRunning(Exception):
    """Writing to a task that finished (or vanished): its worker must stop."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} is not running")
        self.task_id = task_id


@dataclass(frozen=True)
class TaskRecord:
    """A task as stored: running or finished (see `status`)."""

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
    def from_meta(cls, meta: dict[str, str]) -> TaskRecord:
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
        return self.tool_name != TURN

    def visible_to(self, user_id: str | None) -> bool:
        """Owned tasks are visible only to their owner; anonymous ones to whoever has the id."""
        return self.user_id is None or self.user_id == user_id


def now_ms() -> int:
    return int(time.time() * 1000)


def ttl_ms() -> int:
    return get_settings().stream_ttl_seconds * 1000


def task_keys(task_id: str) -> dict[str, Any]:
    """The `meta` and `stream` keys of a task, as the task scripts name them."""
    return {"meta": keys.task_meta(task_id), "stream": keys.task_stream(task_id)}


def wire(chunk: Chunk | str) -> str:
    return chunk if isinstance(chunk, str) else chunk.to_json()


# --- Writing content ------------------------------------------------------------------------
async def publish_chunks(
    task_id: str, chunks: Sequence[Chunk | str], *, writer: str = "", batch: int = 0
) -> list[str]:
    """Append chunks in one round trip (XADD each, TTLs of stream and meta refreshed
    together, at most once a second per task by this process); returns their entry ids. A
    `writer` numbering its `batch`es may send one again after a broken connection: a batch
    already in the stream is not appended twice (and returns no ids).

    Raises `TaskNotRunning` once the task has finished: a worker that lost its task (the
    sweeper failed it, a user cancelled it) learns it on its next write and stops.
    """
    if not chunks:
        return []
    now = time.monotonic()
    # A model's tokens come hundreds a second; the TTLs are refreshed at most once a second
    # (or a tenth of the TTL), so a stream expires at most that much before its full TTL.
    refresh_every = min(1.0, get_settings().stream_ttl_seconds / 10)
    refresh = now - _ttl_refreshed.get(task_id, -math.inf) >= refresh_every
    ids = await lua.TASK_PUBLISH(
        **task_keys(task_id),
        now_ms=now_ms(),
        ttl_ms=ttl_ms() if refresh else 0,
        writer=writer,
        batch=batch,
        rest=[wire(c) for c in chunks],
    )
    if ids is None:
        raise TaskNotRunning(task_id)
    cancel, *entry_ids = ids
    _published[task_id] = (now, cancel == "1")
    if refresh:
        _ttl_refreshed[task_id] = now
    return entry_ids


async def publish_chunk(task_id: str, chunk: Chunk | str) -> str:
    ids = await publish_chunks(task_id, [chunk])
    return ids[0] if ids else ""


# --- Reading ------------------------------------------------------------------------------
async def get_task(task_id: str) -> TaskRecord | None:
    meta = await get_redis().hgetall(keys.task_meta(task_id))
    return TaskRecord.from_meta(meta) if meta else None


async def get_task_or_expiry(task_id: str) -> tuple[TaskRecord | None, bool]:
    """(task, False); (None, True) when only its stream is left (expired); else (None, False).
    A reader's lookup: on the readers' pool, and shared by readers asking at once."""

    async def read() -> list[Any]:
        pipe = (await reader_redis()).pipeline(transaction=False)
        pipe.hgetall(keys.task_meta(task_id))
        pipe.exists(keys.task_stream(task_id))
        return await pipe.execute()

    meta, stream_exists = await shared_read(("task", task_id), read)
    if meta:
        return TaskRecord.from_meta(meta), False
    return None, bool(stream_exists)


async def get_tasks(task_ids: Sequence[str]) -> list[TaskRecord]:
    """The tasks that still exist among `task_ids`, in one round trip per slot."""
    if not task_ids:
        return []
    pipe = get_redis().pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hgetall(keys.task_meta(task_id))
    return [TaskRecord.from_meta(meta) for meta in await pipe.execute() if meta]


async def get_tasks_at_end(task_ids: Sequence[str]) -> list[tuple[TaskRecord, str]]:
    """The tasks that still exist among `task_ids`, each with its stream's last entry id
    ("0-0" for none), in one round trip per slot."""
    if not task_ids:
        return []
    pipe = get_redis().pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hgetall(keys.task_meta(task_id))
        pipe.xrevrange(keys.task_stream(task_id), count=1)
    replies = await pipe.execute()
    return [
        (TaskRecord.from_meta(meta), last[0][0] if last else "0-0")
        for meta, last in zip(replies[::2], replies[1::2], strict=True)
        if meta
    ]


async def find_task_by_operation_id(operation_id: str) -> TaskRecord | None:
    task_id = await get_redis().get(keys.operation(operation_id))
    return await get_task(task_id) if task_id else None


async def last_entry_id(task_id: str) -> str:
    entries = await get_redis().xrevrange(keys.task_stream(task_id), count=1)
    return entries[0][0] if entries else "0-0"


async def first_entry_id(task_id: str) -> str:
    entries = await get_redis().xrange(keys.task_stream(task_id), count=1)
    return entries[0][0] if entries else "0-0"


# task id → (when, cancel flag) as the last publish by this process found them: the publish
# script answers with the flag, so a worker writing chunks learns of a cancel without polling.
_published: dict[str, tuple[float, bool]] = {}
# task id → when a publish by this process last refreshed the task's TTLs
_ttl_refreshed: dict[str, float] = {}


async def task_state(task_id: str, fresh_within: float = 0.0) -> tuple[str, bool]:
    """(status, cancel requested): what a worker polls while it works; "" for a vanished task.
    Answered without Redis when this process published to the task in the last
    `fresh_within` seconds (the publish found it running, with this cancel flag)."""
    seen = _published.get(task_id)
    if seen is not None and time.monotonic() - seen[0] < fresh_within:
        return "running", seen[1]
    status, cancel = await get_redis().hmget(keys.task_meta(task_id), "status", "cancel")
    return status or "", cancel == "1"


def forget_published(task_id: str) -> None:
    _published.pop(task_id, None)
    _ttl_refreshed.pop(task_id, None)


# --- Subscribing ----------------------------------------------------------------------------
def subscribe(task_id: str, cursor: str = "0-0") -> Subscription:
    """Replay the task's stream after `cursor`, then follow it live until `finish`, through
    the process's fan-out (one Redis read per task, whatever the number of readers).
    `ReadersBusy` when the process already serves `max_readers_per_process` readers."""
    return Subscription(task_id, cursor)
