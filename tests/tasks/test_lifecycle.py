"""chat_core.tasks.lifecycle: every transition and every way a task ends, on a standalone
Redis, a 3-node 6.2 cluster and a 3-node Redis 7 cluster: one `finish`, the right closing
chunks, the session pointer cleared, the sweeper index cleared, `task_finished` exactly
once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from chat_core import background, keys, registry
from chat_core.notifications import SessionEvent, listen, notify
from chat_core.protocol import chunks as c
from chat_core.redis_client import get_redis
from chat_core.sessions import get_session_store
from chat_core.sessions.models import ChatMessage
from chat_core.tasks import lifecycle
from chat_core.worker.dispatch import set_dispatcher
from chat_core.worker.jobs import RunTurn

from tests.fakes import Failing

pytestmark = [pytest.mark.both, pytest.mark.redis7]


async def chunks_of(task_id: str) -> list[dict]:
    entries = await get_redis().xrange(keys.task_stream(task_id))
    return [json.loads(fields["data"]) for _, fields in entries]


async def types_of(task_id: str) -> list[str]:
    return [chunk["type"] for chunk in await chunks_of(task_id)]


@asynccontextmanager
async def session_events(user_id: str | None, session_id: str) -> AsyncIterator[list]:
    """Collects the session events published while the block runs (a marker event ends
    the collection, so nothing is waited for by the clock)."""
    seen: list[SessionEvent] = []
    ready = asyncio.Event()

    async def collect() -> None:
        stream = listen(user_id, session_id)
        ready.set()
        async for event in stream:
            if event.type == "session_deleted" and event.title == "end-marker":
                return
            seen.append(event)

    collector = asyncio.create_task(collect())
    await ready.wait()
    await asyncio.sleep(0.2)  # SUBSCRIBE reaches the server
    yield seen
    marker = SessionEvent(type="session_deleted", session_id=session_id, title="end-marker")
    await notify(user_id, marker)
    await asyncio.wait_for(collector, 10)


def finished_events(events: list[SessionEvent], task_id: str) -> list[str | None]:
    return [e.status for e in events if e.type == "task_finished" and e.task_id == task_id]


async def is_indexed(task_id: str) -> bool:
    return await get_redis().zscore(keys.RUNNING_TASKS, task_id) is not None


async def new_session(user_id: str | None = "u1") -> str:
    return (await get_session_store().create(user_id)).session_id


async def pending_operation(session_id: str, user_id: str | None = "u1", call: str = "call-1"):
    """An operation as a turn starts it: guard, task, pending tool message, awaiting."""
    assert await lifecycle.acquire_guard(session_id, call, "turn")
    operation = await lifecycle.create_operation(
        session_id=session_id,
        user_id=user_id,
        tool_call_id=call,
        tool_name="create_agent",
        tool_input={"description": "x"},
    )
    pending = json.dumps({"type": "operation_pending", "task_id": operation.task_id})
    await get_session_store().append_messages(
        session_id, [ChatMessage(role="tool", tool_call_id=call, content=pending)]
    )
    assert await lifecycle.await_operation(operation)
    return operation


async def tool_message(session_id: str, call: str = "call-1") -> str | None:
    session = await get_session_store().get(session_id, "u1")
    found = [m.content for m in session.messages if m.tool_call_id == call]
    return found[-1] if found else None


async def expire_now(task: registry.TaskRecord) -> None:
    await background.drain()  # what a claim does beside the work lands before any lease runs out
    await get_redis().hset(keys.task_meta(task.task_id), "lease_until", "1")
    await get_redis().zadd(keys.RUNNING_TASKS, {task.task_id: 1})


# --- create -------------------------------------------------------------------------------
async def test_create_turn_writes_every_key_with_a_ttl_and_opens_the_stream(redis_target):
    task = await lifecycle.create_turn("s1", "u1")
    r = get_redis()
    for key in (
        keys.task_meta(task.task_id),
        keys.task_stream(task.task_id),
        keys.operation(task.operation_id),
        keys.session_turn("s1"),
    ):
        assert await r.pttl(key) > 0, key
    assert await is_indexed(task.task_id)
    assert await types_of(task.task_id) == ["start"]
    stored = await registry.get_task(task.task_id)
    assert (stored.session_id, stored.user_id, stored.status, stored.phase) == (
        "s1",
        "u1",
        "running",
        "queued",
    )


async def test_one_running_turn_per_session(redis_target):
    first = await lifecycle.create_turn("s1", "u1")
    with pytest.raises(lifecycle.TurnInProgress) as err:
        await lifecycle.create_turn("s1", "u1")
    assert err.value.task_id == first.task_id
    # The refused turn left nothing behind for the sweeper: only the running one is indexed.
    assert await lifecycle.expired_task_ids() == []
    assert await get_redis().zrange(keys.RUNNING_TASKS, 0, -1) == [first.task_id]
    await lifecycle.finish(first, "completed")
    second = await lifecycle.create_turn("s1", "u1")
    assert (await lifecycle.active_task("s1", "u1"))[0].task_id == second.task_id


async def test_a_pointer_left_by_a_crashed_turn_does_not_block_the_session(redis_target):
    await get_redis().set(keys.session_turn("s1"), "gone-task", px=60_000)
    task = await lifecycle.create_turn("s1", "u1")
    assert (await lifecycle.active_task("s1", "u1"))[0].task_id == task.task_id


async def test_a_pending_operation_does_not_block_a_new_turn_and_stays_findable(redis_target):
    session_id = await new_session()
    turn = await lifecycle.create_turn(session_id, "u1")
    operation = await pending_operation(session_id)
    assert (await lifecycle.active_task(session_id, "u1"))[0].task_id == turn.task_id
    await lifecycle.finish(turn, "completed")
    # With no turn running, a reload follows the operation ...
    assert (await lifecycle.active_task(session_id, "u1"))[0].task_id == operation.task_id
    # ... and the user may go on chatting.
    next_turn = await lifecycle.create_turn(session_id, "u1")
    assert (await lifecycle.active_task(session_id, "u1"))[0].task_id == next_turn.task_id
    assert operation.task_id in await get_redis().smembers(keys.session_operations(session_id))


async def test_an_operation_stream_opens_with_the_tool_input(redis_target):
    operation = await pending_operation(await new_session())
    assert await types_of(operation.task_id) == [
        "start",
        "start-step",
        "tool-input-start",
        "tool-input-available",
    ]
    assert (await chunks_of(operation.task_id))[-1]["input"] == {"description": "x"}


async def test_the_active_task_of_another_user_is_not_returned(redis_target):
    await lifecycle.create_turn("s1", "owner")
    assert await lifecycle.active_task("s1", "intruder") == (None, "0-0")
    assert await lifecycle.active_task("s1", None) == (None, "0-0")


async def test_the_active_task_comes_with_its_real_last_entry_id(redis_target):
    task = await lifecycle.create_turn("s1", "u1")
    ids = await registry.publish_chunks(task.task_id, [c.StartStep()])
    assert await lifecycle.active_task("s1", "u1") == (task, ids[-1])


async def test_the_guard_is_per_session(redis_target):
    assert await lifecycle.acquire_guard("s1", "call-1", "t1")
    assert not await lifecycle.acquire_guard("s1", "call-1", "t2")
    assert await lifecycle.acquire_guard("s2", "call-1", "t3")  # another user's session


async def test_start_turn_saves_the_message_and_hands_the_turn_to_the_worker(dispatched):
    session = await get_session_store().create("u1")
    task = await lifecycle.start_turn(session.session_id, "Hello there", "u1")
    [job] = dispatched.jobs
    assert isinstance(job, RunTurn) and job.task_id == task.task_id
    assert job.message_id == (await chunks_of(task.task_id))[0]["messageId"]
    stored = await get_session_store().get(session.session_id, "u1")
    assert [m.content for m in stored.messages if not m.is_view] == ["Hello there"]
    assert (await lifecycle.active_task(session.session_id, "u1"))[0].task_id == task.task_id


async def test_a_second_message_while_a_turn_runs_is_refused(dispatched):
    session = await get_session_store().create("u1")
    task = await lifecycle.start_turn(session.session_id, "Hello there", "u1")
    with pytest.raises(lifecycle.TurnInProgress) as err:
        await lifecycle.start_turn(session.session_id, "me again", "u1")
    assert err.value.task_id == task.task_id
    stored = await get_session_store().get(session.session_id, "u1")
    said = [m.content for m in stored.messages if not m.is_view]
    assert said == ["Hello there"]  # the refused one is not saved


class NotYours(Exception):
    pass


async def test_a_failed_check_beside_the_claim_starts_nothing_and_leaves_nothing(dispatched):
    session = await get_session_store().create("u1")

    async def refuse() -> None:
        raise NotYours

    with pytest.raises(NotYours):
        await lifecycle.start_turn(session.session_id, "Hello there", "u2", check=refuse())
    assert dispatched.jobs == []
    assert await get_redis().exists(keys.session_turn(session.session_id)) == 0
    assert await get_redis().zcard(keys.RUNNING_TASKS) == 0
    stored = await get_session_store().get(session.session_id, "u1")
    assert [m for m in stored.messages if not m.is_view] == []
    # The session is free: the next turn starts.
    assert await lifecycle.start_turn(session.session_id, "Hello there", "u1")


async def test_a_check_that_passes_lets_the_turn_start(dispatched):
    session = await get_session_store().create("u1")
    checked = asyncio.Event()

    async def accept() -> None:
        checked.set()

    task = await lifecycle.start_turn(session.session_id, "Hello there", "u1", check=accept())
    assert checked.is_set() and [job.task_id for job in dispatched.jobs] == [task.task_id]


async def test_a_dispatch_failure_fails_the_task_with_a_reason(dispatched):
    set_dispatcher(Failing())
    session = await get_session_store().create("u1")
    task = await lifecycle.start_turn(session.session_id, "Hello there", "u1")
    chunks = await chunks_of(task.task_id)
    assert chunks[1:] == [
        {"type": "error", "errorText": "The assistant could not be started. Please try again."},
        {"type": "finish"},
    ]
    assert chunks[0]["type"] == "start"
    assert (await lifecycle.active_task(session.session_id, "u1"))[0] is None


# --- claim, refresh, cancel flag ----------------------------------------------------------
async def test_only_the_first_claim_wins_and_it_announces_the_task(redis_target):
    task = await lifecycle.create_turn("s1", "u1")
    async with session_events("u1", "s1") as events:
        outcome, claimed = await lifecycle.claim(task.task_id, "w1")
        assert outcome == "ok" and claimed.phase == "working" and claimed.worker == "w1"
        assert await lifecycle.claim(task.task_id, "w2") == ("taken", None)
        await background.drain()  # announced beside the work, not ahead of it
    assert [e.type for e in events] == ["task_started"]
    await lifecycle.finish(task, "completed")
    assert await lifecycle.claim(task.task_id, "w3") == ("not-running", None)


async def test_a_claim_moves_the_index_only_when_it_was_due_after_the_new_lease(redis_target):
    """The sweeper must look no later than the new lease runs out: a queued turn's index entry
    already does; an awaited operation's (its webhook deadline) is brought forward."""
    r = get_redis()
    turn = await lifecycle.create_turn("s1", "u1")
    queued_at = await r.zscore(keys.RUNNING_TASKS, turn.task_id)
    _, claimed = await lifecycle.claim(turn.task_id, "w1")
    await background.drain()
    assert await r.zscore(keys.RUNNING_TASKS, turn.task_id) == queued_at <= claimed.lease_until_ms

    operation = await pending_operation(await new_session())
    deadline = await r.zscore(keys.RUNNING_TASKS, operation.task_id)
    _, claimed = await lifecycle.claim(operation.task_id, "w2")
    await background.drain()
    assert deadline > claimed.lease_until_ms
    assert await r.zscore(keys.RUNNING_TASKS, operation.task_id) == claimed.lease_until_ms


