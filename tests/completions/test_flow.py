"""A delegated operation from the user's message to its webhook and continuation, through
the HTTP API of the dev app, and every way the completion path can go wrong."""

from __future__ import annotations

import asyncio
import json

import pytest
from chat_core import keys, registry, tasks
from chat_core.completions import consumer
from chat_core.completions.consumer import claim_stale
from chat_core.completions.sweeper import sweep
from chat_core.protocol.chunks import StartStep, TextDelta, TextStart
from chat_core.redis_client import get_redis
from chat_core.sessions import get_session_store
from chat_core.worker.dispatch import (
    DispatchError,
    InProcessDispatcher,
    get_dispatcher,
    set_dispatcher,
)
from chat_core.worker.jobs import ContinueOperation
from chat_dev.scripted_model import ToolCall

from tests.chat.test_worker import Recorder
from tests.chunk_rules import assert_valid_turn, text_of
from tests.conftest import sse_chunks
from tests.fakes import signed_headers

pytestmark = [pytest.mark.both, pytest.mark.redis7, pytest.mark.valkey]


async def start_agent_creation(api, model) -> dict:
    """A turn whose model calls create_agent; returns what data-operation-started names."""
    session = (await api.post("/api/chat/sessions")).json()["id"]
    model.reply_tool_calls(
        ToolCall("create_agent", {"description": "Chase my unpaid invoices"}), stream=True
    )
    response = await api.post(
        f"/api/chat/sessions/{session}/stream", json={"message": "Build me an invoice agent"}
    )
    chunks = sse_chunks(response.text)
    assert_valid_turn(chunks)
    started = operation_started(chunks)
    assert started["tool_name"] == "create_agent"
    assert not [c for c in chunks if c["type"] == "tool-output-available"]  # the tool is pending
    return {**started, "session_id": session}


def operation_started(chunks: list[dict]) -> dict:
    """The operation a turn's stream says it started (its `data-operation-started`)."""
    data = next(c for c in chunks if c["type"] == "data-operation-started")["data"]
    return {
        "operation_id": data["operationId"],
        "task_id": data["taskId"],
        "tool_name": data["toolName"],
        "tool_call_id": data["toolCallId"],
    }


async def webhook(api, operation_id: str, payload: dict, webhook_id: str | None = None):
    body = json.dumps({"operation_id": operation_id, **payload}).encode()
    return await api.post(
        f"/api/chat/operations/{operation_id}/complete",
        content=body,
        headers=signed_headers(body, webhook_id=webhook_id),
    )


async def operation_stream(api, task_id: str) -> list[dict]:
    response = await api.get(f"/api/chat/tasks/{task_id}/stream")
    return sse_chunks(response.text)


async def test_a_delegated_turn_finishes_only_after_the_signed_webhook(api, model, agent_generator):
    op = await start_agent_creation(api, model)
    status = (await api.get(f"/api/chat/tasks/{op['task_id']}")).json()
    assert status["status"] == "running" and status["tool_name"] == "create_agent"

    model.reply_text("Your invoice agent is ready to use.", stream=True)
    agent = {"type": "agent_saved", "agent_id": "agent-42", "agent_name": "Invoice Chaser"}
    assert (
        await webhook(api, op["operation_id"], {"success": True, "result": agent})
    ).status_code == 202

    chunks = await operation_stream(api, op["task_id"])  # ends when the continuation finished
    assert_valid_turn(chunks)
    assert next(c for c in chunks if c["type"] == "tool-output-available")["output"] == agent
    assert text_of(chunks) == "Your invoice agent is ready to use."
    assert (await api.get(f"/api/chat/tasks/{op['task_id']}")).json()["status"] == "completed"

    session = (await api.get(f"/api/chat/sessions/{op['session_id']}")).json()
    tool_message = next(m for m in session["messages"] if m["role"] == "tool")
    assert json.loads(tool_message["content"]) == agent  # no longer pending
    assert session["messages"][-1]["content"] == "Your invoice agent is ready to use."
    assert session["active_stream"] is None
    guard = keys.running_operation(op["session_id"], tool_message["tool_call_id"])
    assert await get_redis().exists(guard) == 0


async def test_a_failed_operation_ends_with_a_tool_error_and_an_explanation(
    api, model, agent_generator
):
    op = await start_agent_creation(api, model)
    response = await webhook(
        api, op["operation_id"], {"success": False, "error": "The blueprint was invalid."}
    )
    assert response.status_code == 202
    chunks = await operation_stream(api, op["task_id"])
    assert_valid_turn(chunks)
    error = next(c for c in chunks if c["type"] == "tool-output-error")
    assert error["errorText"] == "The blueprint was invalid."
    assert text_of(chunks).strip()  # the model explains the failure
    assert (await api.get(f"/api/chat/tasks/{op['task_id']}")).json()["status"] == "completed"
    session = (await api.get(f"/api/chat/sessions/{op['session_id']}")).json()
    tool_message = next(m for m in session["messages"] if m["role"] == "tool")
    assert json.loads(tool_message["content"]) == {"error": "The blueprint was invalid."}


async def test_duplicate_and_repeated_webhooks_give_exactly_one_continuation(
    api, model, agent_generator
):
    op = await start_agent_creation(api, model)
    model.reply_text("Done, exactly once.", stream=True)
    payload = {"success": True, "result": {"agent_id": "a1"}}
    answers = await asyncio.gather(
        *[webhook(api, op["operation_id"], payload, webhook_id="msg_same") for _ in range(10)],
        *[webhook(api, op["operation_id"], payload) for _ in range(3)],
    )
    assert all(200 <= a.status_code < 300 for a in answers)
    chunks = await operation_stream(api, op["task_id"])
    await asyncio.sleep(0.3)  # let any duplicate processing finish, if there were one
    chunks = await operation_stream(api, op["task_id"])
    assert [c["type"] for c in chunks].count("tool-output-available") == 1
    assert text_of(chunks) == "Done, exactly once."
    assert (
        len([r for r in model.chat_requests if r.body.get("stream")]) == 2
    )  # turn + one continuation


