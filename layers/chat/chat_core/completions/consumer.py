"""Processing completions: a consumer group on the completions stream.

    processed = await drain(consumer="worker-1")          # what a woken worker does
    service = ConsumerService(); service.start(); ...; await service.stop()   # long-lived

Processing an entry applies the operation's result to its task (`apply_completion`, through
`tasks.apply_result`: the result chunks once, the pending tool message becomes the result)
and dispatches the worker that writes the model's continuation (a `ContinueOperation`
job); only then is the entry acknowledged (`conclude`). Nothing here runs the model, so an
entry is acknowledged in moments whatever the continuation takes, and a redelivery (a crash
before the acknowledgement) only dispatches again: the continuation's claim lets one worker
run it.

Unreadable entries and entries for unknown tasks are acknowledged with a log line and a
metric. An entry whose processing raises (a dispatch that failed, say) stays pending;
`claim_stale` redelivers it, and after `completions_max_deliveries` moves it to the
dead-letter stream with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from pydantic import ValidationError
from redis.exceptions import ResponseError

from .. import keys, lua, registry, tasks
from .. import tools as tool_catalog
from ..observability import count, milliseconds
from ..redis_client import get_redis
from ..settings import get_settings
from ..tools import ToolContext, ToolOutcome
from ..worker.dispatch import get_dispatcher
from ..worker.jobs import ContinueOperation, SessionRef
from .message import CompletionMessage

logger = logging.getLogger(__name__)


async def ensure_group() -> None:
    """Create the consumer group (and the stream) if missing; BUSYGROUP means it exists."""
    try:
        await get_redis().xgroup_create(
            keys.COMPLETIONS, keys.COMPLETIONS_GROUP, id="0", mkstream=True
        )
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def drain(consumer: str, *, block_ms: int | None = None, limit: int = 1000) -> int:
    """Process new entries until none is left (or `limit`); returns how many."""
    batch = get_settings().completions_batch_size
    processed = 0
    while processed < limit:
        reply = await _read_group(consumer, batch, block_ms)
        entries = reply[0][1] if reply else []
        if not entries:
            break
        for entry_id, fields in entries:
            await process_entry(entry_id, fields)
            processed += 1
    return processed


async def _read_group(consumer: str, count: int, block_ms: int | None) -> Any:
    """XREADGROUP, creating the group first only when the server says it has none (a new
    or restarted server): not a round trip on every drain."""

    def read() -> Any:
        return get_redis().xreadgroup(
            keys.COMPLETIONS_GROUP, consumer, {keys.COMPLETIONS: ">"}, count=count, block=block_ms
        )

    try:
        return await read()
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
    await ensure_group()
    return await read()


async def process_entry(
    entry_id: str,
    fields: dict[str, str] | None,
    *,
    task: registry.TaskRecord | None = None,
    redelivered: bool = False,
) -> str:
    """Apply one entry, dispatch its continuation, acknowledge it; an entry whose processing
    raised stays pending. Returns what happened. `task`: the entry's task, when the caller
    has just read it (not read again). `redelivered`: the entry was delivered before
    (claimed from a consumer that did not finish it), so a failure of that delivery may be
    on record."""
    try:
        outcome, task = await _apply(fields, task)
    except Exception as exc:
        return await _failed(entry_id, exc)
    return await conclude(entry_id, outcome, task, redelivered=redelivered)


async def conclude(
    entry_id: str,
    outcome: str | Exception,
    task: registry.TaskRecord | None,
    *,
    redelivered: bool = False,
) -> str:
    """What is left of processing an entry once its result was applied (`outcome`, or what
    applying it raised): the continuation dispatched, also after a duplicate (the first
    processing may have died before dispatching), then the acknowledgement. An entry whose
    applying or dispatch failed stays pending."""
    if isinstance(outcome, Exception):
        return await _failed(entry_id, outcome)
    if task is not None and outcome in ("applied", "duplicate"):
        try:
            await get_dispatcher().dispatch(
                ContinueOperation(
                    task_id=task.task_id,
                    session=SessionRef(session_id=task.session_id, user_id=task.user_id),
                )
            )
        except Exception as exc:
            return await _failed(entry_id, exc)
    await _acknowledge(entry_id, forget_failure=redelivered)
    return outcome


async def _failed(entry_id: str, exc: BaseException) -> str:
    reason = f"{type(exc).__name__}: {exc}"[:500]
    logger.warning("completion processing failed", extra={"entry_id": entry_id, "reason": reason})
    await get_redis().hset(keys.COMPLETION_FAILURES, entry_id, reason)
    count("CompletionFailures")
    return "failed"


async def _acknowledge(entry_id: str, *, forget_failure: bool) -> None:
    if not forget_failure:  # a first delivery: no failure of it can be on record
        await get_redis().xack(keys.COMPLETIONS, keys.COMPLETIONS_GROUP, entry_id)
        return
    pipe = get_redis().pipeline(transaction=False)
    pipe.xack(keys.COMPLETIONS, keys.COMPLETIONS_GROUP, entry_id)
    pipe.hdel(keys.COMPLETION_FAILURES, entry_id)
    await pipe.execute()


async def _apply(
    fields: dict[str, str] | None, known: registry.TaskRecord | None
) -> tuple[str, registry.TaskRecord | None]:
    try:
        message = CompletionMessage.model_validate_json((fields or {})["data"])
    except (KeyError, ValidationError) as exc:
        logger.error(
            "unreadable completion acknowledged and dropped", extra={"error": str(exc)[:300]}
        )
        count("CompletionParseErrors")
        return "unreadable", None
    task = known if known is not None and known.task_id == message.task_id else None
    if task is None:
        task = await registry.get_task(message.task_id)
    if task is None:
        logger.warning(
            "completion for an unknown task acknowledged", extra={"task_id": message.task_id}
        )
        count("CompletionUnknownTask")
        return "unknown-task", None
    return await apply_completion(task, message), task


async def apply_completion(task: registry.TaskRecord, message: CompletionMessage) -> str:
    """The result, post-processed, applied to its task (`tasks.apply_result`): "applied",
    "duplicate", or "not-running" / "wrong-operation" (nothing to continue)."""
    if task.operation_id != message.operation_id:
        outcome = "wrong-operation"
    else:
        # Redacted and post-processed (create_agent saves the agent) before anyone sees it.
        result = await tool_catalog.default_tools().finish(
            task.tool_name,
            ToolContext.for_operation(task),
            ToolOutcome(message.success, message.result, message.error),
        )
        outcome = await tasks.apply_result(task, *result)
    if outcome in ("not-running", "wrong-operation"):
        logger.info(
            "completion for a finished task ignored",
            extra={"task_id": task.task_id, "outcome": outcome},
        )
    elif outcome == "applied" and message.received_at_ms:
        milliseconds("CompletionLag", time.time() * 1000 - message.received_at_ms)
    return outcome


async def dead_letter(entry_id: str, fields: dict[str, str] | None, deliveries: int) -> None:
    reason = await get_redis().hget(keys.COMPLETION_FAILURES, entry_id) or "unknown"
    await lua.COMPLETION_DEAD_LETTER(
        completions=keys.COMPLETIONS,
        dead=keys.DEAD_LETTERS,
        failures=keys.COMPLETION_FAILURES,
        now_ms=int(time.time() * 1000),
        maxlen=get_settings().stream_max_length,
        group=keys.COMPLETIONS_GROUP,
        entry_id=entry_id,
        data=(fields or {}).get("data", ""),
        deliveries=deliveries,
        reason=f"failed {deliveries} deliveries; last error: {reason}",
    )
    logger.error(
        "completion moved to the dead-letter stream",
        extra={"entry_id": entry_id, "deliveries": deliveries},
    )
    count("DeadLetters")


async def claim_stale(consumer: str, *, max_rounds: int = 100) -> tuple[int, int]:
    """XAUTOCLAIM entries delivered but not acknowledged for `completions_claim_idle_ms` (a
    worker died), page by page following its cursor; process them again, or dead-letter
    one delivered more than `completions_max_deliveries` times. Returns (claimed, dead)."""
    settings = get_settings()
    client = get_redis()
    cursor, claimed, dead = "0-0", 0, 0
    for _ in range(max_rounds):
        # Redis 6.2 answers [cursor, entries]; 7 adds the ids it found deleted (and drops
        # them from the pending list itself).
        reply = await client.xautoclaim(
            keys.COMPLETIONS,
            keys.COMPLETIONS_GROUP,
            consumer,
            min_idle_time=settings.completions_claim_idle_ms,
            start_id=cursor,
            count=settings.completions_batch_size,
        )
        cursor, entries = reply[0], reply[1]
        deliveries = await _delivery_counts([entry_id for entry_id, _ in entries])
        for entry_id, fields in entries:
            claimed += 1
            if fields is None:  # 6.2: the entry was deleted while pending
                await client.xack(keys.COMPLETIONS, keys.COMPLETIONS_GROUP, entry_id)
                continue
            times = deliveries.get(entry_id, 1)
            if times > settings.completions_max_deliveries:
                await dead_letter(entry_id, fields, times)
                dead += 1
            else:
                await process_entry(entry_id, fields, redelivered=True)
        if cursor in ("0-0", "0"):
            break
    return claimed, dead


async def _delivery_counts(entry_ids: list[str]) -> dict[str, int]:
    if not entry_ids:
        return {}
    pending = await get_redis().xpending_range(
        keys.COMPLETIONS,
        keys.COMPLETIONS_GROUP,
        min=entry_ids[0],
        max=entry_ids[-1],
        count=len(entry_ids) * 2,
    )
    return {p["message_id"]: int(p["times_delivered"]) for p in pending}


class ConsumerService:
    """The consumer as a long-lived loop (dev server, container deployments).

    It blocks on XREADGROUP, claims entries other consumers left behind, and survives
    Redis outages: every failure is logged and retried with a capped backoff, and it goes
    back to work when Redis returns. It never gives up on its own; `stop()` ends it.
    """

    def __init__(
        self, consumer: str | None = None, *, block_ms: int = 2_000, max_backoff: float = 30.0
    ) -> None:
        self.consumer = consumer or f"service-{uuid.uuid4().hex[:12]}"
        self.block_ms = block_ms
        self.max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self.healthy = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"consumer:{self.consumer}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await drain(self.consumer, block_ms=self.block_ms)  # creates the group if missing
                await claim_stale(self.consumer)
                if not self.healthy.is_set():
                    logger.info("completion consumer working", extra={"consumer": self.consumer})
                self.healthy.set()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.healthy.clear()
                logger.warning(
                    "completion consumer cannot reach Redis; retrying",
                    extra={
                        "error": f"{type(exc).__name__}: {exc}"[:300],
                        "retry_in_seconds": backoff,
                    },
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