async def test_the_cancel_flag_reaches_the_worker_through_its_lease_refresh(redis_target):
    task = await lifecycle.create_turn("s1", "u1")
    await lifecycle.claim(task.task_id, "w1")
    assert await lifecycle.refresh(task, "w1") == ("running", False, True)
    cancelling = asyncio.create_task(lifecycle.cancel(task))
    await asyncio.sleep(0.1)
    assert await lifecycle.refresh(task, "w1") == ("running", True, True)
    assert (await lifecycle.refresh(task, "someone-else")).held is False
    assert await cancelling == "cancelled"  # no worker reacted within the grace: ended anyway


async def test_an_awaiting_operation_lives_until_its_deadline(redis_target, settings_env):
    settings_env(stream_ttl_seconds=1, operation_timeout_seconds=3600)
    operation = await pending_operation(await new_session())
    r = get_redis()
    assert await r.pttl(keys.task_meta(operation.task_id)) > 3_600_000
    assert await r.pttl(keys.operation(operation.operation_id)) > 3_600_000
    assert (await registry.get_task(operation.task_id)).phase == "awaiting"


# --- finish -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "error", "closing"),
    [
        ("completed", None, []),
        (
            "failed",
            "The model is unavailable.",
            [{"type": "error", "errorText": "The model is unavailable."}],
        ),
        ("cancelled", None, []),
    ],
)
async def test_a_turn_ends_once_with_its_closing_chunks(redis_target, status, error, closing):
    session_id = await new_session()
    task = await lifecycle.create_turn(session_id, "u1")
    async with session_events("u1", session_id) as events:
        assert await lifecycle.finish(task, status, error) is True
        assert await lifecycle.finish(task, "failed", "late") is False
    assert (await chunks_of(task.task_id))[1:] == [*closing, {"type": "finish"}]
    assert (await registry.get_task(task.task_id)).status == status
    assert await get_redis().get(keys.session_turn(session_id)) is None
    assert not await is_indexed(task.task_id)
    assert finished_events(events, task.task_id) == [status]


