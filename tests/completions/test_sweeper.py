"""chat_core.completions.sweeper: nothing stays stuck. A completion whose worker died is
finished once, a lost wake-up is recovered by dispatching (not running) the continuation,
acknowledged completions are trimmed and pending ones never, a task whose worker died is
failed, idle consumers go. Through the HTTP API of the dev app."""

from __future__ import annotations

import pytest
from chat_core import background, keys, registry, tasks
from chat_core.completions import consumer
from chat_core.completions.sweeper import sweep
from chat_core.protocol.chunks import StartStep, TextDelta, TextStart
from chat_core.redis_client import get_redis
from chat_core.sessions import get_session_store
from chat_core.worker.dispatch import InProcessDispatcher, get_dispatcher, set_dispatcher
from chat_core.worker.jobs import ContinueOperation

from tests.chunk_rules import text_of
from tests.completions.flow import (
    operation_stream,
    start_agent_creation,
    webhook,
)
from tests.fakes import Failing, Recorder

pytestmark = [pytest.mark.both, pytest.mark.redis7, pytest.mark.valkey]


async def test_a_worker_killed_before_dispatching_leaves_a_job_the_sweeper_finishes_once(
    api, model, agent_generator, quiet_dispatch, settings_env
):
    op = await start_agent_creation(api, model)
    await webhook(api, op["operation_id"], {"success": True, "result": {"agent_id": "a7"}})

    working = get_dispatcher()
    set_dispatcher(Failing())
    assert await consumer.drain("worker-that-dies") == 1  # applied, never acknowledged
    pending = await get_redis().xpending(keys.COMPLETIONS, keys.COMPLETIONS_GROUP)
    assert pending["pending"] == 1
    assert await get_redis().hlen(keys.COMPLETION_FAILURES) == 1  # why, for a dead letter

    set_dispatcher(working)
    settings_env(completions_claim_idle_ms=0)
    model.reply_text("Finished after the crash.", stream=True)
    report = await sweep()
    assert report.claimed == 1 and report.dead_lettered == 0
    chunks = await operation_stream(api, op["task_id"])
    assert [c["type"] for c in chunks].count("tool-output-available") == 1
    assert text_of(chunks) == "Finished after the crash."
    assert (await get_redis().xpending(keys.COMPLETIONS, keys.COMPLETIONS_GROUP))["pending"] == 0
    assert await get_redis().hlen(keys.COMPLETION_FAILURES) == 0  # forgotten once it went through
    assert (await sweep()).claimed == 0  # nothing left to redo


async def test_a_lost_wake_up_is_recovered_by_the_sweeper_dispatching_the_continuation(
    api, model, agent_generator, quiet_dispatch
):
    op = await start_agent_creation(api, model)
    await webhook(api, op["operation_id"], {"success": True, "result": {"agent_id": "a9"}})
    recorder = Recorder()
    set_dispatcher(recorder)
    requests_before = len(model.chat_requests)
    report = await sweep()
    assert report.new == 1
    assert [job.task_id for job in recorder.jobs] == [op["task_id"]]
    assert isinstance(recorder.jobs[0], ContinueOperation)
    assert len(model.chat_requests) == requests_before  # the sweeper ran no model call
    assert (await get_redis().xpending(keys.COMPLETIONS, keys.COMPLETIONS_GROUP))["pending"] == 0
    # The job it dispatched writes the continuation.
    from chat_core.worker.runner import run_job

    set_dispatcher(InProcessDispatcher(run_job))
    model.reply_text("Recovered.", stream=True)
    assert await run_job(recorder.jobs[0]) == "completed"
    assert text_of(await operation_stream(api, op["task_id"])) == "Recovered."


async def test_unacknowledged_completions_are_never_trimmed(api, model, quiet_dispatch):
    await consumer.ensure_group()
    for i in range(5):
        await get_redis().xadd(keys.COMPLETIONS, {"data": f"entry {i}"})
    await get_redis().xreadgroup(
        keys.COMPLETIONS_GROUP, "crashed", {keys.COMPLETIONS: ">"}, count=2
    )  # two delivered, never acknowledged; three never read
    for i in range(200):
        await get_redis().xadd(keys.COMPLETIONS, {"data": f"late {i}"})
    await get_redis().xreadgroup(
        keys.COMPLETIONS_GROUP, "other", {keys.COMPLETIONS: ">"}, count=1000
    )
    from chat_core.completions.sweeper import trim_acknowledged

    await trim_acknowledged()
    pending = await get_redis().xpending_range(
        keys.COMPLETIONS, keys.COMPLETIONS_GROUP, min="-", max="+", count=1000
    )
    remaining = {entry_id for entry_id, _ in await get_redis().xrange(keys.COMPLETIONS)}
    assert {p["message_id"] for p in pending} <= remaining


async def test_a_worker_killed_mid_turn_leaves_a_task_the_sweeper_fails(api, model):
    session = (await api.post("/api/chat/sessions")).json()["id"]
    set_dispatcher(Recorder())  # the job is handed over; the worker that takes it dies
    stored = await get_session_store().get(session, None)
    task = await tasks.start_turn(stored.session_id, "hi", None)
    assert (await tasks.claim(task.task_id, "worker-that-died"))[0] == "ok"
    await background.drain()  # the claim's index entry, written beside the work
    await registry.publish_chunks(
        task.task_id, [StartStep(), TextStart(id="t"), TextDelta(id="t", delta="Hel")]
    )
    # ... and its lease runs out.
    await get_redis().hset(keys.task_meta(task.task_id), "lease_until", "1")
    await get_redis().zadd(keys.RUNNING_TASKS, {task.task_id: 1})

    report = await sweep()
    assert report.failed_tasks == 1
    chunks = await operation_stream(api, task.task_id)
    assert [c["type"] for c in chunks][-2:] == ["error", "finish"]
    assert "stopped unexpectedly" in chunks[-2]["errorText"]
    assert (await api.get(f"/api/chat/tasks/{task.task_id}")).json()["status"] == "failed"
    # The session is free for the next message.
    assert (await api.get(f"/api/chat/sessions/{session}")).json()["active_stream"] is None


async def test_idle_consumers_with_nothing_pending_are_deleted(
    api, model, settings_env, quiet_dispatch
):
    await consumer.ensure_group()
    await get_redis().xadd(keys.COMPLETIONS, {"data": "x"})
    await get_redis().xreadgroup(
        keys.COMPLETIONS_GROUP, "holds-one", {keys.COMPLETIONS: ">"}, count=1
    )
    await get_redis().xgroup_createconsumer(keys.COMPLETIONS, keys.COMPLETIONS_GROUP, "idle-empty")
    settings_env(consumer_idle_delete_ms=0, completions_claim_idle_ms=3_600_000)
    report = await sweep(consumer="the-sweeper")
    names = {
        c["name"]
        for c in await get_redis().xinfo_consumers(keys.COMPLETIONS, keys.COMPLETIONS_GROUP)
    }
    assert "idle-empty" not in names and "holds-one" in names
    assert report.deleted_consumers == 1