# --- crashes, poison, stuck tasks ---------------------------------------------------------------
@pytest.fixture
def quiet_dispatch(monkeypatch):
    """Webhooks queue but nothing wakes a worker: the test plays the workers."""

    async def no_wake() -> None:
        return None

    monkeypatch.setattr("chat_core.completions.inbox.wake_worker", no_wake)


class Failing:
    """A dispatcher that cannot hand anything over (Lambda throttled, say)."""

    async def dispatch(self, job) -> None:
        raise DispatchError("the worker function cannot be invoked")


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

    set_dispatcher(working)
    settings_env(completions_claim_idle_ms=0)
    model.reply_text("Finished after the crash.", stream=True)
    report = await sweep()
    assert report.claimed == 1 and report.dead_lettered == 0
    chunks = await operation_stream(api, op["task_id"])
    assert [c["type"] for c in chunks].count("tool-output-available") == 1
    assert text_of(chunks) == "Finished after the crash."
    assert (await get_redis().xpending(keys.COMPLETIONS, keys.COMPLETIONS_GROUP))["pending"] == 0
    assert (await sweep()).claimed == 0  # nothing left to redo


async def test_a_completion_that_always_fails_is_dead_lettered_and_never_loops(
    api, model, agent_generator, quiet_dispatch, settings_env
):
    settings_env(completions_claim_idle_ms=0, completions_max_deliveries=3)
    op = await start_agent_creation(api, model)
    await webhook(api, op["operation_id"], {"success": True})

    set_dispatcher(Failing())
    await consumer.drain("w1")  # delivery 1
    reports = [await sweep() for _ in range(5)]  # deliveries 2, 3, then dead-lettered
    assert [r.dead_lettered for r in reports] == [0, 0, 1, 0, 0]
    [(_, dead)] = await get_redis().xrange(keys.DEAD_LETTERS)
    assert dead["deliveries"] == "4" and "cannot be invoked" in dead["reason"]
    assert json.loads(dead["data"])["operation_id"] == op["operation_id"]
    assert (await get_redis().xpending(keys.COMPLETIONS, keys.COMPLETIONS_GROUP))["pending"] == 0


async def test_a_continuation_longer_than_the_claim_idle_time_is_not_run_again(
    api, model, agent_generator, quiet_dispatch, settings_env
):
    op = await start_agent_creation(api, model)
    settings_env(completions_claim_idle_ms=0)  # every unacknowledged entry is "stale" at once
    model.slow_stream(50, text=" ".join(f"w{i}" for i in range(30)))
    await webhook(api, op["operation_id"], {"success": True, "result": {"agent_id": "a8"}})
    assert await consumer.drain("w1") == 1
    # The continuation is still being written, and the entry is already acknowledged.
    assert (await get_redis().xpending(keys.COMPLETIONS, keys.COMPLETIONS_GROUP))["pending"] == 0
    assert (await sweep()).claimed == 0
    chunks = await operation_stream(api, op["task_id"])
    assert_valid_turn(chunks)
    assert text_of(chunks).endswith("w29")
    assert len([r for r in model.chat_requests if r.body.get("stream")]) == 2  # turn + one


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
    assert recorder.jobs == [ContinueOperation(task_id=op["task_id"])]
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
    task = await tasks.start_turn(stored, "hi", None)
    assert (await tasks.claim(task.task_id, "worker-that-died"))[0] == "ok"
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


async def test_xautoclaim_follows_its_cursor_through_many_stale_entries(
    api, model, settings_env, quiet_dispatch
):
    settings_env(completions_claim_idle_ms=0, completions_batch_size=2)
    await consumer.ensure_group()
    for _i in range(7):
        await get_redis().xadd(keys.COMPLETIONS, {"data": "not json"})
    reply = await get_redis().xreadgroup(
        keys.COMPLETIONS_GROUP, "crashed", {keys.COMPLETIONS: ">"}, count=10
    )
    assert len(reply[0][1]) == 7  # delivered to a consumer that died before acknowledging
    claimed, dead = await claim_stale("sweeper")
    assert (claimed, dead) == (7, 0)
    assert (await get_redis().xpending(keys.COMPLETIONS, keys.COMPLETIONS_GROUP))["pending"] == 0


async def test_unreadable_entries_and_unknown_tasks_are_acknowledged(api, model, quiet_dispatch):
    await consumer.ensure_group()
    await get_redis().xadd(keys.COMPLETIONS, {"data": "{broken"})
    await get_redis().xadd(keys.COMPLETIONS, {"nodata": "x"})
    ghost = {"operation_id": "op-x", "task_id": "task-x", "success": True}
    await get_redis().xadd(keys.COMPLETIONS, {"data": json.dumps(ghost)})
    outcomes = []
    reply = await get_redis().xreadgroup(
        keys.COMPLETIONS_GROUP, "w", {keys.COMPLETIONS: ">"}, count=10
    )
    for entry_id, fields in reply[0][1]:
        outcomes.append(await consumer.process_entry(entry_id, fields))
    assert outcomes == ["unreadable", "unreadable", "unknown-task"]
    assert (await get_redis().xpending(keys.COMPLETIONS, keys.COMPLETIONS_GROUP))["pending"] == 0


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
