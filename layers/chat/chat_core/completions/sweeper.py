"""The sweeper, run every minute: nothing stays stuck. It only sweeps and re-dispatches;
it never runs a turn, so it never loads the model client.

    report = await sweep()        # the sweeper function's handler calls this

1. Completions nobody read (a lost wake-up) are applied to their tasks, and the
   continuation is dispatched to a worker (`ContinueOperation`), not run here.
2. Completions delivered but not acknowledged for `completions_claim_idle_ms` (a worker
   died) are claimed with XAUTOCLAIM and processed again; one delivered more than
   `completions_max_deliveries` times goes to the dead-letter stream with its reason.
3. The completions stream is trimmed below its oldest unacknowledged entry, never above.
4. Running tasks whose lease ran out are failed (`tasks.expire`) with an `error` the reader
   can understand, then `finish`: a worker died mid-turn, nobody picked the task up, or a
   webhook never came.
5. Consumers idle for `consumer_idle_delete_ms` with nothing pending are deleted.

One structured log line and one set of metrics per run.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass

from .. import keys, tasks
from ..observability import count
from ..redis_client import get_redis
from ..settings import get_settings
from .consumer import claim_stale, drain, ensure_group

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
    await trim_acknowledged()
    report.failed_tasks, report.reindexed_tasks = await fail_expired_tasks()
    report.deleted_consumers = await delete_idle_consumers(keep=consumer)
    report.duration_ms = int((time.monotonic() - started) * 1000)
    logger.info("sweep finished", extra=asdict(report))
    count("SweptCompletions", report.claimed)  # DeadLetters is counted where each one happens
    count("SweptTasks", report.failed_tasks)
    count("DeletedConsumers", report.deleted_consumers)
    return report


async def trim_acknowledged() -> None:
    """Drop acknowledged completions: everything older than the oldest pending entry (or,
    with none pending, than the last one delivered). An unacknowledged one is never lost."""
    client = get_redis()
    pending = await client.xpending(keys.COMPLETIONS, keys.COMPLETIONS_GROUP)
    if pending["pending"]:
        keep_from = pending["min"]
    else:
        groups = await client.xinfo_groups(keys.COMPLETIONS)
        group = next(g for g in groups if g["name"] == keys.COMPLETIONS_GROUP)
        keep_from = group["last-delivered-id"]
    if keep_from not in ("0-0", None):
        await client.xtrim(keys.COMPLETIONS, minid=keep_from, approximate=True)


async def fail_expired_tasks(limit: int = 500) -> tuple[int, int]:
    failed = reindexed = 0
    for task_id in await tasks.expired_task_ids(limit):
        outcome = await tasks.expire(task_id)
        if outcome == "failed":
            failed += 1
            logger.warning(
                "task failed by the sweeper: its lease ran out", extra={"task_id": task_id}
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
