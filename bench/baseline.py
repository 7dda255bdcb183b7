"""The naive baseline: what the production system this replaces did, faithfully.

    await create_task(r, task_id="t", session_id="s", user_id="u", operation_id="o")
    await publish_chunk(r, "t", chunk_json)          # XADD, then EXPIRE: two round trips
    meta, last_id = await get_active_task_for_session(r, "s", "u")   # SCAN the keyspace
    sub = PollingSubscriber(r, "t", "0-0").start()   # XREAD BLOCK loop into a queue

Used only by the benchmarks, against the same redis-server as our code. Its keys have
their own prefix, so both layouts can live in one database. Where production had a bug
that would stall a benchmark (replay with `BLOCK 0`), the baseline takes the fixed form and
says so: the baseline is never made slower than what production did.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

META_PREFIX = "naive:task:meta:"
STREAM_PREFIX = "naive:stream:"
OPERATION_PREFIX = "naive:task:op:"

STREAM_MAX_LENGTH = 10_000
STREAM_TTL_SECONDS = 3_600
SCAN_COUNT = 100
# Longer than chat_core's client socket timeout (10 s): an idle baseline subscriber would
# time out, so the benchmarks keep every baseline stream busy until its `finish`.
LISTENER_BLOCK_MS = 30_000
LISTENER_COUNT = 100
REPLAY_COUNT = 1_000


def task_meta(task_id: str) -> str:
    return f"{META_PREFIX}{task_id}"


def task_stream(task_id: str) -> str:
    return f"{STREAM_PREFIX}{task_id}"


def operation(operation_id: str) -> str:
    return f"{OPERATION_PREFIX}{operation_id}"


def meta_fields(
    *,
    task_id: str,
    session_id: str,
    user_id: str | None,
    operation_id: str,
    status: str = "running",
    tool_call_id: str = "chat_stream",
    tool_name: str = "chat",
    created_at: str | None = None,
) -> dict[str, str]:
    """The meta hash production wrote (no lease, phase or worker: it had none)."""
    return {
        "task_id": task_id,
        "session_id": session_id,
        "user_id": user_id or "",
        "tool_call_id": tool_call_id,
        "tool_name": tool_name,
        "operation_id": operation_id,
        "status": status,
        "created_at": created_at or datetime.now(UTC).isoformat(),
    }


async def create_task(
    r: Any, *, task_id: str, session_id: str, user_id: str | None, operation_id: str
) -> None:
    """HSET, EXPIRE, SET as three awaited calls, no transaction: production's create."""
    fields = meta_fields(
        task_id=task_id, session_id=session_id, user_id=user_id, operation_id=operation_id
    )
    await r.hset(task_meta(task_id), mapping=fields)
    await r.expire(task_meta(task_id), STREAM_TTL_SECONDS)
    await r.set(operation(operation_id), task_id, ex=STREAM_TTL_SECONDS)


async def publish_chunk(r: Any, task_id: str, data: str) -> str:
    """One chunk: XADD (approximate MAXLEN), then EXPIRE, each awaited on its own."""
    stream = task_stream(task_id)
    entry_id: str = await r.xadd(stream, {"data": data}, maxlen=STREAM_MAX_LENGTH, approximate=True)
    await r.expire(stream, STREAM_TTL_SECONDS)
    return entry_id


async def get_active_task_for_session(
    r: Any, session_id: str, user_id: str | None
) -> tuple[dict[str, str] | None, str]:
    """SCAN every meta key with one HGETALL each; the first running task of the session
    not owned by someone else, and its last entry id (XREVRANGE COUNT 1)."""
    cursor = 0
    while True:
        cursor, meta_keys = await r.scan(cursor, match=f"{META_PREFIX}*", count=SCAN_COUNT)
        for key in meta_keys:
            meta = await r.hgetall(key)
            if meta.get("session_id") != session_id or meta.get("status") != "running":
                continue
            owner = meta.get("user_id") or None
            if owner is not None and owner != user_id:
                continue
            last = await r.xrevrange(task_stream(meta["task_id"]), count=1)
            return meta, last[0][0] if last else "0-0"
        if cursor == 0:
            return None, "0-0"


async def replay(r: Any, task_id: str, cursor: str = "0-0") -> list[tuple[str, str]]:
    """Production's replay: one XREAD COUNT 1000, so a longer stream loses its tail.

    Production passed `block=0` (block forever on an empty tail); here it does not block.
    """
    reply = await r.xread({task_stream(task_id): cursor}, count=REPLAY_COUNT)
    return [(entry_id, fields["data"]) for entry_id, fields in (reply[0][1] if reply else [])]


class PollingSubscriber:
    """Production's stream listener: XREAD BLOCK 30000 COUNT 100 in a loop, into an
    unbounded queue, until a `finish` chunk; on an idle timeout it checks the status.

    Production rebuilt a pydantic chunk model from every entry; this only reads the type,
    which makes the baseline cheaper than the original, never dearer.
    """

    def __init__(self, r: Any, task_id: str, cursor: str = "0-0") -> None:
        self.queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self._r = r
        self._task_id = task_id
        self._cursor = cursor
        self._listener: asyncio.Task[None] | None = None

    def start(self) -> PollingSubscriber:
        self._listener = asyncio.create_task(self._listen())
        return self

    async def close(self) -> None:
        if self._listener is not None and not self._listener.done():
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)

    async def next(self) -> tuple[str, str] | None:
        """The next (entry id, data), or None once the stream ended."""
        return await self.queue.get()

    async def _listen(self) -> None:
        stream = task_stream(self._task_id)
        while True:
            reply = await self._r.xread(
                {stream: self._cursor}, block=LISTENER_BLOCK_MS, count=LISTENER_COUNT
            )
            if not reply:
                status = await self._r.hget(task_meta(self._task_id), "status")
                if status and status != "running":
                    await self.queue.put(None)
                    return
                continue
            for entry_id, fields in reply[0][1]:
                self._cursor = entry_id
                await self.queue.put((entry_id, fields["data"]))
                if json.loads(fields["data"])["type"] == "finish":
                    await self.queue.put(None)
                    return