async def test_twenty_concurrent_finishes_yield_one_finish_and_one_event(redis_target):
    session_id = await new_session()
    task = await lifecycle.create_turn(session_id, "u1")
    statuses = ["completed", "failed", "cancelled", "completed"] * 5
    async with session_events("u1", session_id) as events:
        results = await asyncio.gather(*(lifecycle.finish(task, s, "x") for s in statuses))
    assert sum(results) == 1
    assert (await types_of(task.task_id)).count("finish") == 1
    winner = statuses[results.index(True)]
    assert finished_events(events, task.task_id) == [winner]


async def test_an_operation_ended_without_its_result_closes_its_tool_call(redis_target):
    session_id = await new_session()
    operation = await pending_operation(session_id)
    async with session_events("u1", session_id) as events:
        assert await lifecycle.finish(operation, "failed", "The service refused it.")
    assert (await chunks_of(operation.task_id))[4:] == [
        {
            "type": "tool-output-error",
            "toolCallId": "call-1",
            "errorText": "The service refused it.",
        },
        {"type": "finish-step"},
        {"type": "error", "errorText": "The service refused it."},
        {"type": "finish"},
    ]
    assert json.loads(await tool_message(session_id)) == {"error": "The service refused it."}
    assert await lifecycle.acquire_guard(session_id, "call-1", "again")  # the guard is gone
    assert operation.task_id not in await get_redis().smembers(keys.session_operations(session_id))
    assert finished_events(events, operation.task_id) == ["failed"]


