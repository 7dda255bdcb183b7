"""Reading a task over HTTP: one code path for streaming and for buffered long-poll reads.

    return await task_stream_response(task, cursor=resolve_cursor(request, last_message_id))

Streaming (uvicorn, or the Lambda Web Adapter): events are sent as they come until
`finish`, or until the read budget ends; then the connection closes and the client
reconnects with its cursor. Buffered (Mangum behind an HTTP API, which can neither stream
nor wait past 30 s): a long-poll window that answers as soon as entries exist, after a short
linger to batch them, or when the window ends. Either way every event carries `id:` (the
entry id), idle periods carry `: heartbeat` comments, `finish` is followed by `[DONE]`, and
a finished task with nothing after the cursor answers 204, which tells EventSource to stop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from fastapi import Request, Response
from sse_starlette import EventSourceResponse
from starlette.responses import StreamingResponse

from .. import registry
from ..aisdk.chain import message_events
from ..fanout import readers_have_room
from ..protocol import sse
from ..settings import get_settings
from .errors import TASK_NOT_FOUND, ApiError

ENTRY_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")  # both parts are unsigned 64-bit
_MAX_PART = 2**64 - 1


def resolve_cursor(request: Request, last_message_id: str | None) -> str:
    """`?last_message_id=` wins over `Last-Event-ID`; neither means from the beginning."""
    cursor = last_message_id or request.headers.get("last-event-id") or "0-0"
    if not ENTRY_ID.match(cursor) or any(int(p) > _MAX_PART for p in cursor.split("-")):
        shown = cursor if len(cursor) <= 64 else f"{cursor[:60]}..."
        raise ApiError(
            422, "INVALID_CURSOR", f"{shown!r} is not a stream entry id like 1732200000000-0."
        )
    return cursor if "-" in cursor else f"{cursor}-0"


def _after(entry_id: str, cursor: str) -> bool:
    return tuple(map(int, entry_id.split("-"))) > tuple(map(int, cursor.split("-")))


def check_reader_room() -> None:
    """Refuse before anything starts when no reader slot is free (503 + Retry-After)."""
    if not readers_have_room():
        raise registry.ReadersBusy(get_settings().max_readers_per_process)


async def task_events(subscription: registry.Subscription) -> AsyncIterator[bytes]:
    """The SSE bytes of a subscription. Entries already waiting go out in one write: a
    replay costs a few sends, not one per entry."""
    settings = get_settings()
    buffered = settings.read_mode == "buffered"
    loop_time = asyncio.get_running_loop().time
    deadline = loop_time() + (
        settings.long_poll_seconds if buffered else settings.stream_budget_seconds
    )
    async with subscription:
        while (remaining := deadline - loop_time()) > 0:
            try:
                entry = await subscription.next(timeout=min(settings.heartbeat_seconds, remaining))
            except StopAsyncIteration:
                # An interrupted read ended with an `error` naming where to resume: no
                # [DONE], which would tell the client the answer is complete.
                if not subscription.interrupted:
                    yield sse.DONE_BYTES
                return
            if entry is None:
                if deadline - loop_time() > 0:
                    yield sse.HEARTBEAT_BYTES
                continue
            parts = [sse.encode_entry(entry.id, entry.data)]
            try:
                while subscription.ready():
                    waiting = await subscription.next()
                    assert waiting is not None  # ready(): one is queued, no wait
                    parts.append(sse.encode_entry(waiting.id, waiting.data))
            except StopAsyncIteration:
                if not subscription.interrupted:
                    parts.append(sse.DONE_BYTES)
                yield b"".join(parts)
                return
            yield b"".join(parts)
            if buffered:
                # Something arrived: answer soon, with whatever else lands in the linger.
                deadline = min(deadline, loop_time() + settings.long_poll_linger_ms / 1000)


def message_stream_response(turn_task_id: str) -> Response:
    """An AI SDK reader's stream: the whole message the turn begins (chat_core.aisdk.chain)."""
    check_reader_room()
    return EventSourceResponse(
        message_events(turn_task_id),
        headers={**sse.HEADERS, "X-Task-Id": turn_task_id},
        ping=0,
        sep=sse.SEP,
    )


async def task_stream_response(task: registry.TaskRecord, cursor: str) -> Response:
    if not task.running:
        last = await registry.last_entry_id(task.task_id)
        if last == "0-0":
            # Every task's stream opens with `start`: an empty one was deleted (its session
            # was) since the task was read, and the reader is told what a later one is.
            raise TASK_NOT_FOUND
        if not _after(last, cursor):
            return Response(status_code=204)
    # Subscribed before the response starts: past the reader cap the answer is a 503
    # (ReadersBusy, see errors.py).
    subscription = registry.subscribe(task.task_id, cursor)
    return StreamingResponse(
        task_events(subscription),
        media_type=sse.MEDIA_TYPE,
        headers={**sse.HEADERS, "X-Task-Id": task.task_id},
    )
