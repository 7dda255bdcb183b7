"""chat_core.registry: the task streams on a real Redis, standalone and as a 3-node cluster:
publishing, reading and subscribing. The lifecycle transitions are tested in tests/tasks."""

from __future__ import annotations

import asyncio
import json

import pytest
from chat_core import keys, registry, tasks
from chat_core.protocol import chunks as c
from chat_core.redis_client import get_redis

pytestmark = [pytest.mark.both, pytest.mark.valkey]  # also on a standalone Valkey


async def new_task(session_id: str = "s1", user_id: str | None = "u1") -> registry.TaskRecord:
    """A running turn; its stream holds the `start` its creation wrote."""
    return await tasks.create_turn(session_id, user_id)


async def finish(task: registry.TaskRecord) -> None:
    assert await tasks.finish(task, "completed")


def entry_type(entry: registry.StreamEntry) -> str:
    return json.loads(entry.data)["type"]


async def stream_types(task_id: str) -> list[str]:
    entries = await get_redis().xrange(keys.task_stream(task_id))
    return [json.loads(fields["data"])["type"] for _, fields in entries]


async def drain(sub: registry.Subscription) -> list[registry.StreamEntry]:
    return [entry async for entry in sub]


# --- publish ----------------------------------------------------------------------------------
async def test_publish_returns_entry_ids_in_order_in_one_round_trip(redis_target, monkeypatch):
    task = await new_task()
    r = get_redis()
    await registry.publish_chunk(task.task_id, c.Start())  # the script is loaded now
    calls: list[str] = []
    original = type(r).execute_command

    async def counting(self, *args, **kwargs):
        calls.append(str(args[0]))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(type(r), "execute_command", counting)
    chunk_list = [c.TextDelta(id="t", delta=str(i)) for i in range(50)]
    ids = await registry.publish_chunks(task.task_id, chunk_list)
    monkeypatch.undo()

    assert calls == ["EVALSHA"]
    assert len(ids) == 50 and ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    entries = await r.xrange(keys.task_stream(task.task_id))
    assert [e[0] for e in entries][2:] == ids  # after the two starts
    assert [json.loads(e[1]["data"])["delta"] for e in entries[2:]] == [str(i) for i in range(50)]


async def test_publish_refreshes_the_ttl_of_stream_and_meta_together(redis_target, settings_env):
    settings_env(stream_ttl_seconds=3)  # refreshed at most every 0.3 s
    task = await new_task()
    r = get_redis()
    meta, stream = keys.task_meta(task.task_id), keys.task_stream(task.task_id)

    async def shorten_then_publish() -> tuple[int, int]:
        await r.pexpire(meta, 1_000)
        await r.pexpire(stream, 1_000)
        await registry.publish_chunk(task.task_id, c.TextDelta(id="t", delta="x"))
        return await r.pttl(meta), await r.pttl(stream)

    first = await shorten_then_publish()  # this process's first publish to the task
    soon_after = await shorten_then_publish()
    await asyncio.sleep(0.35)
    later = await shorten_then_publish()

    assert min(first) > 2_500 and min(later) > 2_500
    assert max(soon_after) <= 1_000  # a token stream does not refresh them with every write


async def test_publishing_to_a_finished_task_is_refused(redis_target):
    task = await new_task()
    await tasks.finish(task, "cancelled")
    with pytest.raises(registry.TaskNotRunning):
        await registry.publish_chunk(task.task_id, c.TextDelta(id="t", delta="late"))
    assert await stream_types(task.task_id) == ["start", "finish"]


# --- reading --------------------------------------------------------------------------------
async def test_expired_meta_with_a_surviving_stream_reads_as_expired(redis_target):
    task = await new_task()
    assert await registry.get_task_or_expiry(task.task_id) == (task, False)
    await get_redis().delete(keys.task_meta(task.task_id))
    assert await registry.get_task_or_expiry(task.task_id) == (None, True)
    assert await registry.get_task_or_expiry("never-existed") == (None, False)


