"""How a producer writes a turn into its task stream, fast.

    async with ChunkPublisher(task_id) as out:
        await out.send(Start(message_id="m1"))
        for token in tokens:
            await out.send(TextDelta(id="t1", delta=token))   # written behind, merged
        await out.send(TextEnd(id="t1"))                     # returns once all is written

A model emits a token every few milliseconds; one Redis round trip per token, waited for,
is what the production system paid. Here every chunk is written behind the producer, in
order, with one write in flight: a chunk goes out at once when nothing is being written,
and chunks that arrive meanwhile go into the next write (consecutive deltas of one text
merged into one entry), which starts when the current one returns. Latency stays one round
trip; a burst costs a handful of writes. The writer runs when the producer next waits (the
turn yields to the loop after each model event, so the chunks of one event go out in one
write).

`send` does not wait for a delta or for a chunk that opens a part, with two exceptions,
both deltas that the producer would gain nothing by leaving behind:
- A part's first words are in the stream before the producer reads on. On one event loop
  the model's next events would otherwise be parsed while the write's answer and its
  readers' delivery wait in line, and the first words are what a reader waits for most; the
  producer pays one round trip per part, the tokens meanwhile wait in the socket.
- A delta that comes slower than the writes go (more than two round trips after the one
  before, nothing being written) is written before `send` returns. Such a producer would
  only go back to wait for its model; its write now leaves at once rather than after that
  trip back into the model's stream (about 0.2 ms a token sooner at a token every 5 ms, on
  our 2-core machine). A producer faster than the writes has its deltas written behind and
  merged, so a burst still costs a handful of writes.

`start-step` does not even start a write: it goes out with whatever the step says first, so
the model's first words never queue behind a write of their own step's opening (a reader
sees no difference: the step shows nothing before them). A chunk that closes something
(`text-end`, `finish-step`, a tool's input or output, data) waits until it and everything
before it are in the stream: what the producer does next (save the message, run the tool)
never runs ahead of what its readers can see, and a Redis blip holds the producer there,
while the write is retried, instead of failing what it does next. A producer that outruns
Redis is held back too, once `MAX_PENDING` chunks are queued.

A Redis blip does not fail the turn: a write is retried with bounded backoff
(`redis_retry_seconds`), and each write carries this publisher's id and batch number, so
one that reached the stream before its answer was lost is not appended twice.

`coalesce_ms` (0–20, default 0) also spaces delta writes at least that far apart, trading a
little latency for fewer, larger entries when Redis round trips are expensive.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from . import registry
from .protocol.chunks import (
    Chunk,
    ReasoningDelta,
    ReasoningStart,
    StartStep,
    TextDelta,
    TextStart,
    ToolInputStart,
)
from .retry import retrying
from .settings import get_settings

MAX_PENDING = 256
# What `send` does not wait for: the words as they come, and the chunks that open a part.
_WRITTEN_BEHIND = (TextDelta, ReasoningDelta, StartStep, TextStart, ReasoningStart, ToolInputStart)
# What waits for the next chunk to be written with it.
_RIDES_ALONG = (StartStep,)


class ChunkPublisher:
    def __init__(self, task_id: str, coalesce_ms: int | None = None) -> None:
        self.task_id = task_id
        self._writer_id = uuid.uuid4().hex[:12]
        self._batch = 0
        ms = get_settings().coalesce_ms if coalesce_ms is None else coalesce_ms
        self._spacing = ms / 1000
        self._pending: list[Any] = []  # chunks, or [delta_id, [parts]] for merged deltas
        self._lock = asyncio.Lock()
        self._last_delta_write = float("-inf")
        self._writer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._failure: BaseException | None = None
        self.entry_ids: list[str] = []
        self._opened: set[str] = set()  # the parts whose first words were written
        self._last_word_sent = float("-inf")  # when `send` last had a delta
        self._round_trip = 0.0  # how long the last write took

    async def __aenter__(self) -> ChunkPublisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(self, chunk: Chunk) -> None:
        if self._failure is not None:
            raise self._failure
        last = self._pending[-1] if self._pending else None
        if isinstance(chunk, TextDelta):
            if isinstance(last, list) and last[0] == chunk.id:
                last[1].append(chunk.delta)
            else:
                self._pending.append([chunk.id, [chunk.delta]])
        else:
            self._pending.append(chunk)
        if self._waits_for(chunk):
            await self.flush()
            return
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_behind())
        if not isinstance(chunk, _RIDES_ALONG):
            self._wake.set()

    def _waits_for(self, chunk: Chunk) -> bool:
        """Whether `send` returns only once `chunk` (and all before it) is in the stream.
        Notes a delta's arrival and part: the next delta's answer depends on them."""
        if not isinstance(chunk, _WRITTEN_BEHIND) or len(self._pending) >= MAX_PENDING:
            return True
        if not isinstance(chunk, (TextDelta, ReasoningDelta)):
            return False
        now = asyncio.get_running_loop().time()
        slower_than_writes = (
            now - self._last_word_sent > 2 * self._round_trip
            and now - self._last_delta_write >= self._spacing
            and not self._lock.locked()
        )
        self._last_word_sent = now
        first_words = chunk.id not in self._opened
        self._opened.add(chunk.id)
        return first_words or slower_than_writes

    async def _write_behind(self) -> None:
        """One long-lived writer: woken by every `send`, it writes what is pending, one
        write at a time, until the publisher closes."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._pending:
                    wait = (
                        self._last_delta_write + self._spacing - asyncio.get_running_loop().time()
                    )
                    if wait > 0 and all(isinstance(item, list) for item in self._pending):
                        await asyncio.sleep(wait)
                    await self.flush()
                if self._closing:
                    return
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surfaced on the producer's next send or close
            self._failure = exc

    async def flush(self) -> None:
        async with self._lock:
            if self._failure is not None:  # nothing goes out after a write that was lost
                raise self._failure
            batch, self._pending = self._pending, []
            if not batch:
                return
            if any(isinstance(item, list) for item in batch):
                self._last_delta_write = asyncio.get_running_loop().time()
            self._batch += 1
            data, number = [_json(c) for c in batch], self._batch
            started = asyncio.get_running_loop().time()
            try:
                self.entry_ids += await retrying(
                    lambda: registry.publish_chunks(
                        self.task_id, data, writer=self._writer_id, batch=number
                    )
                )
            except Exception as exc:
                self._failure = exc
                raise
            self._round_trip = asyncio.get_running_loop().time() - started

    async def aclose(self) -> None:
        """Write whatever is pending. Raises what a write behind the producer ran into."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._closing = True
            self._wake.set()
            await writer
        if self._failure is not None:
            raise self._failure
        await self.flush()


def _json(item: Any) -> str:
    if isinstance(item, list):
        return TextDelta(id=item[0], delta="".join(item[1])).to_json()
    return item.to_json()
