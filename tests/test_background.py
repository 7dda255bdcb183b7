"""chat_core.background: work beside a turn. A spawned task runs to its end though nothing else
holds it, `drain` waits for it (and cancels what outlives its timeout), a failure is logged
with the task's name."""

from __future__ import annotations

import asyncio
import gc
import logging

from chat_core import background


async def test_a_spawned_task_runs_to_its_end_with_no_other_reference() -> None:
    finished: list[str] = []
    release = asyncio.Event()

    async def title() -> None:
        await release.wait()
        finished.append("title")

    background.spawn(title(), name="title")  # the caller keeps no reference
    await asyncio.sleep(0)
    gc.collect()
    release.set()
    await background.drain()
    assert finished == ["title"]


async def test_drain_cancels_what_is_still_running_at_its_timeout() -> None:
    outcome: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    task = background.spawn(forever(), name="forever")
    await background.drain(timeout=0.1)
    assert task.cancelled() and outcome == ["cancelled"]


async def test_a_failure_is_logged_with_the_tasks_name(caplog) -> None:
    async def broken() -> None:
        raise RuntimeError("the title model is down")

    with caplog.at_level(logging.ERROR, logger="chat_core.background"):
        background.spawn(broken(), name="title:s1")
        await background.drain()
    assert "background task title:s1 failed" in caplog.text
    assert "the title model is down" in caplog.text