# --- operation results --------------------------------------------------------------------
async def test_an_operation_result_is_applied_once(redis_target):
    session_id = await new_session()
    operation = await pending_operation(session_id)
    results = await asyncio.gather(
        *(lifecycle.apply_result(operation, True, {"ok": True}, None) for _ in range(10))
    )
    assert sorted(results) == ["applied"] + ["duplicate"] * 9
    assert (await types_of(operation.task_id))[4:] == ["tool-output-available", "finish-step"]
    stored = await registry.get_task(operation.task_id)
    assert stored.phase == "queued" and stored.worker == "" and stored.result_applied
    assert json.loads(await tool_message(session_id)) == {"ok": True}
    assert await lifecycle.acquire_guard(session_id, "call-1", "again")


async def test_an_applied_result_brings_the_sweepers_look_forward_to_its_new_lease(
    redis_target,
):
    r = get_redis()
    session_id = await new_session()
    operation = await pending_operation(session_id)
    deadline = await r.zscore(keys.RUNNING_TASKS, operation.task_id)
    assert await lifecycle.apply_result(operation, True, {"ok": True}, None) == "applied"
    queued = await registry.get_task(operation.task_id)
    assert await r.zscore(keys.RUNNING_TASKS, operation.task_id) == queued.lease_until_ms
    assert queued.lease_until_ms < deadline
    # An ended task has left the index, and a late duplicate does not put it back.
    await lifecycle.finish(queued, "completed")
    assert await lifecycle.apply_result(operation, True, {"ok": True}, None) == "not-running"
    assert not await is_indexed(operation.task_id)
    assert json.loads(await tool_message(session_id)) == {"ok": True}


