"""Live reads that scale with processes, not readers: a task is read once per process, and
every local reader of it gets each entry.

    async with Subscription(task_id, cursor) as sub:   # what registry.subscribe returns
        async for entry in sub:                        # replay, then live, until `finish`
            print(entry.id, entry.data)

A subscription first replays its task's stream from its own cursor (non-blocking pages on
the readers' pool), then joins the task's feed. The process reads every joined feed with
blocking XREADs and hands each new entry to every joined subscriber's bounded queue:

- standalone: one XREAD over every live task of the process, on one connection; a feed that
  joins while that read blocks wakes it with CLIENT UNBLOCK (where a server refuses it, or
  CLIENT ID, which the first read finds out before it blocks, the reads block briefly);
- cluster: one XREAD per task (a command's keys must share a slot), whatever its readers,
  each on its own connection of the followers' pool.

So connections and XREADs grow with processes and entries, not with readers. A reader whose
queue is full leaves the feed and catches up by itself from its cursor, so a slow reader
never delays the others; one that stays `subscriber_queue_size` entries behind for
`subscriber_put_timeout_seconds` loses the subscription: it gets an `error` naming the last
id it was given, reconnects from there and loses nothing. Past `max_readers_per_process`
open subscriptions, a new one raises `ReadersBusy` (the API answers 503 + Retry-After).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Literal, NamedTuple, TypeVar

import redis

from . import keys
from .observability import logger
from .protocol.chunks import FINISH_JSON, Error
from .redis_client import follower_redis, get_reader_redis, on_close, reader_redis
from .settings import get_settings

# A failed fan-out read is retried this many times (after these pauses) before its readers
# are told the stream was interrupted: one Redis blip must not drop a thousand readers.
_READ_RETRY_DELAYS = (0.05, 0.25, 1.0)
# A replay that keeps finding nothing while the feed is ahead of it (its entries were
# trimmed away) joins the feed anyway after this many tries.
_STALE_JOINS = 3
# CLIENT UNBLOCK misses a read that has not reached the server yet: retried with these pauses.
_UNBLOCK_DELAYS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128)
# Where it is refused, a joining feed waits at most this long for the shared read to restart.
_POLL_WITHOUT_UNBLOCK_MS = 50
# How often the shared clock of idle readers looks at them (see `Subscription.next`).
_IDLE_TICK = 0.25


class StreamEntry(NamedTuple):
    id: str
    data: str

    @property
    def type(self) -> str:
        return json.loads(self.data)["type"]


class ReadersBusy(Exception):
    """This process already serves `max_readers_per_process` readers."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"this process already serves {limit} stream readers")
        self.limit = limit


T = TypeVar("T")

_END = StreamEntry("", "")
_IDLE = StreamEntry("", "idle")
_OVERFLOW = StreamEntry("", "overflow")
_INTERRUPTED = StreamEntry("", "interrupted")

EntryKey = tuple[int, int]


