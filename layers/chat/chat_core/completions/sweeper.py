"""The sweeper, run every minute: nothing stays stuck.

    report = await sweep()        # the sweeper function's handler calls this

1. Completions nobody read (a lost wake-up) are processed.
2. Completions delivered but not acknowledged for `completions_claim_idle_ms` (a worker
   died) are claimed with XAUTOCLAIM, following its cursor instead of restarting at 0-0,
   and processed again; one delivered more than `completions_max_deliveries` times goes
   to the dead-letter stream with its reason, acknowledged, never retried forever.
3. Running tasks whose lease ran out are failed with an `error` the reader can understand,
   then `finish`: a worker died mid-turn, nobody picked the task up, or a webhook never came.
4. Consumers idle for `consumer_idle_delete_ms` with nothing pending are deleted.

One structured log line and one set of metrics per run.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass

from .. import keys, registry
from ..chat import operations
import logging

from ..observability import count
from ..redis_client import get_redis
from ..settings import get_settings
from .consumer import dead_letter, drain, ensure_group, process_entry

LEASE_EXPIRED_MESSAGES = {
    "queued": "The assistant could not be started in time. Please send your message again.",
    "working": "The assistant stopped unexpectedly while answering. Please send your message again.",
    "awaiting": "The operation did not report back in time, so it was given up.",
}

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    new: int = 0
    claimed: int = 0
    dead_lettered: int = 0
    failed_tasks: int = 0
    reindexed_tasks: int = 0
    deleted_consumers: int = 0
    duration_ms: int = 0


async def sweep(consumer: str | None = None) -> SweepReport:
    started = time.monotonic()
    consumer = consumer or f"sweeper-{uuid.uuid4().hex[:12]}"
    report = SweepReport()
    await ensure_group()
    report.new = await drain(consumer)
    report.claimed, report.dead_lettered = await claim_stale(consumer)
    report.failed_tasks, report.reindexed_tasks = await fail_expired_tasks()
    report.deleted_consumers = await delete_idle_consumers(keep=consumer)
    report.duration_ms = int((time.monotonic() - started) * 1000)
    logger.info("sweep finished", extra=asdict(report))
    count("SweptCompletions", report.claimed)  # DeadLetters is counted where each one happens
    count("SweptTasks", report.failed_tasks)
    count("DeletedConsumers", report.deleted_consumers)
    return report


async def claim_stale(consumer: str, *, max_rounds: int = 100) -> tuple[int, int]:
    """XAUTOCLAIM idle entries page by page; returns (claimed, dead-lettered)."""
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
            if fields is None:  # 6.2: the entry was trimmed away while pending
                await client.xack(keys.COMPLETIONS, keys.COMPLETIONS_GROUP, entry_id)
                continue
            times = deliveries.get(entry_id, 1)
            if times > settings.completions_max_deliveries:
                await dead_letter(entry_id, fields, times)
                dead += 1
            else:
                await process_entry(entry_id, fields, consumer)
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


async def fail_expired_tasks(limit: int = 500) -> tuple[int, int]:
    failed = reindexed = 0
    for task_id in await registry.expired_task_ids(limit):
        outcome = await registry.fail_if_lease_expired(task_id, LEASE_EXPIRED_MESSAGES)
        if outcome == "failed":
            failed += 1
            logger.warning(
                "task failed by the sweeper: its lease ran out", extra={"task_id": task_id}
            )
            task = await registry.get_task(task_id)
            if task is not None:
                await operations.abandon(
                    task, LEASE_EXPIRED_MESSAGES.get(task.phase, LEASE_EXPIRED_MESSAGES["working"])
                )
        elif outcome == "extended":
            reindexed += 1
    return failed, reindexed


async def delete_idle_consumers(keep: str) -> int:
    idle_ms = get_settings().consumer_idle_delete_ms
    client = get_redis()
    deleted = 0
    for info in await client.xinfo_consumers(keys.COMPLETIONS, keys.COMPLETIONS_GROUP):
        name = info["name"]
        if name != keep and int(info["pending"]) == 0 and int(info["idle"]) >= idle_ms:
            await client.xgroup_delconsumer(keys.COMPLETIONS, keys.COMPLETIONS_GROUP, name)
            deleted += 1
    return deleted
