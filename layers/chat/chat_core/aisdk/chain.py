"""One assistant message per turn: the turn's task, then each operation task it started.

    async for event in message_events(turn_task_id):   # the SSE an AI SDK client reads
        ...
    folded = await fold_message(turn_task_id, message_id)   # the same, as a UIMessage now

A turn that starts a long-running operation ends its own stream with a
`data-operation-started` chunk naming the operation's task; that task's stream opens with
the tool's input (so a reader of that task alone sees a whole message), then the result,
the model's continuation and `finish`. An AI SDK reader follows from the turn into each
operation it started, as one message: the operation's opening (`start`, `start-step`, the
tool-input chunks) and the turn's `finish` are left out, so the client's tool part goes
from pending to its result in the same message and every tool call shows once.

The live reader holds the stream open while an operation is pending (heartbeats as
comments) within the read budget; when the budget ends the client keeps the tool pending
and a reload (`/messages` + resume) shows the message whole.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sse_starlette.event import ServerSentEvent

from .. import keys, registry
from ..protocol import sse
from ..redis_client import get_redis
from ..settings import get_settings
from .fold import UIMessageFold

OPERATION_STARTED = "data-operation-started"
_OPENING = frozenset({"start", "start-step", "tool-input-start", "tool-input-available"})


class MessageChain:
    """Which chunks of which tasks make up the message, in order, as they are read."""

    def __init__(self, task_id: str) -> None:
        self.task_id: str | None = task_id
        self.visited: list[str] = []
        self.ended = False  # the message's last `finish` was read
        self._pending: deque[str] = deque()
        self._opening = False

    def next_task(self) -> str | None:
        """The task to read next (the turn first, then each operation), or None."""
        task_id, self.task_id = self.task_id, None
        if task_id is None and self._pending:
            task_id = self._pending.popleft()
            self._opening = True
        if task_id is not None:
            self.visited.append(task_id)
        return task_id

    def admit(self, chunk: dict[str, Any]) -> bool:
        kind = chunk.get("type")
        if self._opening:
            if kind in _OPENING:
                return False
            self._opening = False
        if kind == OPERATION_STARTED and isinstance(chunk.get("data"), dict):
            if task_id := chunk["data"].get("taskId"):
                self._pending.append(task_id)
        if kind == "finish":
            if self._pending:
                return False
            self.ended = True
        return True


async def message_events(task_id: str) -> AsyncIterator[ServerSentEvent]:
    """The live SSE of the message a turn task begins, within the read budget."""
    settings = get_settings()
    loop_time = asyncio.get_running_loop().time
    budget = (
        settings.long_poll_seconds
        if settings.read_mode == "buffered"
        else settings.stream_budget_seconds
    )
    deadline = loop_time() + budget
    chain = MessageChain(task_id)
    while (current := chain.next_task()) is not None:
        async with registry.subscribe(current, "0-0") as subscription:
            while True:
                remaining = deadline - loop_time()
                if remaining <= 0:
                    return  # the client keeps what it has; a reload shows the rest
                try:
                    entry = await subscription.next(
                        timeout=min(settings.heartbeat_seconds, remaining)
                    )
                except StopAsyncIteration:
                    if subscription.interrupted:
                        return  # its last event named where to resume: no [DONE]
                    break
                if entry is None:
                    yield sse.HEARTBEAT
                    continue
                if chain.admit(json.loads(entry.data)):
                    yield sse.entry_event(entry.id or None, entry.data)
    yield sse.DONE


@dataclass
class FoldedMessage:
    ui: dict[str, Any]
    complete: bool
    """Its last `finish` was read: nothing more will come."""
    live: bool
    """One of its tasks still runs: a resume replays it."""
    found: bool
    """Its turn's stream still exists."""


async def fold_message(task_id: str, message_id: str) -> FoldedMessage:
    """The message as a client reading it whole right now would hold it."""
    r = get_redis()
    fold = UIMessageFold(message_id)
    chain = MessageChain(task_id)
    found, reading = False, True
    while (current := chain.next_task()) is not None:
        entries = await r.xrange(keys.task_stream(current))
        found = found or (current == task_id and bool(entries))
        for _, fields in entries:
            chunk = json.loads(fields["data"])
            if chain.admit(chunk) and reading:
                reading = fold.add(chunk)
    live = False
    if not chain.ended:
        for visited in chain.visited:
            task = await registry.get_task(visited)
            live = live or (task is not None and task.running)
    return FoldedMessage(ui=fold.ui(), complete=chain.ended, live=live, found=found)


async def running_tasks_of(task_id: str) -> list[str]:
    """The message's tasks that still run: the turn, and the operations it is waiting for."""
    chain = MessageChain(task_id)
    r = get_redis()
    running = []
    while (current := chain.next_task()) is not None:
        for _, fields in await r.xrange(keys.task_stream(current)):
            chain.admit(json.loads(fields["data"]))
        task = await registry.get_task(current)
        if task is not None and task.running:
            running.append(current)
    return running
