"""chat_core.completions.inbox: webhook completions are queued durably, exactly once per
(operation, webhook id), and processed by the request that brought them; a repeat gets the
first answer back."""

from __future__ import annotations

import asyncio
import json

import pytest
from chat_core import keys, tasks
from chat_core.completions.consumer import claim_stale, drain
from chat_core.completions.inbox import UnknownOperation, accept_webhook
from chat_core.redis_client import get_redis
from chat_core.sessions import get_session_store
from chat_core.worker.dispatch import set_dispatcher
from chat_core.worker.jobs import ContinueOperation, DrainCompletions, SessionRef

from tests.chunk_rules import text_of
from tests.completions.flow import (
    operation_stream,
    start_agent_creation,
    webhook,
)
from tests.fakes import Failing, Recorder

pytestmark = [pytest.mark.both, pytest.mark.redis7, pytest.mark.valkey]


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


async def awaiting_operation(session_user: str = "u1"):
    session = await get_session_store().create(session_user)
    operation = await tasks.create_operation(
        session_id=session.session_id,
        user_id=session_user,
        tool_call_id="c1",
        tool_name="create_agent",
        tool_input={"description": "Chase my unpaid invoices"},
    )
    assert await tasks.await_operation(operation)
    return operation


async def queued() -> list[dict]:
    return [json.loads(fields["data"]) for _, fields in await get_redis().xrange(keys.COMPLETIONS)]


async def pending() -> int:
    return (await get_redis().xpending(keys.COMPLETIONS, keys.COMPLETIONS_GROUP))["pending"]


async def stream_types(task_id: str) -> list[str]:
    entries = await get_redis().xrange(keys.task_stream(task_id))
    return [json.loads(fields["data"])["type"] for _, fields in entries]


async def test_a_delivery_is_queued_once_and_processed_in_the_request(dispatched):
    operation = await awaiting_operation()
    assert await get_redis().exists(keys.COMPLETIONS) == 0  # no group yet: the script makes it
    first = await accept_webhook(operation.operation_id, "msg_1", success=True, result={"a": 1})
    again = await accept_webhook(operation.operation_id, "msg_1", success=True, result={"a": 1})
    assert (first.status, first.queued) == (202, True)
    assert (again.status, again.queued, again.body) == (202, False, first.body)
    assert first.body == {
        "status": "accepted",
        "operation_id": operation.operation_id,
        "task_id": operation.task_id,
    }
    [entry] = await queued()
    assert entry["task_id"] == operation.task_id and entry["result"] == {"a": 1}
    assert entry["webhook_id"] == "msg_1"
    # Before the answer: the result is in the task stream, the continuation is on its way
    # to a worker, and the entry is acknowledged. No worker was woken to read the stream.
    assert "tool-output-available" in await stream_types(operation.task_id)
    assert dispatched.jobs == [
        ContinueOperation(
            task_id=operation.task_id,
            session=SessionRef(session_id=operation.session_id, user_id="u1"),
        )
    ]
    assert await pending() == 0


async def test_without_inline_processing_a_delivery_wakes_a_worker(dispatched, settings_env):
    settings_env(webhook_process_inline=False)
    operation = await awaiting_operation()
    answer = await accept_webhook(operation.operation_id, "msg_1", success=True)
    assert (answer.status, answer.queued) == (202, True)
    assert dispatched.jobs == [DrainCompletions()]
    assert "tool-output-available" not in await stream_types(operation.task_id)
    assert await drain(consumer="worker-1") == 1
    assert "tool-output-available" in await stream_types(operation.task_id)


async def test_older_waiting_entries_come_first_and_a_worker_takes_the_rest(
    dispatched, settings_env
):
    settings_env(completions_batch_size=1)
    waiting, operation = await awaiting_operation(), await awaiting_operation()
    settings_env(webhook_process_inline=False)
    await accept_webhook(waiting.operation_id, "msg_w", success=True)
    settings_env(webhook_process_inline=True)
    dispatched.jobs.clear()

    await accept_webhook(operation.operation_id, "msg_1", success=True)
    # The request took the one entry its batch allows, the older one, and processed it; its
    # own result went in beside its queueing, and a worker is woken for its entry.
    assert "tool-output-available" in await stream_types(waiting.task_id)
    assert [type(job) for job in dispatched.jobs] == [ContinueOperation, DrainCompletions]
    assert dispatched.jobs[0].task_id == waiting.task_id
    assert (await stream_types(operation.task_id)).count("tool-output-available") == 1
    assert await drain(consumer="worker-1") == 1
    # The worker finds the result applied and hands its continuation over; nothing twice.
    assert dispatched.jobs[-1].task_id == operation.task_id
    assert (await stream_types(operation.task_id)).count("tool-output-available") == 1
    assert await pending() == 0


async def test_a_webhook_for_an_unknown_operation_is_refused(dispatched):
    with pytest.raises(UnknownOperation):
        await accept_webhook("op-nobody-started", "msg_1", success=True)
    assert await get_redis().exists(keys.COMPLETIONS) == 0 and dispatched.jobs == []


async def test_late_news_for_a_finished_task_is_acknowledged_and_queues_nothing(dispatched):
    operation = await awaiting_operation()
    assert await tasks.cancel(operation) == "cancelled"
    answer = await accept_webhook(operation.operation_id, "msg_late", success=True)
    assert (answer.status, answer.body["status"], answer.queued) == (200, "already_finished", False)
    assert await accept_webhook(operation.operation_id, "msg_late", success=True) == answer
    assert await queued() == [] and dispatched.jobs == []


async def test_processing_that_fails_leaves_the_completion_pending_for_the_sweeper(
    model, settings_env
):
    set_dispatcher(Failing())  # the continuation cannot be handed to a worker
    operation = await awaiting_operation()
    answer = await accept_webhook(operation.operation_id, "msg_1", success=False, error="no")
    assert (answer.status, answer.queued) == (202, True)  # the sender is told it arrived
    [entry] = await queued()
    assert entry["success"] is False and entry["error"] == "no"
    assert await pending() == 1

    recorder = Recorder()
    set_dispatcher(recorder)
    settings_env(completions_claim_idle_ms=0)
    assert await claim_stale("sweeper-1") == (1, 0)
    assert [job.task_id for job in recorder.jobs] == [operation.task_id]
    assert await pending() == 0


async def test_a_result_that_cannot_be_applied_stays_queued_and_is_applied_later(
    dispatched, settings_env, monkeypatch
):
    operation = await awaiting_operation()
    real_apply = tasks.apply_result

    async def store_down(*args, **kwargs):
        raise ConnectionError("the session store is unreachable")

    monkeypatch.setattr(tasks, "apply_result", store_down)
    answer = await accept_webhook(operation.operation_id, "msg_1", success=True)
    assert (answer.status, answer.queued) == (202, True)  # durably queued all the same
    assert "tool-output-available" not in await stream_types(operation.task_id)
    assert await pending() == 1 and dispatched.jobs == []
    reason = await get_redis().hvals(keys.COMPLETION_FAILURES)
    assert ["unreachable" in r for r in reason] == [True]

    monkeypatch.setattr(tasks, "apply_result", real_apply)
    settings_env(completions_claim_idle_ms=0)
    assert await claim_stale("sweeper-1") == (1, 0)
    assert (await stream_types(operation.task_id)).count("tool-output-available") == 1
    assert [job.task_id for job in dispatched.jobs] == [operation.task_id]
    assert await pending() == 0 and await get_redis().hlen(keys.COMPLETION_FAILURES) == 0
