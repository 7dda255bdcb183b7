"""chat_core.chat.operations: long-running tools get their own operation and task, a pending
message, and the turn moves on."""

from __future__ import annotations

import asyncio
import json

import pytest
from chat_core import keys, registry, tasks, tools
from chat_core.chat import operations
from chat_core.redis_client import get_redis
from chat_core.sessions import get_session_store
from chat_core.tools import Tool, ToolContext
from chat_core.worker.jobs import RunTool
from chat_core.worker.runner import run_job
from chat_dev.scripted_model import ToolCall
from pydantic import BaseModel

from tests.chunk_rules import assert_valid_turn, stored_chunks, text_of
from tests.completions.flow import operation_started

pytestmark = pytest.mark.both


async def run_create_agent_turn(dispatched, model, call_id: str = "call_create_1", session=None):
    model.reply_tool_calls(
        ToolCall(
            "create_agent", {"description": "An agent that chases unpaid invoices"}, id=call_id
        ),
        stream=True,
    )
    session = session or await get_session_store().create("u1")
    turn = await tasks.start_turn(
        session.session_id, "Create an agent that chases unpaid invoices", "u1"
    )
    assert await run_job(dispatched.jobs[-1]) == "completed"
    return session, turn


async def test_a_delegated_operation_starts_and_the_turn_answers_at_once(
    dispatched, model, agent_generator
):
    session, turn = await run_create_agent_turn(dispatched, model)
    chunks = await stored_chunks(turn.task_id)
    assert_valid_turn(chunks)
    started = operation_started(chunks)
    assert started["tool_name"] == "create_agent" and started["tool_call_id"] == "call_create_1"

    # The external service was asked, with where to call back.
    [request] = agent_generator.requests
    assert (
        request["operation_id"] == started["operation_id"]
        and request["task_id"] == started["task_id"]
    )
    assert request["callback_url"].endswith(
        f"/api/chat/operations/{started['operation_id']}/complete"
    )

    # The operation has its own task, whose stream alone is a whole message so far.
    operation = await registry.get_task(started["task_id"])
    assert (operation.status, operation.phase, operation.tool_name) == (
        "running",
        "awaiting",
        "create_agent",
    )
    prefix = await stored_chunks(operation.task_id)
    assert [c["type"] for c in prefix] == [
        "start", "start-step", "tool-input-start", "tool-input-available",
    ]  # fmt: skip
    assert prefix[-1]["input"] == {
        "description": "An agent that chases unpaid invoices"
    }  # no nulls
    # The session now follows the operation, and remembers it as pending.
    active, _ = await tasks.active_task(session.session_id, "u1")
    assert active.task_id == operation.task_id
    stored = await get_session_store().get(session.session_id, "u1")
    said = [m for m in stored.messages if not m.is_view]
    pending = json.loads(said[-1].content)
    assert said[-1].role == "tool" and pending["type"] == "operation_pending"
    assert (
        await get_redis().exists(keys.running_operation(session.session_id, "call_create_1")) == 1
    )


async def test_a_refusing_service_is_a_tool_error_the_model_explains_and_nothing_keeps_running(
    dispatched, model, agent_generator
):
    agent_generator.status = 500
    session, turn = await run_create_agent_turn(dispatched, model)
    chunks = await stored_chunks(turn.task_id)
    assert_valid_turn(chunks)
    error = next(c for c in chunks if c["type"] == "tool-output-error")
    assert "refused the request (HTTP 500)" in error["errorText"]
    assert text_of(chunks).strip()  # the model's explanation follows
    # The operation's task ended failed; no guard, no running task left behind.
    operation_id = agent_generator.requests[0]["task_id"]
    operation = await registry.get_task(operation_id)
    assert operation.status == "failed"
    assert [c["type"] for c in await stored_chunks(operation_id)][-3:] == [
        "finish-step",
        "error",
        "finish",
    ]
    assert (
        await get_redis().exists(keys.running_operation(session.session_id, "call_create_1")) == 0
    )
    assert await tasks.active_task(session.session_id, "u1") == (None, "0-0")
    assert await tasks.expired_task_ids() == []
    stored = await get_session_store().get(session.session_id, "u1")
    tool_message = next(m for m in stored.messages if m.role == "tool")
    assert "HTTP 500" in json.loads(tool_message.content)["error"]


async def test_without_a_configured_service_the_user_is_told(dispatched, model):
    session, turn = await run_create_agent_turn(dispatched, model)
    error = next(c for c in await stored_chunks(turn.task_id) if c["type"] == "tool-output-error")
    assert "no agent generator is configured" in error["errorText"]


async def test_the_same_tool_call_cannot_start_twice_in_a_session(
    dispatched, model, agent_generator
):
    session, _ = await run_create_agent_turn(dispatched, model, call_id="call_same")
    _, turn = await run_create_agent_turn(dispatched, model, call_id="call_same", session=session)
    output = next(
        c for c in await stored_chunks(turn.task_id) if c["type"] == "tool-output-available"
    )
    assert output["output"]["type"] == "operation_in_progress"
    assert len(agent_generator.requests) == 1
    # Another user's session with a call of the same id is not blocked by it.
    await run_create_agent_turn(dispatched, model, call_id="call_same")
    assert len(agent_generator.requests) == 2


class SlowReport(Tool):
    """A long-running tool that is not delegated: the worker runs it to the end."""

    name = "slow_report"
    description = "Compile a report slowly."
    long_running = True

    class Args(BaseModel):
        topic: str

    async def run(self, ctx: ToolContext, args: Args) -> dict:
        for _ in range(3):
            await asyncio.sleep(0.25)
        return {"report": f"All about {args.topic}"}


