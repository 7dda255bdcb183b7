"""Completions arriving for operations: queued durably on one Redis stream, exactly once per
(operation, webhook id).

    answer = await accept_webhook(operation_id, webhook_id, success=True, result={...})
    answer.status, answer.body        # 202 {"status": "accepted", ...}, the same again on a repeat

Every repeat of a delivery gets the first answer back and changes nothing: the dedupe
record and the stream entry are written by one script under the completions hash tag, so
ten concurrent deliveries queue it once. The worker is then woken to process it; if the
wake-up is lost, the sweeper reads the entry a minute later. Entries are never trimmed
before they are acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .. import keys, lua, registry
from ..redis_client import get_redis
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
    ) -> CompletionMessage:
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


async def accept_webhook(
    operation_id: str,
    webhook_id: str,
    *,
    success: bool,
    result: Any = None,
    error: str | None = None,
) -> WebhookAnswer:
    seen = keys.webhook_seen(operation_id, webhook_id)
    first, task = await asyncio.gather(
        get_redis().get(seen), registry.find_task_by_operation_id(operation_id)
    )
    if first is not None:
        return _answer(first, queued=False)
    if task is None:
        raise UnknownOperation(operation_id)
    dedupe_seconds = get_settings().webhook_dedupe_seconds
    if not task.running:
        # Late news about a finished task: acknowledged, nothing to do, the same next time.
        body = {"status": "already_finished", "operation_id": operation_id, "task_id": task.task_id}
        await get_redis().set(seen, json.dumps(body), ex=dedupe_seconds, nx=True)
        return _answer(await get_redis().get(seen) or json.dumps(body), queued=False)
    body = {"status": "accepted", "operation_id": operation_id, "task_id": task.task_id}
    message = CompletionMessage.now(operation_id, task.task_id, success, result, error, webhook_id)
    answer_json, queued = await lua.COMPLETION_ENQUEUE_ONCE(
        seen=seen,
        completions=keys.COMPLETIONS,
        answer_json=json.dumps(body),
        entry_json=message.model_dump_json(),
        dedupe_seconds=dedupe_seconds,
    )
    if queued:
        await wake_worker()
    return _answer(answer_json, queued=bool(queued))


def _answer(answer_json: str, *, queued: bool) -> WebhookAnswer:
    body = json.loads(answer_json)
    return WebhookAnswer(202 if body["status"] == "accepted" else 200, body, queued=queued)


async def wake_worker() -> None:
    try:
        await get_dispatcher().dispatch(DrainCompletions())
    except DispatchError:
        logger.warning("could not wake the worker; the sweeper will pick the completion up")