async def test_a_retried_batch_of_one_writer_is_appended_once(redis_target):
    task = await new_task()
    batch = [c.TextDelta(id="t", delta="once")]
    first = await registry.publish_chunks(task.task_id, batch, writer="w", batch=1)
    again = await registry.publish_chunks(task.task_id, batch, writer="w", batch=1)
    other = await registry.publish_chunks(task.task_id, batch, writer="v", batch=1)
    assert len(first) == 1 and again == [] and len(other) == 1
    assert await stream_types(task.task_id) == ["start", "text-delta", "text-delta"]


# --- subscribe --------------------------------------------------------------------------------
@pytest.mark.slow
async def test_replaying_5000_entries_from_the_start_and_from_a_middle_cursor(redis_target):
    task = await new_task()
    deltas = [c.TextDelta(id="t", delta=str(i)) for i in range(5000)]
    ids: list[str] = []
    for start in range(0, 5000, 500):
        ids += await registry.publish_chunks(task.task_id, deltas[start : start + 500])
    await finish(task)

    async with registry.subscribe(task.task_id, "0-0") as sub:
        entries = await drain(sub)
    assert [e.id for e in entries[1:-1]] == ids  # after the `start`
    assert [json.loads(e.data)["delta"] for e in entries[1:-1]] == [str(i) for i in range(5000)]
    assert entry_type(entries[-1]) == "finish"

    async with registry.subscribe(task.task_id, ids[2499]) as sub:
        tail = await drain(sub)
    assert [e.id for e in tail[:-1]] == ids[2500:]
    assert len({e.id for e in tail}) == len(tail)


async def test_resuming_at_the_last_id_waits_for_new_entries(redis_target):
    task = await new_task()
    ids = await registry.publish_chunks(task.task_id, [c.Start(), c.StartStep()])
    async with registry.subscribe(task.task_id, ids[-1]) as sub:
        assert await sub.next(timeout=0.3) is None  # nothing new yet: it waits
        new_id = await registry.publish_chunk(task.task_id, c.TextStart(id="t"))
        entry = await sub.next(timeout=5)
        assert entry.id == new_id and entry_type(entry) == "text-start"
        await finish(task)
        assert entry_type(await sub.next(timeout=5)) == "finish"
        with pytest.raises(StopAsyncIteration):
            await sub.next(timeout=5)


async def test_resuming_a_finished_task_at_its_end_ends_without_waiting_for_news(
    redis_target, settings_env
):
    # A block period far past the guard: a read that waited for news instead of seeing the
    # task finished would never end within it.
    settings_env(read_block_ms=600_000)
    task = await new_task()
    await registry.publish_chunk(task.task_id, c.Start())
    await finish(task)
    last = await registry.last_entry_id(task.task_id)
    async with asyncio.timeout(60), registry.subscribe(task.task_id, last) as sub:
        assert await drain(sub) == []


async def test_a_subscription_to_a_vanished_task_ends(redis_target, settings_env):
    settings_env(read_block_ms=200)
    async with registry.subscribe("no-such-task") as sub:
        assert await asyncio.wait_for(drain(sub), 5) == []


async def test_live_subscribers_see_every_chunk_once_in_order(redis_target):
    task = await new_task()
    await registry.publish_chunk(task.task_id, c.Start())
    subs = [registry.subscribe(task.task_id, "0-0") for _ in range(3)]
    readers = [asyncio.create_task(drain(s)) for s in subs]
    published = []
    for i in range(30):
        published += await registry.publish_chunks(
            task.task_id, [c.TextDelta(id="t", delta=str(i))]
        )
        await asyncio.sleep(0.005)
    await finish(task)
    for reader, sub in zip(readers, subs, strict=False):
        entries = await asyncio.wait_for(reader, 10)
        await sub.close()
        assert [e.id for e in entries[2:-1]] == published  # after the two starts
        assert entry_type(entries[-1]) == "finish"


