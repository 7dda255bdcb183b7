"""Completions arriving for operations: queued durably on one Redis stream, exactly once per
(operation, webhook id), then processed by the request that brought them.

    answer = await accept_webhook(operation_id, webhook_id, success=True, result={...})
    answer.status, answer.body        # 202 {"status": "accepted", ...}, the same again on a repeat

Every repeat of a delivery gets the first answer back and changes nothing: the dedupe
record and the stream entry are written by one script under the completions hash tag, so
ten concurrent deliveries queue it once. The same script delivers the new entry to this
process's consumer, and the request processes it as any consumer would before it answers:
the result is applied (beside the queueing, in the same round trip: applying is
idempotent), the continuation dispatched, the entry acknowledged. The continuation starts
without waiting for a worker to be woken and to read the stream. A request that dies half
way leaves the entry pending, and the sweeper claims it a minute later. Only when older
entries were waiting (more than a batch) or `webhook_process_inline` is off is a worker
woken instead; if that wake-up is lost, the sweeper reads the entry. Entries are never
trimmed before they are acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from .. import keys, lua, registry
from ..redis_client import get_redis
from ..settings import get_settings
from ..worker.dispatch import DispatchError, get_dispatcher
from ..worker.jobs import DrainCompletions
from .consumer import apply_completion, conclude, process_entry
from .message import CompletionMessage

logger = logging.getLogger(__name__)

# One consumer per process: the sweeper deletes it once it has long been idle.
CONSUMER = f"webhook-{uuid.uuid4().hex[:12]}"


class UnknownOperation(Exception):
    pass


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]
    queued: bool


async def accept_webhook(
    operation_id: str,
    webhook_id: str,
    *,
    success: bool,
    result: Any = None,
    error: str | None = None,
) -> WebhookAnswer:
    seen = keys.webhook_seen(operation_id, webhook_id)
    # The lookup (two round trips) is sent first: the dedupe read (one) is not the longer wait.
    # A repeat is answered before anything is applied.
    task, first = await asyncio.gather(
        registry.find_task_by_operation_id(operation_id), get_redis().get(seen)
    )
    if first is not None:
        return _answer(first, queued=False)
    if task is None:
        raise UnknownOperation(operation_id)
    settings = get_settings()
    dedupe_seconds = settings.webhook_dedupe_seconds
    if not task.running:
        # Late news about a finished task: acknowledged, nothing to do, the same next time.
        body = {"status": "already_finished", "operation_id": operation_id, "task_id": task.task_id}
        await get_redis().set(seen, json.dumps(body), ex=dedupe_seconds, nx=True)
        return _answer(await get_redis().get(seen) or json.dumps(body), queued=False)
    body = {"status": "accepted", "operation_id": operation_id, "task_id": task.task_id}
    message = CompletionMessage.now(operation_id, task.task_id, success, result, error, webhook_id)
    inline = settings.webhook_process_inline
    enqueue = lua.COMPLETION_ENQUEUE_ONCE(
        seen=seen,
        completions=keys.COMPLETIONS,
        answer_json=json.dumps(body),
        entry_json=message.model_dump_json(),
        dedupe_seconds=dedupe_seconds,
        group=keys.COMPLETIONS_GROUP,
        consumer=CONSUMER if inline else "",
        count=settings.completions_batch_size,
    )
    if not inline:
        answer_json, queued, *_ = await enqueue
        if queued:
            await wake_worker()
        return _answer(answer_json, queued=bool(queued))
    # Applied beside its queueing, not after it: the continuation waits for both. Applying
    # is idempotent (once per operation), so whichever way the queueing goes the result is
    # applied once, and the entry's processing (here, or by whoever has it) only repeats it.
    results: tuple[Any, str | BaseException] = await asyncio.gather(
        enqueue, apply_completion(task, message), return_exceptions=True
    )
    queueing, applied = results
    if isinstance(queueing, BaseException):
        raise queueing
    if isinstance(applied, BaseException) and not isinstance(applied, Exception):
        raise applied
    answer_json, queued, *entries = queueing
    if queued:
        await _process_delivered(entries[0], entries[1:], task, applied)
    elif isinstance(applied, Exception):
        logger.warning("applying a repeated delivery failed: %r", applied)
    return _answer(answer_json, queued=bool(queued))


async def _process_delivered(
    entry_id: str, delivered: list[str], task: registry.TaskRecord, applied: str | Exception
) -> None:
    """Conclude the new entry `entry_id`, already applied (`applied`: its outcome, or what
    applying it raised), and process what else the script delivered to this consumer
    (`delivered`: id, data, id, data …) as a worker would. When the new entry was not among
    them (older ones filled the batch), a worker is woken: it finds the result applied."""
    entries = dict(zip(delivered[::2], delivered[1::2], strict=True))
    if entry_id in entries:  # first: its continuation is what the sender's user waits for
        await conclude(entry_id, applied, task)
    elif isinstance(applied, Exception):
        logger.warning("applying a delivery failed; a worker will process it: %r", applied)
    for delivered_id, data in entries.items():
        if delivered_id != entry_id:
            await process_entry(delivered_id, {"data": data}, task=task)
    if entry_id not in entries:
        await wake_worker()


def _answer(answer_json: str, *, queued: bool) -> WebhookAnswer:
    body = json.loads(answer_json)
    return WebhookAnswer(202 if body["status"] == "accepted" else 200, body, queued=queued)


async def wake_worker() -> None:
    try:
        await get_dispatcher().dispatch(DrainCompletions())
    except DispatchError:
        logger.warning("could not wake the worker; the sweeper will pick the completion up")
