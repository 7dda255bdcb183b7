"""`GET /api/chat/events`: the caller's session events as SSE (titles, turns starting and
finishing, sessions created and deleted), so a sidebar stays current without polling.

    GET /api/chat/events                      signed in: all of the user's sessions
    GET /api/chat/events?session_id=…         anonymous: the one session the page knows
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query
from sse_starlette import EventSourceResponse
from sse_starlette.event import ServerSentEvent

from ..notifications import listen
from ..protocol import sse
from ..settings import get_settings
from .errors import ApiError
from .identity import UserId
from .openapi import SESSION_EVENTS_STREAM, EventStream, responses
from .sessions import load_session

router = APIRouter(tags=["events"])


@router.get(
    "/events",
    response_class=EventStream,
    responses=responses(
        {401: "UNAUTHENTICATED", 404: "SESSION_NOT_FOUND"}, stream=SESSION_EVENTS_STREAM
    ),
)
async def session_events(
    user_id: UserId, session_id: Annotated[str | None, Query(max_length=64)] = None
) -> EventSourceResponse:
    if user_id is None:
        if not session_id:
            raise ApiError(
                401, "UNAUTHENTICATED", "Sign in, or name the session to follow with ?session_id=."
            )
        await load_session(session_id, None)
    return EventSourceResponse(
        _events(user_id, session_id), headers={"Cache-Control": "no-cache"}, ping=0, sep=sse.SEP
    )


async def _events(user_id: str | None, session_id: str | None) -> AsyncIterator[ServerSentEvent]:
    settings = get_settings()
    budget = (
        settings.long_poll_seconds
        if settings.read_mode == "buffered"
        else settings.stream_budget_seconds
    )
    events = listen(user_id, session_id)
    next_event = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    yield ServerSentEvent(comment="listening", sep=sse.SEP)
    try:
        while (remaining := deadline - loop.time()) > 0:
            next_event = next_event or asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait(
                {next_event}, timeout=min(settings.heartbeat_seconds, remaining)
            )
            if not done:
                yield sse.HEARTBEAT
                continue
            event, next_event = next_event.result(), None
            yield ServerSentEvent(
                data=event.model_dump_json(exclude_none=True), event="session", sep=sse.SEP
            )
    finally:
        if next_event is not None:
            next_event.cancel()
            await asyncio.gather(next_event, return_exceptions=True)
        await events.aclose()