async def start_slow_report(arguments: str, saved: list) -> dict:
    """`operations.start` of a slow report asked for with `arguments`: its chunk, as sent."""

    async def save(message) -> None:
        saved.append(message)

    chunk = await operations.start(
        SlowReport(),
        tools.ToolRegistry([SlowReport()]),
        "call_report",
        arguments,
        session_id="s-report",
        user_id="u1",
        turn_task_id="t-turn",
        save=save,
    )
    return json.loads(chunk.to_json())


async def test_a_started_operation_is_announced_and_its_tool_handed_to_the_worker(dispatched):
    saved: list = []
    chunk = await start_slow_report('{"topic": "otters"}', saved)
    assert chunk["type"] == "data-operation-started" and chunk["id"] == "call_report"
    [job] = dispatched.jobs
    assert job == RunTool(task_id=chunk["data"]["taskId"])
    operation = await registry.get_task(job.task_id)
    assert (operation.status, operation.tool_name) == ("running", "slow_report")
    [pending] = saved
    assert pending.role == "tool" and pending.tool_call_id == "call_report"
    assert json.loads(pending.content)["task_id"] == job.task_id
    assert await tasks.active_task("s-report", "u1") == (
        operation,
        await registry.last_entry_id(job.task_id),
    )


async def test_arguments_the_tool_cannot_take_are_a_tool_error_and_start_nothing(dispatched):
    saved: list = []
    chunk = await start_slow_report('{"subject": "otters"}', saved)
    assert chunk["type"] == "tool-output-error" and chunk["toolCallId"] == "call_report"
    assert "topic" in chunk["errorText"]
    [answer] = saved
    assert json.loads(answer.content) == {"error": chunk["errorText"]}
    assert dispatched.jobs == []
    assert await tasks.active_task("s-report", "u1") == (None, "0-0")
    assert await get_redis().exists(keys.running_operation("s-report", "call_report")) == 0


async def test_a_long_tool_runs_in_the_worker_with_heartbeats_then_the_model_continues(
    dispatched, model, monkeypatch, settings_env
):
    settings_env(heartbeat_seconds=0.2)
    catalog = tools.ToolRegistry([SlowReport()])
    monkeypatch.setattr(tools, "default_tools", lambda **_: catalog)
    model.reply_tool_calls(
        ToolCall("slow_report", {"topic": "otters"}, id="call_slow"), stream=True
    )
    session = await get_session_store().create("u1")
    turn = await tasks.start_turn(session.session_id, "write me a report on otters", "u1")
    await run_job(dispatched.jobs[-1])
    [job] = [j for j in dispatched.jobs if isinstance(j, RunTool)]

    model.reply_text("Here is your otter report.", stream=True)
    assert await run_job(job) == "completed"
    chunks = await stored_chunks(job.task_id)
    assert_valid_turn(chunks)
    types = [c["type"] for c in chunks]
    assert "data-progress" in types  # heartbeats while it ran
    assert next(c for c in chunks if c["type"] == "tool-output-available")["output"] == {
        "report": "All about otters"
    }
    assert text_of(chunks) == "Here is your otter report."
    stored = await get_session_store().get(session.session_id, "u1")
    result = next(m for m in stored.messages if m.role == "tool")
    assert json.loads(result.content) == {"report": "All about otters"}
    assert [m for m in stored.messages if not m.is_view][-1].content == "Here is your otter report."
    assert await get_redis().exists(keys.running_operation(session.session_id, "call_slow")) == 0
    assert (await registry.get_task(turn.task_id)).status == "completed"


async def test_cancelling_an_awaiting_operation_closes_its_tool_call_for_the_reader(
    dispatched, model, agent_generator
):
    session, turn = await run_create_agent_turn(dispatched, model, call_id="call_cancel")
    operation = await registry.get_task(agent_generator.requests[0]["task_id"])
    assert await tasks.cancel(operation) == "cancelled"
    chunks = await stored_chunks(operation.task_id)
    assert_valid_turn(chunks)
    assert chunks[-3:] == [
        {
            "type": "tool-output-error",
            "toolCallId": "call_cancel",
            "errorText": "Cancelled by the user.",
        },
        {"type": "finish-step"},
        {"type": "finish"},
    ]
    stored = await get_session_store().get(session.session_id, "u1")
    tool_message = next(m for m in stored.messages if m.role == "tool")
    assert json.loads(tool_message.content) == {"error": "Cancelled by the user."}
    assert await get_redis().exists(keys.running_operation(session.session_id, "call_cancel")) == 0


async def test_an_operation_that_never_reports_back_is_given_up_with_a_reason(
    dispatched, model, agent_generator
):
    from chat_core.completions.sweeper import sweep

    session, turn = await run_create_agent_turn(dispatched, model, call_id="call_silent")
    operation_id = agent_generator.requests[0]["task_id"]
    await get_redis().hset(keys.task_meta(operation_id), "lease_until", "1")  # its deadline passed
    await get_redis().zadd(keys.RUNNING_TASKS, {operation_id: 1})
    assert (await sweep()).failed_tasks == 1
    chunks = await stored_chunks(operation_id)
    assert_valid_turn(chunks)
    types = [c["type"] for c in chunks]
    assert types[-4:] == ["tool-output-error", "finish-step", "error", "finish"]
    assert "did not report back in time" in chunks[-4]["errorText"]
    stored = await get_session_store().get(session.session_id, "u1")
    tool_message = next(m for m in stored.messages if m.role == "tool")
    assert "did not report back in time" in json.loads(tool_message.content)["error"]
    assert await get_redis().exists(keys.running_operation(session.session_id, "call_silent")) == 0
    assert (await tasks.active_task(session.session_id, "u1"))[0] is None
