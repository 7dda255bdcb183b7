"""Processing completions: a consumer group on the completions stream.

    processed = await drain(consumer="worker-1")          # what a woken worker does
    service = ConsumerService(); service.start(); ...; await service.stop()   # long-lived

Each entry is acknowledged only after its effects are done. Processing claims the
operation first: the result is written into the operation's task by one script that does
nothing if the result was already written, so a duplicate delivery, a redelivery after a
crash, or a webhook racing the sweeper has no second effect. Then the pending tool message
becomes the result (idempotent), and the worker that wins the task's lease streams the
model's continuation into the same task and completes it.

Unreadable entries and entries for unknown tasks are acknowledged with a log line and a
metric. An entry whose processing raises stays pending; the sweeper redelivers it, and after
`completions_max_deliveries` moves it to the dead-letter stream with the reason.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pydantic import ValidationError
from redis.exceptions import ResponseError

from .. import keys, registry
from ..chat import operations
import logging

from ..observability import count, milliseconds
from ..redis_client import LuaScript, get_redis
from ..settings import get_settings
from .. import tools as tool_catalog
from ..tools import ToolContext, ToolOutcome
from .inbox import CompletionMessage

# KEYS: completions, dead letters, failures. ARGV: group, entry id, data, deliveries, reason, now
_DEAD_LETTER = LuaScript(
    """
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 10000, '*', 'entry_id', ARGV[2], 'data', ARGV[3],
           'deliveries', ARGV[4], 'reason', ARGV[5], 'dead_lettered_at', ARGV[6])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""
)

logger = logging.getLogger(__name__)


async def ensure_group() -> None:
    """Create the consumer group (and the stream) if missing; BUSYGROUP means it exists.
    Cheap enough to do on every drain, and a restarted server cannot lose it on us."""
    try:
        await get_redis().xgroup_create(
            keys.COMPLETIONS, keys.COMPLETIONS_GROUP, id="0", mkstream=True
        )
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def drain(consumer: str, *, block_ms: int | None = None, limit: int = 1000) -> int:
    """Process new entries until none is left (or `limit`); returns how many."""
    await ensure_group()
    batch = get_settings().completions_batch_size
    processed = 0
    while processed < limit:
        reply = await get_redis().xreadgroup(
            keys.COMPLETIONS_GROUP, consumer, {keys.COMPLETIONS: ">"}, count=batch, block=block_ms
        )
        entries = reply[0][1] if reply else []
        if not entries:
            break
        for entry_id, fields in entries:
            await process_entry(entry_id, fields, consumer)
            processed += 1
    return processed


async def process_entry(entry_id: str, fields: dict[str, str] | None, consumer: str) -> str:
    """Apply one entry; acknowledge unless it raised. Returns what happened."""
    try:
        outcome = await _apply(fields, consumer)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        logger.warning(
            "completion processing failed", extra={"entry_id": entry_id, "reason": reason}
        )
        await get_redis().hset(keys.COMPLETION_FAILURES, entry_id, reason)
        count("CompletionFailures")
        return "failed"
    await acknowledge(entry_id)
    return outcome


async def acknowledge(entry_id: str) -> None:
    pipe = get_redis().pipeline(transaction=False)
    pipe.xack(keys.COMPLETIONS, keys.COMPLETIONS_GROUP, entry_id)
    pipe.hdel(keys.COMPLETION_FAILURES, entry_id)
    await pipe.execute()


async def _apply(fields: dict[str, str] | None, consumer: str) -> str:
    try:
        message = CompletionMessage.model_validate_json((fields or {})["data"])
    except (KeyError, ValidationError) as exc:
        logger.error(
            "unreadable completion acknowledged and dropped", extra={"error": str(exc)[:300]}
        )
        count("CompletionParseErrors")
        return "unreadable"
    task = await registry.find_task_by_operation_id(message.operation_id)
    if task is None or task.task_id != message.task_id:
        task = await registry.get_task(message.task_id)
    if task is None:
        logger.warning(
            "completion for an unknown task acknowledged", extra={"task_id": message.task_id}
        )
        count("CompletionUnknownTask")
        return "unknown-task"
    return await handle_completion(task, message, consumer)


async def handle_completion(
    task: registry.ActiveTask, message: CompletionMessage, consumer: str
) -> str:
    from ..worker.runner import continue_operation  # the runner imports the chat core

    # Redacted and post-processed (create_agent saves the agent) before anyone sees it.
    outcome = await tool_catalog.default_tools().finish(
        task.tool_name,
        ToolContext.for_operation(task),
        ToolOutcome(message.success, message.result, message.error),
    )
    chunks = operations.result_chunks(task.tool_call_id, *outcome)
    applied = await registry.apply_operation_result(task, chunks)
    if applied in ("not-running", "wrong-operation"):
        logger.info(
            "completion for a finished task ignored",
            extra={"task_id": task.task_id, "outcome": applied},
        )
        return applied
    if message.received_at_ms:
        milliseconds("CompletionLag", time.time() * 1000 - message.received_at_ms)
    # Both are safe to repeat, so a redelivery after a crash finishes what was left.
    await operations.save_result(task, *outcome)
    ran = await continue_operation(task.task_id, consumer)
    return f"{applied}:{ran}"


async def dead_letter(entry_id: str, fields: dict[str, str] | None, deliveries: int) -> None:
    reason = await get_redis().hget(keys.COMPLETION_FAILURES, entry_id) or "unknown"
    await _DEAD_LETTER(
        keys=[keys.COMPLETIONS, keys.DEAD_LETTERS, keys.COMPLETION_FAILURES],
        args=[
            keys.COMPLETIONS_GROUP,
            entry_id,
            (fields or {}).get("data", ""),
            deliveries,
            f"failed {deliveries} deliveries; last error: {reason}",
            int(time.time() * 1000),
        ],
    )
    logger.error(
        "completion moved to the dead-letter stream",
        extra={"entry_id": entry_id, "deliveries": deliveries},
    )
    count("DeadLetters")


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
        from .sweeper import claim_stale

        backoff = 0.5
        while True:
            try:
                await ensure_group()
                await drain(self.consumer, block_ms=self.block_ms)
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
