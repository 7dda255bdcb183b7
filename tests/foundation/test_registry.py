"""The stream registry on a real Redis, standalone and as a 3-node cluster."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from chat_core import keys, registry
from chat_core.protocol import chunks as c
from chat_core.redis_client import get_redis

pytestmark = pytest.mark.both


async def new_task(session_id: str = "s1", user_id: str | None = "u1") -> registry.ActiveTask:
    return await registry.create_task(session_id=session_id, user_id=user_id)


async def stream_types(task_id: str) -> list[str]:
    entries = await get_redis().xrange(keys.task_stream(task_id))
    return [json.loads(fields["data"])["type"] for _, fields in entries]


async def drain(sub: registry.Subscription) -> list[registry.StreamEntry]:
    return [entry async for entry in sub]


# --- create ---------------------------------------------------------------------------------
async def test_create_task_writes_meta_operation_and_session_pointer_all_with_ttls(redis_target):
    task = await new_task()
    await registry.publish_chunk(task.task_id, c.Start(message_id="m"))
    r = get_redis()
    for key in (
        keys.task_meta(task.task_id),
        keys.task_stream(task.task_id),
        keys.operation(task.operation_id),
        keys.session_active_task("s1"),
    ):
        assert await r.pttl(key) > 0, key
    assert await r.get(keys.operation(task.operation_id)) == task.task_id
    assert (await registry.find_task_by_operation_id(task.operation_id)).task_id == task.task_id
    stored = await registry.get_task(task.task_id)
    assert (stored.session_id, stored.user_id, stored.status, stored.phase) == (
        "s1",
        "u1",
        "running",
        "queued",
    )


async def test_one_running_task_per_session(redis_target):
    first = await new_task()
    with pytest.raises(registry.TaskAlreadyRunning) as err:
        await new_task()
    assert err.value.task_id == first.task_id
    await registry.mark_task_completed(first.task_id)
    second = await new_task()
    active, _ = await registry.get_active_task_for_session("s1", "u1")
    assert active.task_id == second.task_id


async def test_a_pointer_left_by_a_crashed_task_does_not_block_the_session(redis_target):
    await get_redis().set(keys.session_active_task("s1"), "gone-task", px=60_000)
    task = await new_task()
    assert (await registry.get_active_task_for_session("s1", "u1"))[0].task_id == task.task_id


async def test_an_operation_task_takes_the_session_over_from_its_turn(redis_target):
    turn = await new_task()
    op = await registry.create_task(
        session_id="s1", user_id="u1", tool_name="create_agent", claim_session=False
    )
    assert (await registry.get_active_task_for_session("s1", "u1"))[0].task_id == turn.task_id
    assert await registry.hand_over_session("s1", turn.task_id, op.task_id) is True
    assert await registry.hand_over_session("s1", turn.task_id, "someone-else") is False
    assert (await registry.get_active_task_for_session("s1", "u1"))[0].task_id == op.task_id
    # The turn finishing afterwards must not clear the operation's claim.
    await registry.mark_task_completed(turn.task_id)
    assert (await registry.get_active_task_for_session("s1", "u1"))[0].task_id == op.task_id


async def test_the_turn_that_handed_over_does_not_shorten_the_operations_claim(
    redis_target, settings_env
):
    settings_env(stream_ttl_seconds=60, operation_timeout_seconds=3600, worker_lease_seconds=30)
    turn = await new_task()
    await registry.claim_task(turn.task_id, "w1")
    op = await registry.create_task(
        session_id="s1", user_id="u1", tool_name="create_agent", claim_session=False
    )
    await registry.hand_over_session("s1", turn.task_id, op.task_id)
    pointer_ttl = await get_redis().pttl(keys.session_active_task("s1"))
    await registry.refresh_lease(turn, "w1")  # the turn is still finishing its last chunks
    assert await get_redis().pttl(keys.session_active_task("s1")) > pointer_ttl - 1000
    assert pointer_ttl > 3_600_000


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
    assert [e[0] for e in entries][1:] == ids
    assert [json.loads(e[1]["data"])["delta"] for e in entries[1:]] == [str(i) for i in range(50)]


async def test_publish_refreshes_the_ttl_of_stream_and_meta_together(redis_target, settings_env):
    settings_env(stream_ttl_seconds=100)
    task = await new_task()
    r = get_redis()
    await registry.publish_chunk(task.task_id, c.Start())
    await r.pexpire(keys.task_meta(task.task_id), 5_000)
    await r.pexpire(keys.task_stream(task.task_id), 5_000)
    await registry.publish_chunk(task.task_id, c.StartStep())
    assert await r.pttl(keys.task_meta(task.task_id)) > 90_000
    assert await r.pttl(keys.task_stream(task.task_id)) > 90_000


async def test_publishing_to_a_finished_task_is_refused(redis_target):
    task = await new_task()
    await registry.mark_task_completed(task.task_id, "cancelled")
    with pytest.raises(registry.TaskNotRunning):
        await registry.publish_chunk(task.task_id, c.TextDelta(id="t", delta="late"))
    assert await stream_types(task.task_id) == ["finish"]


# --- complete ---------------------------------------------------------------------------------
async def test_completion_appends_exactly_one_finish_and_a_second_call_changes_nothing(
    redis_target,
):
    task = await new_task()
    await registry.publish_chunks(task.task_id, [c.Start(), c.StartStep(), c.FinishStep()])
    assert await registry.mark_task_completed(task.task_id, "completed") is True
    assert await registry.mark_task_completed(task.task_id, "failed", "late") is False
    assert await stream_types(task.task_id) == ["start", "start-step", "finish-step", "finish"]
    assert (await registry.get_task(task.task_id)).status == "completed"
    assert (await registry.get_active_task_for_session("s1", "u1"))[0] is None
    assert task.task_id not in await get_redis().zrange(keys.RUNNING_TASKS, 0, -1)


async def test_failure_appends_an_error_before_the_finish(redis_target):
    task = await new_task()
    await registry.mark_task_completed(task.task_id, "failed", "The model is unavailable.")
    entries = await get_redis().xrange(keys.task_stream(task.task_id))
    assert [json.loads(f["data"]) for _, f in entries] == [
        {"type": "error", "errorText": "The model is unavailable."},
        {"type": "finish"},
    ]


async def test_twenty_concurrent_completions_yield_exactly_one_finish(redis_target):
    task = await new_task()
    statuses = ["completed", "failed", "cancelled", "completed"] * 5
    results = await asyncio.gather(
        *(registry.mark_task_completed(task.task_id, s, "x") for s in statuses)
    )
    assert sum(results) == 1
    types = await stream_types(task.task_id)
    assert types.count("finish") == 1
    winner = statuses[results.index(True)]
    assert (await registry.get_task(task.task_id)).status == winner


async def test_completion_rejects_an_unknown_status(redis_target):
    task = await new_task()
    with pytest.raises(ValueError):
        await registry.mark_task_completed(task.task_id, "running")  # type: ignore[arg-type]


# --- lookups --------------------------------------------------------------------------------
async def test_active_task_lookup_returns_the_real_last_entry_id(redis_target):
    task = await new_task()
    ids = await registry.publish_chunks(task.task_id, [c.Start(), c.StartStep()])
    active, last_id = await registry.get_active_task_for_session("s1", "u1")
    assert active.task_id == task.task_id and last_id == ids[-1]


async def test_active_task_of_another_user_is_not_returned(redis_target):
    await new_task(user_id="owner")
    assert await registry.get_active_task_for_session("s1", "intruder") == (None, "0-0")
    assert await registry.get_active_task_for_session("s1", None) == (None, "0-0")


async def test_expired_meta_with_a_surviving_stream_reports_task_expired(redis_target):
    task = await new_task()
    await registry.publish_chunk(task.task_id, c.Start())
    assert (await registry.get_task_with_expiry_info(task.task_id))[1] is None
    await get_redis().delete(keys.task_meta(task.task_id))
    assert await registry.get_task_with_expiry_info(task.task_id) == (None, registry.TASK_EXPIRED)
    assert await registry.get_task_with_expiry_info("never-existed") == (
        None,
        registry.TASK_NOT_FOUND,
    )


# --- leases, cancel, long tasks ----------------------------------------------------------------
async def test_only_the_first_worker_claim_wins(redis_target):
    task = await new_task()
    assert await registry.claim_task(task.task_id, "w1") == "ok"
    assert await registry.claim_task(task.task_id, "w2") == "taken"
    await registry.mark_task_completed(task.task_id)
    assert await registry.claim_task(task.task_id, "w3") == "not-running"


async def test_cancel_flag_reaches_the_worker_through_its_lease_refresh(redis_target):
    task = await new_task()
    await registry.claim_task(task.task_id, "w1")
    assert await registry.refresh_lease(task, "w1") == ("running", False, True)
    assert await registry.request_cancel(task.task_id) == ("running", "working")
    assert await registry.refresh_lease(task, "w1") == ("running", True, True)
    assert (await registry.refresh_lease(task, "someone-else")).held is False


async def test_cancelling_a_finished_or_unknown_task_writes_nothing(redis_target):
    task = await new_task()
    await registry.mark_task_completed(task.task_id)
    assert await registry.request_cancel(task.task_id) == ("completed", "queued")
    assert (await registry.task_state(task.task_id))[1] is False
    assert await registry.request_cancel("unknown") == ("", "")
    assert await get_redis().exists(keys.task_meta("unknown")) == 0


@pytest.mark.slow
async def test_a_task_running_past_its_ttl_keeps_its_meta(redis_target, settings_env):
    settings_env(stream_ttl_seconds=1, worker_lease_seconds=2)
    task = await new_task()
    assert await registry.claim_task(task.task_id, "w1") == "ok"
    await registry.publish_chunk(task.task_id, c.Start())
    deadline = time.monotonic() + 4.0  # four times the TTL
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        await registry.refresh_lease(task, "w1")
    stored = await registry.get_task(task.task_id)
    assert stored is not None and stored.status == "running"
    assert await registry.mark_task_completed(task.task_id) is True
    assert (await stream_types(task.task_id))[-1] == "finish"


async def test_an_awaiting_task_lives_until_its_operation_deadline(redis_target, settings_env):
    settings_env(stream_ttl_seconds=1)
    task = await new_task()
    assert await registry.set_phase(task, "awaiting", seconds=3600)
    r = get_redis()
    assert await r.pttl(keys.task_meta(task.task_id)) > 3_600_000
    assert await r.pttl(keys.operation(task.operation_id)) > 3_600_000
    assert (await registry.get_task(task.task_id)).phase == "awaiting"


async def test_sweeping_an_expired_lease_fails_the_task_with_a_message_for_its_phase(redis_target):
    task = await new_task()
    await registry.claim_task(task.task_id, "w1")
    await get_redis().hset(keys.task_meta(task.task_id), "lease_until", "1")
    await get_redis().zadd(keys.RUNNING_TASKS, {task.task_id: 1})
    messages = {"queued": "not started", "working": "worker died", "awaiting": "no callback"}
    assert task.task_id in await registry.expired_task_ids()
    assert await registry.fail_if_lease_expired(task.task_id, messages) == "failed"
    entries = await get_redis().xrange(keys.task_stream(task.task_id))
    assert [json.loads(f["data"]) for _, f in entries] == [
        {"type": "error", "errorText": "worker died"},
        {"type": "finish"},
    ]
    assert task.task_id not in await registry.expired_task_ids()


async def test_sweeping_a_live_lease_only_reindexes_it(redis_target):
    task = await new_task()
    await registry.claim_task(task.task_id, "w1")
    await get_redis().zadd(keys.RUNNING_TASKS, {task.task_id: 1})
    messages = {"queued": "a", "working": "b", "awaiting": "c"}
    assert await registry.fail_if_lease_expired(task.task_id, messages) == "extended"
    assert (await registry.get_task(task.task_id)).status == "running"
    assert task.task_id not in await registry.expired_task_ids()


async def test_an_operation_result_is_applied_once(redis_target):
    task = await new_task()
    await registry.set_phase(task, "awaiting", seconds=60)
    output = c.ToolOutputAvailable(tool_call_id="call", output={"ok": True})
    results = await asyncio.gather(
        *(registry.apply_operation_result(task, [output]) for _ in range(10))
    )
    assert sorted(results) == ["applied"] + ["duplicate"] * 9
    assert await stream_types(task.task_id) == ["tool-output-available"]
    stored = await registry.get_task(task.task_id)
    assert stored.phase == "queued" and stored.worker == ""


# --- subscribe --------------------------------------------------------------------------------
@pytest.mark.slow
async def test_replaying_5000_entries_from_the_start_and_from_a_middle_cursor(redis_target):
    task = await new_task()
    deltas = [c.TextDelta(id="t", delta=str(i)) for i in range(5000)]
    ids: list[str] = []
    for start in range(0, 5000, 500):
        ids += await registry.publish_chunks(task.task_id, deltas[start : start + 500])
    await registry.mark_task_completed(task.task_id)

    async with registry.subscribe(task.task_id, "0-0") as sub:
        entries = await drain(sub)
    assert [e.id for e in entries[:-1]] == ids
    assert [json.loads(e.data)["delta"] for e in entries[:-1]] == [str(i) for i in range(5000)]
    assert entries[-1].type == "finish"

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
        assert entry.id == new_id and entry.type == "text-start"
        await registry.mark_task_completed(task.task_id)
        assert (await sub.next(timeout=5)).type == "finish"
        with pytest.raises(StopAsyncIteration):
            await sub.next(timeout=5)


async def test_resuming_a_finished_task_at_its_end_returns_at_once(redis_target, settings_env):
    settings_env(read_block_ms=10_000)
    task = await new_task()
    await registry.publish_chunk(task.task_id, c.Start())
    await registry.mark_task_completed(task.task_id)
    last = await registry.last_entry_id(task.task_id)
    started = time.monotonic()
    async with registry.subscribe(task.task_id, last) as sub:
        assert await drain(sub) == []
    assert time.monotonic() - started < 2  # never waits a block period on a finished task


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
    await registry.mark_task_completed(task.task_id)
    for reader, sub in zip(readers, subs):
        entries = await asyncio.wait_for(reader, 10)
        await sub.close()
        assert [e.id for e in entries[1:-1]] == published
        assert entries[-1].type == "finish"


async def test_a_reader_that_stops_reading_does_not_grow_memory(redis_target, settings_env):
    settings_env(subscriber_queue_size=20, subscriber_put_timeout_seconds=0.3)
    task = await new_task()
    ids = await registry.publish_chunks(
        task.task_id, [c.TextDelta(id="t", delta=str(i)) for i in range(5)]
    )
    sub = registry.subscribe(task.task_id, "0-0")
    delivered = [await sub.next(timeout=5) for _ in range(5)]
    assert [e.id for e in delivered] == ids
    for batch in range(20):  # 2,000 chunks the reader never asks for
        await registry.publish_chunks(
            task.task_id, [c.TextDelta(id="t", delta="x") for _ in range(100)]
        )
        assert sub._queue.qsize() <= 20
    await asyncio.sleep(1.0)
    assert sub._queue.qsize() <= 1 and sub._listener.done()

    overflow = await sub.next(timeout=1)
    assert overflow.type == "error" and ids[-1] in json.loads(overflow.data)["errorText"]
    assert overflow.id == ids[-1]
    with pytest.raises(StopAsyncIteration):
        await sub.next(timeout=1)
    await sub.close()

    # Reconnecting from the id it names loses nothing.
    await registry.mark_task_completed(task.task_id)
    async with registry.subscribe(task.task_id, overflow.id) as again:
        rest = await drain(again)
    assert len(rest) == 2000 + 1 and rest[-1].type == "finish"


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


async def test_an_operation_result_published_by_its_worker_is_never_contradicted(redis_target):
    task = await registry.create_task(
        session_id="s", user_id=None, tool_name="slow_tool", tool_call_id="c1"
    )
    await registry.claim_task(task.task_id, "w1")
    output = c.ToolOutputAvailable(tool_call_id="c1", output={"done": True})
    await registry.publish_chunks(task.task_id, [output, c.FinishStep()], operation_result=True)
    # The worker dies writing the continuation; its lease runs out.
    await get_redis().hset(keys.task_meta(task.task_id), "lease_until", "1")
    messages = {"queued": "a", "working": "worker died", "awaiting": "c"}
    assert await registry.fail_if_lease_expired(task.task_id, messages) == "failed"
    assert await stream_types(task.task_id) == [
        "tool-output-available",
        "finish-step",
        "error",
        "finish",
    ]