def entry_key(entry_id: str) -> EntryKey:
    """A stream entry id as a comparable pair (`5-1` < `5-10` < `6-0`)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Subscription:
    """Replays a task's stream after `cursor`, then follows it live until `finish`.

    `next()` gives entries in order, each once; at the end it raises StopAsyncIteration.
    Holds one of the process's reader slots from creation until `close()` or the end.
    """

    def __init__(self, task_id: str, cursor: str = "0-0") -> None:
        settings = get_settings()
        self._fanout = _fanout()
        self._fanout.admit(settings.max_readers_per_process)
        self._release = weakref.finalize(self, self._fanout.release)
        self.task_id = task_id
        self.last_delivered_id = cursor
        self._cursor = cursor  # the last id put in the queue
        self._queue: asyncio.Queue[StreamEntry] = asyncio.Queue(settings.subscriber_queue_size)
        self._put_timeout = settings.subscriber_put_timeout_seconds
        self._page = settings.replay_page_size
        self._listener: asyncio.Task[None] | None = None
        self._ended = False
        self.interrupted = False
        """The subscription ended before the task did: its last entry is an `error` whose id
        (and text) name the last entry delivered, where a reconnect resumes."""
        # Set by the fan-out while live: `_skip_through` filters entries this reader already
        # has (it joined a feed that was behind it); `_wake` tells the listener it must
        # catch up by itself (lagging) or stop (done).
        self.state: Literal["replaying", "live", "lagging", "done"] = "replaying"
        self._feed: _Feed | None = None
        self._skip_through: EntryKey | None = None
        self._wake = asyncio.Event()

    async def __aenter__(self) -> Subscription:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name=f"listen:{self.task_id}")

    async def close(self) -> None:
        """Unsubscribe: leave the feed, stop the listener, give the reader slot back."""
        self._fanout.leave(self)
        self._release()
        listener, self._listener = self._listener, None
        if listener is not None and not listener.done():
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> StreamEntry:
        return await self.next()  # type: ignore[return-value]

    async def next(self, timeout: float | None = None) -> StreamEntry | None:
        """The next entry; None when `timeout` passes first; StopAsyncIteration at the end."""
        if self._ended:
            raise StopAsyncIteration
        self.start()
        if not self._queue.empty():
            entry = self._queue.get_nowait()  # the common case while replaying: no timer
        elif timeout is None:
            entry = await self._queue.get()
        elif timeout >= _IDLE_TICK * 4:
            # A heartbeat's wait: one shared clock looks after every reader's (a timer per
            # wait is a tenth of a thousand readers' CPU).
            self._fanout.wake_when_idle(self, timeout)
            try:
                entry = await self._queue.get()
            finally:
                self._fanout.idle.pop(self, None)
            if entry is _IDLE:
                return None
        else:
            try:
                async with asyncio.timeout(timeout):
                    entry = await self._queue.get()
            except TimeoutError:
                return None
        if entry is _END:
            self._end()
            raise StopAsyncIteration
        if entry is _OVERFLOW or entry is _INTERRUPTED:
            self._end()
            self.interrupted = True
            why = (
                "This reader fell too far behind the stream."
                if entry is _OVERFLOW
                else "The stream was interrupted."
            )
            text = (
                f"{why} Reconnect with Last-Event-ID {self.last_delivered_id} to continue "
                "without losing anything."
            )
            return StreamEntry(self.last_delivered_id, Error(error_text=text).to_json())
        if entry.id:
            self.last_delivered_id = entry.id
        return entry

    def ready(self) -> bool:
        """Whether `next()` would answer at once (an entry or the end is waiting)."""
        return not self._ended and not self._queue.empty()

    def _end(self) -> None:
        self._ended = True
        self._fanout.leave(self)
        self._release()

    # --- the listener: replay, join, catch up after lagging -----------------------------
    async def _listen(self) -> None:
        r = await reader_redis()
        stream, meta = keys.task_stream(self.task_id), keys.task_meta(self.task_id)
        task_over, stale = False, 0
        try:
            while True:
                # Replay in pages without blocking; nothing here can wait forever. Readers
                # replaying the same page at once (a thousand joining a turn) share one read.
                cursor = self._cursor
                # The status beside the page, not after it: one round trip before joining.
                reply, status = await asyncio.gather(
                    shared_read(
                        ("xread", stream, cursor),
                        lambda: r.xread({stream: cursor}, count=self._page),  # noqa: B023 - run within this pass
                    ),
                    shared_read(("status", meta), lambda: r.hget(meta, "status")),
                )
                entries = reply[0][1] if reply else []
                for entry_id, fields in entries:
                    entry = StreamEntry(entry_id, fields["data"])
                    if not await self._put(entry):
                        return
                    self._cursor = entry_id
                    if entry.data == FINISH_JSON:  # only `finish` is written as exactly this
                        await self._put(_END)
                        return
                if len(entries) == self._page:
                    continue
                if task_over:
                    await self._put(_END)
                    return
                if status != "running":
                    # Status and `finish` change in one script: once the status moved, one
                    # more read returns the finish if the stream still has it.
                    task_over = True
                    continue
                stale = 0 if entries else stale + 1
                if not self._fanout.join(self, force=stale >= _STALE_JOINS):
                    continue  # the feed is ahead of this replay: read up to it first
                await self._wake.wait()
                self._wake.clear()
                if self.state == "done":
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis went away mid-stream: end with a readable error.
            self.fail(exc)

    async def _put(self, entry: StreamEntry) -> bool:
        if not self._queue.full():
            self._queue.put_nowait(entry)
            return True
        try:
            async with asyncio.timeout(self._put_timeout):
                await self._queue.put(entry)
            return True
        except TimeoutError:
            # The reader stopped reading. Drop what it never received (it resumes from its
            # last delivered id) and leave a single overflow marker.
            self._drain()
            self._queue.put_nowait(_OVERFLOW)
            return False

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    # --- called by the fan-out, never awaiting ------------------------------------------
    def offer(self, entries: list[StreamEntry], finished: bool) -> None:
        """New entries of the feed. A full queue sends the reader back to catching up."""
        queue, skip = self._queue, self._skip_through
        for entry in entries:
            if skip is not None:
                if entry_key(entry.id) <= skip:
                    continue
                skip = self._skip_through = None
            if queue.full():
                self.catch_up()
                return
            queue.put_nowait(entry)
            self._cursor = entry.id
        if finished:
            if queue.full():  # no room for the end marker: the replay finds the finish
                self.catch_up()
            else:
                queue.put_nowait(_END)
                self.state = "done"
                self._wake.set()

    def catch_up(self) -> None:
        """Leave the feed: the listener goes on by itself from its cursor (replay, status)."""
        self._fanout.leave(self)
        self.state = "lagging"
        self._wake.set()

    def fail(self, exc: BaseException) -> None:
        logger.warning("reader of %s interrupted: %s", self.task_id, type(exc).__name__)
        self._drain()
        self._queue.put_nowait(_INTERRUPTED)
        self.state = "done"
        self._wake.set()


class _Feed:
    """A task read live on behalf of this process's subscribers."""

    __slots__ = ("task_id", "stream", "cursor", "cursor_key", "subscribers", "heard")

    def __init__(self, task_id: str, cursor: str) -> None:
        self.task_id = task_id
        self.stream = keys.task_stream(task_id)
        self.cursor, self.cursor_key = cursor, entry_key(cursor)
        self.subscribers: set[Subscription] = set()
        self.heard = asyncio.get_running_loop().time()  # when it last had news

    def deliver(self, raw: list[tuple[str, dict[str, str]]]) -> bool:
        """Hand new entries to every subscriber; True once the task's `finish` was among
        them (nothing follows it)."""
        entries = [StreamEntry(entry_id, fields["data"]) for entry_id, fields in raw]
        finished = False
        for index, entry in enumerate(entries):
            if entry.data == FINISH_JSON:
                entries, finished = entries[: index + 1], True
                break
        self.cursor = entries[-1].id
        self.cursor_key = entry_key(self.cursor)
        self.heard = asyncio.get_running_loop().time()
        for subscriber in list(self.subscribers):
            subscriber.offer(entries, finished)
        return finished


