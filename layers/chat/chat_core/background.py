"""Work that runs beside a turn without delaying it (a session title, say), held by strong
references until done.

    spawn(generate_and_store_title(...))
    ...
    await drain()      # before a Lambda returns: a frozen environment finishes nothing

asyncio keeps only weak references to tasks; without this set a fire-and-forget task can
be garbage-collected half way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)
_tasks: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
    task = asyncio.create_task(coro, name=name)
    _tasks.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s failed", task.get_name(), exc_info=task.exception())


async def drain(timeout: float | None = 30.0) -> None:
    """Wait for this loop's background tasks (cancelling any still running at the timeout)."""
    loop = asyncio.get_running_loop()
    mine = {t for t in _tasks if t.get_loop() is loop and t is not asyncio.current_task()}
    if not mine:
        return
    done, pending = await asyncio.wait(mine, timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