async def test_a_result_for_another_operation_or_a_finished_one_changes_nothing(redis_target):
    session_id = await new_session()
    operation = await pending_operation(session_id)
    await lifecycle.finish(operation, "cancelled")
    assert await lifecycle.apply_result(operation, True, {"late": True}, None) == "not-running"
    assert json.loads(await tool_message(session_id)) == {"error": lifecycle.CANCELLED_OPERATION}


async def test_cancel_and_result_racing_never_contradict_each_other(redis_target):
    for _ in range(5):
        session_id = await new_session()
        operation = await pending_operation(session_id)
        cancelled, applied = await asyncio.gather(
            lifecycle.cancel(operation), lifecycle.apply_result(operation, True, {"done": 1}, None)
        )
        types = await types_of(operation.task_id)
        message = json.loads(await tool_message(session_id))
        if applied == "applied":  # the result came first: it stands, nothing closes it again
            assert "tool-output-error" not in types and message == {"done": 1}
        else:
            assert applied == "not-running" and message == {"error": lifecycle.CANCELLED_OPERATION}
            assert types.count("tool-output-error") == 1
        assert cancelled == "cancelled" and types.count("finish") == 1


async def test_the_worker_that_ran_the_tool_keeps_its_lease(redis_target):
    session_id = await new_session()
    operation = await pending_operation(session_id)
    await get_redis().hset(keys.task_meta(operation.task_id), "phase", "queued")
    await lifecycle.claim(operation.task_id, "w1")
    assert await lifecycle.apply_result(operation, True, "ok", None, worker="w1") == "applied"
    stored = await registry.get_task(operation.task_id)
    assert stored.phase == "working" and stored.worker == "w1"


# --- cancel -------------------------------------------------------------------------------
async def test_cancelling_a_queued_turn_ends_it_at_once(redis_target):
    session_id = await new_session()
    task = await lifecycle.create_turn(session_id, "u1")
    async with session_events("u1", session_id) as events:
        assert await lifecycle.cancel(task) == "cancelled"
        assert await lifecycle.cancel(task) == "cancelled"
    assert await types_of(task.task_id) == ["start", "finish"]
    assert finished_events(events, task.task_id) == ["cancelled"]


async def test_cancelling_an_awaiting_operation_closes_its_tool_call(redis_target):
    session_id = await new_session()
    operation = await pending_operation(session_id)
    assert await lifecycle.cancel(operation) == "cancelled"
    assert (await types_of(operation.task_id))[4:] == [
        "tool-output-error",
        "finish-step",
        "finish",
    ]
    assert json.loads(await tool_message(session_id)) == {"error": lifecycle.CANCELLED_OPERATION}


async def test_cancelling_a_finished_task_writes_nothing(redis_target):
    task = await lifecycle.create_turn("s1", "u1")
    await lifecycle.finish(task, "completed")
    assert await lifecycle.cancel(task) == "completed"
    assert await types_of(task.task_id) == ["start", "finish"]
    assert (await registry.get_task(task.task_id)).cancel_requested is False


