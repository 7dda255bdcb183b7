"""Riding out a Redis blip: a write is tried again with bounded backoff while the
connection is broken, and given up (the error raised) once the budget is spent.

    ids = await retrying(lambda: registry.publish_chunks(task_id, chunks, writer=w, batch=n))

Only connection errors, timeouts and a cluster's CLUSTERDOWN or TRYAGAIN (a node that
has just come back, a slot moving: the command did not run) are retried: a script that
Redis ran and refused is an answer, not a blip. A write whose answer was lost may have
happened, so what is retried must be safe to repeat (task writes carry a writer id and
batch number for that).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ClusterDownError, ConnectionError, TimeoutError, TryAgainError

from .settings import get_settings

T = TypeVar("T")
logger = logging.getLogger(__name__)

BLIPS = (ConnectionError, TimeoutError, OSError, ClusterDownError, TryAgainError)


async def retrying(
    operation: Callable[[], Awaitable[T]], *, budget_seconds: float | None = None
) -> T:
    settings = get_settings()
    budget = settings.redis_retry_seconds if budget_seconds is None else budget_seconds
    deadline = asyncio.get_running_loop().time() + budget
    delay = 0.05
    while True:
        try:
            return await operation()
        except BLIPS as exc:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise
            logger.warning("Redis unreachable (%s); retrying in %.2fs", type(exc).__name__, delay)
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 2.0)