async def test_a_reader_that_stops_reading_does_not_grow_memory(redis_target, settings_env):
    settings_env(subscriber_queue_size=20, subscriber_put_timeout_seconds=0.3)
    task = await new_task()
    ids = await registry.publish_chunks(
        task.task_id, [c.TextDelta(id="t", delta=str(i)) for i in range(5)]
    )
    sub = registry.subscribe(task.task_id, await registry.first_entry_id(task.task_id))
    delivered = [await sub.next(timeout=5) for _ in range(5)]
    assert [e.id for e in delivered] == ids
    for _batch in range(20):  # 2,000 chunks the reader never asks for
        await registry.publish_chunks(
            task.task_id, [c.TextDelta(id="t", delta="x") for _ in range(100)]
        )
        assert sub._queue.qsize() <= 20
    await asyncio.sleep(1.0)
    assert sub._queue.qsize() <= 1 and sub._listener.done()

    overflow = await sub.next(timeout=1)
    assert entry_type(overflow) == "error" and ids[-1] in json.loads(overflow.data)["errorText"]
    assert overflow.id == ids[-1]
    with pytest.raises(StopAsyncIteration):
        await sub.next(timeout=1)
    await sub.close()

    # Reconnecting from the id it names loses nothing.
    await finish(task)
    async with registry.subscribe(task.task_id, overflow.id) as again:
        rest = await drain(again)
    assert len(rest) == 2000 + 1 and entry_type(rest[-1]) == "finish"


async def test_unsubscribing_cancels_the_listener_without_leaks(redis_target):
    task = await new_task()
    subs = [registry.subscribe(task.task_id) for _ in range(10)]
    for sub in subs:
        sub.start()
    await asyncio.sleep(0.1)
    listeners = [t for t in asyncio.all_tasks() if t.get_name().startswith("listen:")]
    assert len(listeners) == 10
    for sub in subs:
        await sub.close()
    assert all(t.done() for t in listeners)
    assert not [
        t for t in asyncio.all_tasks() if t.get_name().startswith("listen:") and not t.done()
    ]


async def test_a_publish_brings_the_cancel_flag_back_so_a_writing_worker_need_not_poll(
    redis_target,
):
    task = await tasks.create_turn("s1", "u1")
    await tasks.claim(task.task_id, "w1")
    await registry.publish_chunks(task.task_id, [c.StartStep()])
    assert await registry.task_state(task.task_id, fresh_within=60) == ("running", False)
    await get_redis().hset(keys.task_meta(task.task_id), "cancel", "1")  # the user cancels
    # Answered from the last publish, not from Redis: the flag shows with the next write.
    assert await registry.task_state(task.task_id, fresh_within=60) == ("running", False)
    await registry.publish_chunks(task.task_id, [c.TextStart(id="t")])
    assert await registry.task_state(task.task_id, fresh_within=60) == ("running", True)
    registry.forget_published(task.task_id)
    assert await registry.task_state(task.task_id, fresh_within=60) == ("running", True)
    await tasks.finish(task, "cancelled")
    assert await registry.task_state(task.task_id) == ("cancelled", True)


async def test_tasks_read_at_their_end_come_with_their_last_entry_ids(redis_target):
    one = await tasks.create_turn("s1", None)  # its stream opens with `start`
    two = await tasks.create_turn("s2", None)
    [last_of_two] = await registry.publish_chunks(two.task_id, [c.StartStep()])
    found = await registry.get_tasks_at_end([one.task_id, "no-such-task", two.task_id])
    assert [(t.task_id, last) for t, last in found] == [
        (one.task_id, (await get_redis().xrevrange(keys.task_stream(one.task_id)))[0][0]),
        (two.task_id, last_of_two),
    ]
    assert await registry.get_tasks_at_end([]) == []