class _ReadGroup:
    """One loop of blocking XREADs over a set of feeds.

    Feeds leave only here, between two reads, so a subscriber joining a feed whose last
    subscriber just left still finds its cursor, and no entry falls between two reads.
    """

    def __init__(self, fanout: _Fanout, key: str, dedicated: bool) -> None:
        self._fanout, self.key = fanout, key
        self._dedicated = dedicated
        self.feeds: dict[str, _Feed] = {}
        self._reading: frozenset[str] | None = None  # the streams of the read in flight
        # The blocking read's own connection, and its id for CLIENT UNBLOCK: the one the
        # last group left idle, if any (a process that follows one turn after another
        # would otherwise connect and ask its id again before each first token).
        parked, fanout.parked = fanout.parked, None
        self._client: Any = parked[0] if parked else None
        self._client_id: int | None = parked[1] if parked else None
        self._waking: asyncio.Task[None] | None = None
        self._task = asyncio.create_task(self._run(), name=f"fanout:{key}")

    def add(self, feed: _Feed) -> None:
        self.feeds[feed.stream] = feed
        if self._reading is not None and feed.stream not in self._reading:
            may_wake = self._fanout.can_unblock is not False  # None: the first read asks
            if self._dedicated and may_wake and self._waking is None:
                self._waking = asyncio.create_task(self._unblock(), name="fanout:wake")

    async def _run(self) -> None:
        settings = get_settings()
        failures, idle = 0, False
        try:
            while True:
                for stream, feed in list(self.feeds.items()):
                    if not feed.subscribers:
                        self._drop(stream)
                if not self.feeds:
                    idle = True
                    return
                streams = {stream: feed.cursor for stream, feed in self.feeds.items()}
                self._reading = frozenset(streams)
                block = settings.read_block_ms
                try:
                    client = await self._reader()
                    if self._dedicated and not self._fanout.can_unblock:
                        block = min(block, _POLL_WITHOUT_UNBLOCK_MS)
                    reply = await client.xread(
                        streams, count=settings.replay_page_size, block=block
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._client_id = None
                    if failures == len(_READ_RETRY_DELAYS):
                        logger.warning("fan-out read failed; readers told to reconnect")
                        self._fail_all(exc)
                        return
                    await asyncio.sleep(_READ_RETRY_DELAYS[failures])
                    failures += 1
                    continue
                finally:
                    self._reading = None
                failures = 0
                for stream, raw in reply or ():
                    found = self.feeds.get(stream)
                    if found is not None and raw and found.deliver(raw):
                        self._drop(stream)
                await self._check_quiet(block / 1000)
        finally:
            self._reading = None
            if self._fanout.groups.get(self.key) is self:
                del self._fanout.groups[self.key]
            for stream in list(self.feeds):
                self._drop(stream)
            if self._client is not None:
                client, self._client = self._client, None
                if idle and self._fanout.parked is None:  # between reads: no read in flight
                    self._fanout.parked = (client, self._client_id)
                else:
                    await asyncio.shield(client.aclose())

    async def _check_quiet(self, block: float) -> None:
        """A feed with no news for a whole block may be of a task that ended without a
        `finish` to read (its session was deleted, its stream with it): its readers are
        sent back to their own catching up, which asks the task's status and ends them."""
        now = asyncio.get_running_loop().time()
        quiet = [feed for feed in self.feeds.values() if now - feed.heard >= block]
        if not quiet:
            return
        r = get_reader_redis()
        statuses = await asyncio.gather(
            *(r.hget(keys.task_meta(f.task_id), "status") for f in quiet)
        )
        for feed, status in zip(quiet, statuses, strict=True):
            feed.heard = now
            if status != "running":
                for subscriber in list(feed.subscribers):
                    subscriber.catch_up()

    async def _reader(self) -> Any:
        """The connection the blocking read goes on: a dedicated one of the readers' pool
        (standalone), so that CLIENT UNBLOCK can find it, or the followers' cluster client."""
        if not self._dedicated:
            return await follower_redis()
        if self._client is None:
            self._client = type(get_reader_redis())(
                connection_pool=get_reader_redis().connection_pool, single_connection_client=True
            )
        if self._client_id is None and self._fanout.can_unblock is not False:
            self._client_id = await self._fanout.unblockable_id(self._client)
        return self._client

    async def _unblock(self) -> None:
        """End the blocking read early so it restarts with the feeds that joined since."""
        try:
            for delay in _UNBLOCK_DELAYS:
                reading = self._reading
                if reading is None or reading >= self.feeds.keys():
                    return
                if self._fanout.can_unblock is False:  # the first read's question, answered
                    return
                if self._client_id is not None and await get_reader_redis().client_unblock(
                    self._client_id
                ):
                    return
                await asyncio.sleep(delay)
            self._client_id = None  # perhaps reconnected under another id: ask again
        except redis.ResponseError:  # refused after all (another server since the probe)
            self._fanout.refused_unblock()
        except Exception as exc:  # the read ends by its block timeout anyway
            logger.warning("fan-out wake failed: %s", type(exc).__name__)
        finally:
            self._waking = None

    def _drop(self, stream: str) -> None:
        feed = self.feeds.pop(stream)
        if self._fanout.feeds.get(feed.task_id) is feed:
            del self._fanout.feeds[feed.task_id]
        for subscriber in list(feed.subscribers):
            self._fanout.leave(subscriber)

    def _fail_all(self, exc: BaseException) -> None:
        for feed in self.feeds.values():
            for subscriber in list(feed.subscribers):
                subscriber.fail(exc)


class _Fanout:
    """The process's (event loop's) feeds, read groups and reader count."""

    def __init__(self) -> None:
        self.readers = 0
        self.feeds: dict[str, _Feed] = {}
        self.groups: dict[str, _ReadGroup] = {}
        self.inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._cluster = get_settings().redis_mode == "cluster"
        self.can_unblock: bool | None = None  # not known until the first read asks
        self.parked: tuple[Any, int | None] | None = None  # see _ReadGroup.__init__
        # Readers waiting in `next(timeout)`, by when they must hear that nothing came.
        self.idle: dict[Subscription, float] = {}
        self._clock: asyncio.Task[None] | None = None

    async def unblockable_id(self, client: Any) -> int | None:
        """The id by which CLIENT UNBLOCK wakes `client`'s reads; None where the server
        refuses either command (some managed ones do). The first time, CLIENT UNBLOCK is
        tried beside (on an id no client has): a refusal is known before a read blocks."""
        try:
            if self.can_unblock is None:
                client_id, _ = await asyncio.gather(
                    client.client_id(), get_reader_redis().client_unblock(0)
                )
                self.can_unblock = True
                return int(client_id)
            return int(await client.client_id())
        except redis.ResponseError:
            self.refused_unblock()
            return None

    def refused_unblock(self) -> None:
        # New feeds are then picked up by short reads instead of a wake-up.
        logger.warning("CLIENT UNBLOCK refused; the fan-out reads in short blocks")
        self.can_unblock = False

    def admit(self, limit: int) -> None:
        if self.readers >= limit:
            raise ReadersBusy(limit)
        self.readers += 1

    def release(self) -> None:
        self.readers -= 1

    def has_room(self) -> bool:
        return self.readers < get_settings().max_readers_per_process

    def wake_when_idle(self, subscriber: Subscription, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self.idle[subscriber] = loop.time() + timeout
        if self._clock is None or self._clock.done():
            self._clock = asyncio.create_task(self._tick(), name="fanout:idle")

    async def _tick(self) -> None:
        """Wake readers whose wait ran out: only a reader blocked on its empty queue is
        registered, so the marker is the next thing it gets."""
        loop = asyncio.get_running_loop()
        while self.idle:
            await asyncio.sleep(_IDLE_TICK)
            now = loop.time()
            for subscriber, until in list(self.idle.items()):
                if until <= now and subscriber._queue.empty():
                    del self.idle[subscriber]
                    subscriber._queue.put_nowait(_IDLE)

    def join(self, subscriber: Subscription, force: bool = False) -> bool:
        """Make a subscriber that replayed up to its cursor live; False when the feed has
        read past that cursor (the subscriber must replay up to it first)."""
        cursor = entry_key(subscriber._cursor)
        feed = self.feeds.get(subscriber.task_id)
        if feed is None:
            feed = self.feeds[subscriber.task_id] = _Feed(subscriber.task_id, subscriber._cursor)
            group_key = subscriber.task_id if self._cluster else "all"
            group = self.groups.get(group_key)
            if group is None:
                group = self.groups[group_key] = _ReadGroup(self, group_key, not self._cluster)
            group.add(feed)
        elif cursor < feed.cursor_key and not force:
            return False
        subscriber._skip_through = cursor if cursor > feed.cursor_key else None
        subscriber.state = "live"
        subscriber._feed = feed
        feed.subscribers.add(subscriber)
        return True

    def leave(self, subscriber: Subscription) -> None:
        feed, subscriber._feed = subscriber._feed, None
        if feed is not None:
            feed.subscribers.discard(subscriber)

    async def close(self) -> None:
        groups = list(self.groups.values())
        tasks = [g._task for g in groups] + ([self._clock] if self._clock else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.parked is not None:
            client, self.parked = self.parked[0], None
            await client.aclose()


_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Fanout] = (
    weakref.WeakKeyDictionary()
)


def _fanout() -> _Fanout:
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None:
        fanout = _fanouts[loop] = _Fanout()
        on_close(_close_loop_fanout)
    return fanout


async def _close_loop_fanout() -> None:
    fanout = _fanouts.pop(asyncio.get_running_loop(), None)
    if fanout is not None:
        await fanout.close()


def shared_read(key: Hashable, read: Callable[[], Awaitable[T]]) -> Awaitable[T]:
    """The result of `read()`, shared by every caller asking with the same `key` while it is
    in flight (nothing is kept after it): a burst of identical reads costs one round trip.
    A caller that is cancelled leaves the read running for the others."""
    inflight = _fanout().inflight
    task = inflight.get(key)
    if task is None:
        task = inflight[key] = asyncio.ensure_future(read())
        task.add_done_callback(lambda _: inflight.pop(key, None))
    return asyncio.shield(task)


def readers_have_room() -> bool:
    """Whether a new reader would be admitted now (checked before a turn starts, so a busy
    process refuses the turn instead of starting one nobody can read)."""
    return _fanout().has_room()
