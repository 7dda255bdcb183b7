"""Completions arriving for operations: queued durably on one Redis stream, exactly once per
webhook id.

    answer = await accept_webhook(operation_id, webhook_id, success=True, result={...})
    answer.status, answer.body        # 202 {"status": "accepted", ...}, the same again on a repeat

    await publish_operation_complete(operation_id, task_id, success=True, result={...})

A repeated webhook id gets the first answer again and changes nothing: the dedupe record
and the stream entry are written by one script under the completions hash tag, so ten
concurrent deliveries of one webhook queue it once. The worker is then woken to process
it; if the wake-up is lost, the sweeper reads the entry a minute later.
"""

from __future__ import annotations

import logging
import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .. import keys, registry
from ..redis_client import LuaScript, get_redis
from ..settings import get_settings
from ..worker.dispatch import DispatchError, get_dispatcher
from ..worker.jobs import DrainCompletions

logger = logging.getLogger(__name__)


class CompletionMessage(BaseModel):
    """One entry of the completions stream (field `data`)."""

    operation_id: str
    task_id: str
    success: bool
    result: Any = None
    error: str | None = None
    webhook_id: str | None = None
    received_at_ms: int = 0

    @classmethod
    def now(
        cls,
        operation_id: str,
        task_id: str,
        success: bool,
        result: Any,
        error: str | None,
        webhook_id: str | None = None,
    ) -> "CompletionMessage":
        return cls(
            operation_id=operation_id,
            task_id=task_id,
            success=success,
            result=result,
            error=error,
            webhook_id=webhook_id,
            received_at_ms=int(time.time() * 1000),
        )


class UnknownOperation(Exception):
    pass


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]
    queued: bool


# KEYS: dedupe key, completions stream. ARGV: answer JSON, entry JSON, dedupe ttl s, maxlen
_ENQUEUE_ONCE = LuaScript(
    """
local seen = redis.call('GET', KEYS[1])
if seen then return {seen, 0} end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'data', ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return {ARGV[1], 1}
"""
)


async def accept_webhook(
    operation_id: str,
    webhook_id: str,
    *,
    success: bool,
    result: Any = None,
    error: str | None = None,
) -> WebhookAnswer:
    task = await registry.find_task_by_operation_id(operation_id)
    if task is None:
        raise UnknownOperation(operation_id)
    if not task.running:
        # Late or repeated news about a finished task: acknowledged, nothing to do.
        body = {"status": "already_finished", "operation_id": operation_id, "task_id": task.task_id}
        return WebhookAnswer(200, body, queued=False)
    body = {"status": "accepted", "operation_id": operation_id, "task_id": task.task_id}
    message = CompletionMessage.now(operation_id, task.task_id, success, result, error, webhook_id)
    answer_json, queued = await _enqueue_once(
        webhook_id, json.dumps(body), message.model_dump_json()
    )
    if queued:
        await wake_worker()
    return WebhookAnswer(202, json.loads(answer_json), queued=bool(queued))


async def _enqueue_once(webhook_id: str, answer_json: str, entry_json: str) -> tuple[str, int]:
    settings = get_settings()
    answer, queued = await _ENQUEUE_ONCE(
        keys=[keys.webhook_seen(webhook_id), keys.COMPLETIONS],
        args=[answer_json, entry_json, settings.webhook_dedupe_seconds, settings.stream_max_length],
    )
    return answer, int(queued)


async def publish_operation_complete(
    operation_id: str,
    task_id: str,
    *,
    success: bool,
    result: Any = None,
    error: str | None = None,
) -> str:
    """For producers inside the system: queue a completion and wake the worker."""
    message = CompletionMessage.now(operation_id, task_id, success, result, error)
    entry_id = await get_redis().xadd(
        keys.COMPLETIONS,
        {"data": message.model_dump_json()},
        maxlen=get_settings().stream_max_length,
    )
    await wake_worker()
    return entry_id


async def wake_worker() -> None:
    try:
        await get_dispatcher().dispatch(DrainCompletions())
    except DispatchError:
        logger.warning("could not wake the worker; the sweeper will pick the completion up")
