"""Session events for the user's open pages: titles, turns starting and finishing.

    await notify(user_id, SessionEvent(type="title_changed", session_id="s1", title="Rome trip"))
    async for event in listen(user_id="u1"): ...          # what GET /api/chat/events streams

A signed-in user's pages listen on one channel for all their sessions; an anonymous page
listens on the channel of the one session it knows.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Literal

from pydantic import BaseModel

from . import keys
from .events import AsyncEventBus, PayloadTooLarge


class SessionEvent(BaseModel):
    type: Literal[
        "session_created",
        "session_deleted",
        "title_changed",
        "task_started",
        "task_finished",
    ]
    session_id: str
    title: str | None = None
    task_id: str | None = None
    status: str | None = None


def channel_key(user_id: str | None, session_id: str) -> str:
    return f"user:{user_id}" if user_id else f"session:{session_id}"


_bus: AsyncEventBus[SessionEvent] | None = None


def session_events() -> AsyncEventBus[SessionEvent]:
    global _bus
    if _bus is None:
        _bus = AsyncEventBus(keys.SESSION_EVENTS_BUS, SessionEvent)
    return _bus


async def notify(user_id: str | None, event: SessionEvent) -> None:
    await session_events().publish_event(event, channel_key(user_id, event.session_id))


async def listen(
    user_id: str | None, session_id: str | None = None
) -> AsyncGenerator[SessionEvent | PayloadTooLarge]:
    key = channel_key(user_id, session_id or "")
    async for event in session_events().listen_events(key):
        yield event
