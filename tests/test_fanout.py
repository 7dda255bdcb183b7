"""chat_core.fanout: the readers of a task under load, on a real Redis (standalone and 3-node
clusters): one read per task whatever its readers, writes that readers cannot starve, a cap
on readers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import redis
from chat_core import fanout, lua, registry, tasks
from chat_core.protocol import chunks as c
from chat_core.redis_client import get_reader_redis

pytestmark = [pytest.mark.both, pytest.mark.redis7]


def xread_calls(target) -> int:
    """XREAD commands the server(s) ran since the last reset, over every node."""
    total = 0
    for url in target.node_urls:
        with redis.Redis.from_url(url) as node:
            total += node.info("commandstats").get("cmdstat_xread", {}).get("calls", 0)
    return total


def reset_stats(target) -> None:
    for url in target.node_urls:
        with redis.Redis.from_url(url) as node:
            node.config_resetstat()


def connected_clients(target) -> int:
    total = 0
    for url in target.node_urls:
        with redis.Redis.from_url(url) as node:
            total += node.info("clients")["connected_clients"]
    return total


async def all_live(subs: list[registry.Subscription], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not all(s.state == "live" for s in subs):
            await asyncio.sleep(0.01)


async def read_all(sub: registry.Subscription) -> list[registry.StreamEntry]:
    return [entry async for entry in sub]


async def test_a_hundred_readers_of_one_task_share_one_redis_read(redis_target, settings_env):
    settings_env(redis_reader_max_connections=4)
    task = await tasks.create_turn("s", None)
    first = await registry.first_entry_id(task.task_id)  # the `start` its creation wrote
    subs = [registry.subscribe(task.task_id, "0-0") for _ in range(100)]
    for sub in subs:
        sub.start()
    got: list[list[registry.StreamEntry]] = [[await s.next(timeout=10)] for s in subs]
    await all_live(subs)

    reset_stats(redis_target)
    published = []
    for i in range(20):
        [entry_id] = await registry.publish_chunks(
            task.task_id, [c.TextDelta(id="t", delta=str(i))]
        )
        published.append(entry_id)
        for sub, entries in zip(subs, got, strict=False):  # every reader has it before the next one
            entries.append(await sub.next(timeout=10))
    live_reads = xread_calls(redis_target)
    await tasks.finish(task, "completed")
    for sub, entries in zip(subs, got, strict=False):
        entries += await asyncio.wait_for(read_all(sub), 10)
        await sub.close()

    for entries in got:
        assert [e.id for e in entries[:21]] == [first, *published]
        assert entries[-1].type == "finish"
    # One read per published entry for all hundred readers (each returns with the new entry
    # and blocks again), where a read per reader would be 2,000.
    assert live_reads <= len(published) + 2
    # Readers hold no connection each: the readers' pool (4) and the writers' few.
    assert connected_clients(redis_target) <= 4 * len(redis_target.node_urls) + 12


async def test_a_writer_publishes_and_completes_while_every_reader_connection_is_taken(
    redis_target, settings_env
):
    settings_env(redis_reader_max_connections=2, redis_pool_timeout_seconds=30)
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    # Saturate the read side: both reader connections block, and 200 readers queue for them.
    reader = get_reader_redis()
    blockers = [asyncio.create_task(reader.blpop([f"nothing-{i}"], timeout=0)) for i in range(2)]
    await asyncio.sleep(0.2)
    subs = [registry.subscribe(task.task_id, "0-0") for _ in range(200)]
    for sub in subs:
        sub.start()
    await asyncio.sleep(0.2)
    assert all(s.state == "replaying" for s in subs)  # nobody got a reader connection

    # The worker's side goes on: every publish, the lease and the completion succeed.
    assert (await tasks.claim(task.task_id, "w1"))[0] == "ok"
    ids = []
    for i in range(50):
        ids += await registry.publish_chunks(task.task_id, [c.TextDelta(id="t", delta=str(i))])
    assert (await tasks.refresh(task, "w1")).held
    assert await tasks.finish(task, "completed")

    for blocker in blockers:
        blocker.cancel()
    await asyncio.gather(*blockers, return_exceptions=True)
    for sub in subs:
        entries = await asyncio.wait_for(read_all(sub), 30)
        await sub.close()
        assert [e.id for e in entries[1:-1]] == ids and entries[-1].type == "finish"


async def test_a_slow_reader_never_holds_back_the_others(redis_target, settings_env):
    settings_env(subscriber_queue_size=10, subscriber_put_timeout_seconds=0.5)
    task = await tasks.create_turn("s", None)
    start = await registry.first_entry_id(task.task_id)  # the `start` its creation wrote
    slow, fast = registry.subscribe(task.task_id), registry.subscribe(task.task_id)
    assert (await slow.next(timeout=10)).type == "start"
    fast_reader = asyncio.create_task(read_all(fast))
    await all_live([slow, fast])

    ids = []
    for i in range(100):  # ten times what the slow reader's queue holds
        ids += await registry.publish_chunks(task.task_id, [c.TextDelta(id="t", delta=str(i))])
    await tasks.finish(task, "completed")
    entries = await asyncio.wait_for(fast_reader, 10)
    assert [e.id for e in entries[1:-1]] == ids and entries[-1].type == "finish"

    await asyncio.sleep(1.0)  # the slow one stayed behind past its put timeout
    overflow = await slow.next(timeout=1)
    assert overflow.type == "error" and overflow.id == start
    assert start in json.loads(overflow.data)["errorText"]
    await slow.close()
    await fast.close()
    async with registry.subscribe(task.task_id, overflow.id) as again:  # loses nothing
        assert [e.id for e in (await read_all(again))[:-1]] == ids


async def test_readers_joining_one_by_one_while_a_task_streams_miss_nothing(redis_target):
    """Each join lands while the shared read blocks (standalone: it is woken up for it)."""
    turns = [await tasks.create_turn(f"s{i}", None) for i in range(5)]
    readers: list[tuple[registry.Subscription, asyncio.Task]] = []
    published: dict[str, list[str]] = {t.task_id: [] for t in turns}
    for round_ in range(10):
        for task in turns:
            published[task.task_id] += await registry.publish_chunks(
                task.task_id, [c.TextDelta(id="t", delta=str(round_))]
            )
        sub = registry.subscribe(turns[round_ % 5].task_id, "0-0")
        readers.append((sub, asyncio.create_task(read_all(sub))))
        await asyncio.sleep(0.01)
    for task in turns:
        await tasks.finish(task, "completed")
    for sub, reader in readers:
        entries = await asyncio.wait_for(reader, 10)
        await sub.close()
        assert [e.id for e in entries[1:-1]] == published[sub.task_id]  # after the `start`
        assert entries[-1].type == "finish"


async def test_past_the_cap_a_new_subscription_is_refused_and_a_closed_one_frees_its_slot(
    redis_target, settings_env
):
    settings_env(max_readers_per_process=3)
    task = await tasks.create_turn("s", None)
    subs = [registry.subscribe(task.task_id) for _ in range(3)]
    with pytest.raises(registry.ReadersBusy):
        registry.subscribe(task.task_id)
    assert not fanout.readers_have_room()
    await subs[0].close()
    assert fanout.readers_have_room()
    subs[0] = registry.subscribe(task.task_id)
    await tasks.finish(task, "completed")
    for sub in subs:  # a reader that reaches the end gives its slot back too
        assert [e.type for e in await asyncio.wait_for(read_all(sub), 10)] == ["start", "finish"]
    assert fanout.readers_have_room()
    for sub in subs:
        await sub.close()


async def test_a_hundred_readers_joining_at_once_share_their_replay_and_lookups(redis_target):
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    ids = await registry.publish_chunks(
        task.task_id, [c.TextDelta(id="t", delta=str(i)) for i in range(50)]
    )
    reset_stats(redis_target)
    subs = [registry.subscribe(task.task_id, "0-0") for _ in range(100)]
    for sub in subs:
        sub.start()
    await all_live(subs)
    replay_reads = xread_calls(redis_target)
    await tasks.finish(task, "completed")
    for sub in subs:
        entries = await asyncio.wait_for(read_all(sub), 10)
        await sub.close()
        assert [e.id for e in entries[1:-1]] == ids and entries[-1].type == "finish"
    # The same page asked for at once is read once (not 100 times), plus the shared live read.
    assert replay_reads <= 10


async def test_live_readers_of_a_task_deleted_without_a_finish_are_ended(
    redis_target, settings_env
):
    # A session deleted while its task streams: the stream goes, and no `finish` is left to
    # read; the live readers find out within one block of silence.
    settings_env(read_block_ms=300)
    task = await tasks.create_turn("s1", "u1")
    subs = [registry.subscribe(task.task_id, "0-0") for _ in range(3)]
    for sub in subs:
        sub.start()
    await all_live(subs)
    await lua.TASK_DELETE(**registry.task_keys(task.task_id))
    async with asyncio.timeout(30):  # a hang guard only
        reads = await asyncio.gather(*(read_all(sub) for sub in subs))
    for entries in reads:
        assert [json.loads(e.data)["type"] for e in entries] == ["start"]
    assert all(not sub.interrupted for sub in subs)


@contextmanager
def user_refused(url: str, *, client_id: bool) -> Iterator[str]:
    """The URL of a user of the same server who may not run CLIENT UNBLOCK (nor CLIENT ID,
    with `client_id`), as some managed servers refuse them."""
    denied = ["-client|unblock"] + (["-client|id"] if client_id else [])
    allowed = ["+client|setname", "+client|setinfo"] + ([] if client_id else ["+client|id"])
    with redis.Redis.from_url(url) as admin:
        for commands in (["+@all", *denied], ["+@all", "-client", *allowed]):
            try:  # Redis 7 denies subcommands by name; Redis 6.2 can only allow them
                admin.acl_setuser(
                    "refused", enabled=True, reset=True, passwords=["+pw"],
                    keys=["*"], channels=["*"], commands=commands,
                )  # fmt: skip
                break
            except redis.ResponseError:
                continue
        try:
            where = urlsplit(url)
            yield where._replace(netloc=f"refused:pw@{where.hostname}:{where.port}").geturl()
        finally:
            admin.acl_deluser("refused")


@pytest.mark.standalone_only  # a cluster reads each task on its own: nothing to wake
@pytest.mark.parametrize("client_id", [False, True], ids=["unblock-refused", "id-refused"])
async def test_where_client_unblock_is_refused_a_reader_joining_a_blocked_read_gets_its_task(
    redis_target, settings_env, caplog, client_id
):
    caplog.set_level(logging.WARNING)
    with user_refused(redis_target.url, client_id=client_id) as url:
        # A read that would block a minute: the reader joining it must not wait that long.
        settings_env(redis_url=url, read_block_ms=60_000)
        first = await tasks.create_turn("s1", None)
        async with registry.subscribe(first.task_id, "0-0") as reading:
            await all_live([reading])  # the shared read now blocks on the first task
            second = await tasks.create_turn("s2", None)
            async with registry.subscribe(second.task_id, "0-0") as joining:
                reader = asyncio.create_task(read_all(joining))
                await all_live([joining])
                ids = await registry.publish_chunks(
                    second.task_id, [c.TextDelta(id="t", delta=str(i)) for i in range(3)]
                )
                await tasks.finish(second, "completed")
                async with asyncio.timeout(10):  # a hang guard: far less than the block
                    entries = await reader
            await tasks.finish(first, "completed")
    assert [e.id for e in entries[1:-1]] == ids and entries[-1].type == "finish"
    assert not joining.interrupted
    assert "refused" in caplog.text