# --- expire -------------------------------------------------------------------------------
@pytest.mark.parametrize("phase", ["queued", "working"])
async def test_an_expired_turn_fails_with_the_message_for_its_phase(redis_target, phase):
    session_id = await new_session()
    task = await lifecycle.create_turn(session_id, "u1")
    if phase == "working":
        await lifecycle.claim(task.task_id, "w1")
    await expire_now(task)
    assert task.task_id in await lifecycle.expired_task_ids()
    async with session_events("u1", session_id) as events:
        assert await lifecycle.expire(task.task_id) == "failed"
        assert await lifecycle.expire(task.task_id) == "gone"
    assert (await chunks_of(task.task_id))[1:] == [
        {"type": "error", "errorText": lifecycle.EXPIRED[phase]},
        {"type": "finish"},
    ]
    assert task.task_id not in await lifecycle.expired_task_ids()
    assert await get_redis().get(keys.session_turn(session_id)) is None
    assert finished_events(events, task.task_id) == ["failed"]


async def test_an_operation_that_never_reported_back_is_given_up(redis_target):
    session_id = await new_session()
    operation = await pending_operation(session_id)
    await expire_now(operation)
    assert await lifecycle.expire(operation.task_id) == "failed"
    message = lifecycle.EXPIRED["awaiting"]
    assert (await chunks_of(operation.task_id))[4:] == [
        {"type": "tool-output-error", "toolCallId": "call-1", "errorText": message},
        {"type": "finish-step"},
        {"type": "error", "errorText": message},
        {"type": "finish"},
    ]
    assert json.loads(await tool_message(session_id)) == {"error": message}


async def test_expiry_never_contradicts_an_applied_result(redis_target):
    session_id = await new_session()
    operation = await pending_operation(session_id)
    await lifecycle.apply_result(operation, True, {"done": True}, None)
    await lifecycle.claim(operation.task_id, "w1")  # the continuation's worker dies
    await expire_now(operation)
    assert await lifecycle.expire(operation.task_id) == "failed"
    assert (await types_of(operation.task_id))[4:] == [
        "tool-output-available",
        "finish-step",
        "error",
        "finish",
    ]
    assert json.loads(await tool_message(session_id)) == {"done": True}


async def test_a_live_lease_is_only_reindexed(redis_target):
    task = await lifecycle.create_turn("s1", "u1")
    await lifecycle.claim(task.task_id, "w1")
    await background.drain()
    await get_redis().zadd(keys.RUNNING_TASKS, {task.task_id: 1})
    assert await lifecycle.expire(task.task_id) == "extended"
    assert (await registry.get_task(task.task_id)).status == "running"
    assert task.task_id not in await lifecycle.expired_task_ids()


async def test_a_task_whose_creation_failed_after_the_index_is_swept_away(redis_target):
    await get_redis().zadd(keys.RUNNING_TASKS, {"half-created": 1})
    assert await lifecycle.expire("half-created") == "gone"
    assert not await is_indexed("half-created")


# --- sessions deleted ---------------------------------------------------------------------
async def test_ending_a_session_stops_what_runs_and_makes_every_task_unreadable(redis_target):
    session_id = await new_session()
    earlier = await lifecycle.create_turn(session_id, "u1")
    await lifecycle.finish(earlier, "completed")
    turn = await lifecycle.create_turn(session_id, "u1")
    operation = await pending_operation(session_id)
    async with session_events("u1", session_id) as events:
        await lifecycle.end_session(session_id, [earlier.task_id])
    for task in (earlier, turn, operation):
        assert await registry.get_task_or_expiry(task.task_id) == (None, False)
        assert not await is_indexed(task.task_id)
    assert sorted(
        finished_events(events, turn.task_id) + finished_events(events, operation.task_id)
    ) == [
        "cancelled",
        "cancelled",
    ]
    assert finished_events(events, earlier.task_id) == []
