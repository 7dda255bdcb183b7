"""chat_core.notifications: session events for open pages. A signed-in user's pages hear every
session of theirs and nobody else's; an anonymous page hears its one session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from chat_core.notifications import SessionEvent, listen, notify

pytestmark = pytest.mark.both

END = "end-of-test"


@asynccontextmanager
async def heard(user_id: str | None, session_id: str | None = None) -> AsyncIterator[list]:
    """What a page listening as (user_id, session_id) hears while the block runs; an event
    titled END, sent to the same channel, closes the collection."""
    seen: list[SessionEvent] = []

    async def collect() -> None:
        async for event in listen(user_id, session_id):
            if event.title == END:
                return
            seen.append(event)

    collector = asyncio.create_task(collect())
    await asyncio.sleep(0.2)  # SUBSCRIBE reaches the server before anything is published
    yield seen
    await notify(
        user_id, SessionEvent(type="session_deleted", session_id=session_id or "", title=END)
    )
    await asyncio.wait_for(collector, 10)


async def test_a_users_page_hears_every_one_of_their_sessions_and_no_one_elses(redis_target):
    async with heard("alice") as alice, heard("bob") as bob:
        await notify("alice", SessionEvent(type="title_changed", session_id="s1", title="Rome"))
        await notify("alice", SessionEvent(type="task_started", session_id="s2", task_id="t2"))
        await notify("carol", SessionEvent(type="session_created", session_id="s3"))
    assert [(e.type, e.session_id) for e in alice] == [
        ("title_changed", "s1"),
        ("task_started", "s2"),
    ]
    assert alice[0].title == "Rome" and alice[1].task_id == "t2"
    assert bob == []


async def test_an_anonymous_page_hears_its_own_session_only(redis_target):
    async with heard(None, "s1") as page:
        await notify(None, SessionEvent(type="task_finished", session_id="s1", status="completed"))
        await notify(None, SessionEvent(type="task_finished", session_id="s2", status="failed"))
    assert [(e.session_id, e.status) for e in page] == [("s1", "completed")]


async def test_a_signed_in_users_events_do_not_reach_an_anonymous_page_of_that_session(
    redis_target,
):
    async with heard(None, "s1") as page:
        await notify("alice", SessionEvent(type="title_changed", session_id="s1", title="x"))
    assert page == []
