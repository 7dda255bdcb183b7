"""chat_core.completions.consumer: a result is applied to its task once, its continuation
dispatched, and only then is the entry acknowledged; unreadable and unknown entries are
acknowledged, failing ones redelivered and then dead-lettered. The long-lived consumer never
gives up: it survives Redis going away and coming back."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from chat_core import keys, registry, tasks
from chat_core.completions import consumer
from chat_core.completions.consumer import ConsumerService, claim_stale
from chat_core.completions.message import CompletionMessage
from chat_core.completions.sweeper import sweep
from chat_core.redis_client import get_redis, reset_clients
from chat_core.sessions import get_session_store
from chat_core.sessions.models import ChatMessage
from chat_core.users import get_user_store
from chat_core.worker.dispatch import set_dispatcher
from chat_core.worker.jobs import ContinueOperation, SessionRef
from chat_dev.embedded_redis import EmbeddedRedis

from tests.api.helpers import SECRET, bearer
from tests.chunk_rules import assert_valid_turn, text_of
from tests.completions.flow import operation_stream, start_agent_creation, webhook
from tests.conftest import sse_chunks
from tests.fakes import Failing


def on_every_topology(test):
    return pytest.mark.both(pytest.mark.redis7(pytest.mark.valkey(test)))


@on_every_topology
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


@on_every_topology
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


@on_every_topology
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


@on_every_topology
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


@on_every_topology
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


@on_every_topology
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


@on_every_topology
async def test_a_consumer_whose_group_the_server_lost_makes_it_again_and_loses_nothing(
    api, model, quiet_dispatch, redis_target
):
    await consumer.ensure_group()
    redis_target.flush()  # a server restarted without its data: no stream, no group
    await get_redis().xadd(keys.COMPLETIONS, {"data": json.dumps({"operation_id": "op-x"})})
    assert await consumer.drain("w1") == 1  # the group made again, from the stream's start
    assert (await get_redis().xpending(keys.COMPLETIONS, keys.COMPLETIONS_GROUP))["pending"] == 0


# --- what a result becomes before anyone sees it ---------------------------------------------
# A built agent is saved to the user's library (`agent_saved`, with the link to open it), and
# sensitive keys are redacted from the stream, the session and the model: through the HTTP
# API with the scripted model over real HTTP, on Redis and DynamoDB.
SECRETS = ("sk-live-123", "hunter2", "Bearer eyJ.secret")
BUILT = {
    "type": "agent_generated",
    "agent_json": {
        "name": "Invoice Chaser",
        "description": "Chases unpaid invoices every Monday.",
        "nodes": [
            {"block": "email", "input": {"to": "{{customer}}", "smtp_password": "hunter2"}},
            {"block": "llm", "input": {"model": "gpt", "credentials": {"api_key": "sk-live-123"}}},
        ],
    },
}


@pytest.fixture
def alice(settings_env) -> dict[str, str]:
    settings_env(jwt_secret=SECRET)
    return bearer("alice")


async def finish(api, model, op: dict, result: dict, headers: dict[str, str]) -> list[dict]:
    model.reply_text("Here is what came back.", stream=True)
    answer = await webhook(api, op["operation_id"], {"success": True, "result": result})
    assert answer.status_code == 202
    response = await api.get(f"/api/chat/tasks/{op['task_id']}/stream", headers=headers)
    chunks = sse_chunks(response.text)
    assert_valid_turn(chunks)
    return chunks


def last_turn_call(model):
    """The model's continuation (a title call may be made beside a turn)."""
    return [r for r in model.chat_requests if r.streaming][-1]


def output_of(chunks: list[dict]) -> dict:
    return next(c for c in chunks if c["type"] == "tool-output-available")["output"]


async def stored_tool_result(api, op: dict, headers: dict[str, str]) -> str:
    session = (await api.get(f"/api/chat/sessions/{op['session_id']}", headers=headers)).json()
    return next(m for m in session["messages"] if m["role"] == "tool")["content"]


async def test_a_built_agent_is_saved_to_the_library_and_the_result_says_where(
    store_backend, api, model, agent_generator, alice
):
    op = await start_agent_creation(api, model, alice)
    saved = output_of(await finish(api, model, op, BUILT, alice))
    assert saved["type"] == "agent_saved" and saved["agent_name"] == "Invoice Chaser"
    assert saved["library_agent_link"] == f"/api/chat/users/me/agents/{saved['agent_id']}"
    # The reader, the session and the model all get the same agent_saved.
    assert json.loads(await stored_tool_result(api, op, alice)) == saved
    continuation = last_turn_call(model)
    assert json.loads(continuation.messages[-1]["content"]) == saved

    # The link opens the saved agent, its secrets redacted; only its owner sees it.
    agent = (await api.get(saved["library_agent_link"], headers=alice)).json()
    assert agent["name"] == "Invoice Chaser" and len(agent["graph"]["nodes"]) == 2
    assert agent["graph"]["nodes"][0]["input"]["smtp_password"] == "[REDACTED]"
    assert agent["graph"]["nodes"][1]["input"]["credentials"] == "[REDACTED]"
    listing = (await api.get("/api/chat/users/me/agents", headers=alice)).json()["agents"]
    assert [a["agent_id"] for a in listing] == [saved["agent_id"]]
    other = await api.get(saved["library_agent_link"], headers=bearer("bob"))
    assert other.status_code == 404 and other.json()["detail"]["code"] == "AGENT_NOT_FOUND"


async def test_a_result_delivered_twice_saves_the_agent_once(store_backend, dispatched):
    """A redelivery after a crash runs the post-processing again: same library entry."""
    session = await get_session_store().create("alice")
    operation = await tasks.create_operation(
        session_id=session.session_id,
        user_id="alice",
        tool_call_id="c1",
        tool_name="create_agent",
        tool_input={"description": "Chase my unpaid invoices"},
    )
    await tasks.await_operation(operation)
    message = CompletionMessage.now(operation.operation_id, operation.task_id, True, BUILT, None)
    fields = {"data": message.model_dump_json()}
    first = await consumer.process_entry("1-1", fields)
    again = await consumer.process_entry("1-1", fields)
    assert (first, again) == ("applied", "duplicate")
    [saved] = await get_user_store().list_agents("alice")
    assert saved.name == "Invoice Chaser"
    session = SessionRef(session_id=operation.session_id, user_id="alice")
    assert dispatched.jobs == [ContinueOperation(task_id=operation.task_id, session=session)] * 2


async def test_an_anonymous_users_agent_comes_back_built_but_unsaved(
    store_backend, api, model, agent_generator
):
    op = await start_agent_creation(api, model, {})
    output = output_of(await finish(api, model, op, BUILT, {}))
    assert output["type"] == "agent_generated" and "Sign in" in output["message"]
    assert output["agent_json"]["nodes"][1]["input"]["credentials"] == "[REDACTED]"


LEAKY = {
    "report": "done",
    "api_key": "sk-live-123",
    "steps": [{"name": "login", "password": "hunter2"}],
    "headers": {"Authorization": "Bearer eyJ.secret"},
}


@pytest.mark.parametrize("where", ["stream", "session", "model"])
async def test_sensitive_keys_are_redacted_before_they_reach(
    store_backend, api, model, agent_generator, alice, where
):
    op = await start_agent_creation(api, model, alice)
    chunks = await finish(api, model, op, LEAKY, alice)
    seen = {
        "stream": json.dumps(chunks),
        "session": await stored_tool_result(api, op, alice),
        "model": json.dumps(last_turn_call(model).body),
    }[where]
    assert not [s for s in SECRETS if s in seen]
    assert "[REDACTED]" in seen and "login" in seen and "done" in seen


async def test_the_redacted_keys_are_a_setting(api, model, agent_generator, settings_env):
    settings_env(redact_keys="customer_email")
    op = await start_agent_creation(api, model, {})
    output = output_of(await finish(api, model, op, {"customer_email": "a@b.c", "ok": "yes"}, {}))
    assert output == {"customer_email": "[REDACTED]", "ok": "yes"}


# --- the long-lived consumer -------------------------------------------------------------------
@pytest.mark.slow
async def test_the_consumer_survives_a_redis_restart_and_goes_back_to_work(
    model, settings_env, tmp_path, caplog
):
    server = EmbeddedRedis(data_dir=tmp_path / "redis", persist=True).start()
    service = ConsumerService(block_ms=200, max_backoff=0.5)
    try:
        settings_env(redis_url=server.url, redis_connect_timeout=0.3, redis_socket_timeout=1)
        reset_clients()
        session = await get_session_store().create(None)
        call = {
            "id": "c1",
            "type": "function",
            "function": {"name": "create_agent", "arguments": "{}"},
        }
        await get_session_store().append_messages(
            session.session_id,
            [
                ChatMessage(role="user", content="make me an agent"),
                ChatMessage(role="assistant", tool_calls=[call]),
                ChatMessage(
                    role="tool", tool_call_id="c1", content='{"type": "operation_pending"}'
                ),
            ],
        )
        task = await tasks.create_operation(
            session_id=session.session_id,
            user_id=None,
            tool_call_id="c1",
            tool_name="create_agent",
            tool_input={},
        )
        await tasks.await_operation(task)

        service.start()
        await asyncio.wait_for(service.healthy.wait(), 10)

        with caplog.at_level(logging.WARNING):
            server.stop_process()  # Redis goes away (its data stays on disk)
            await asyncio.sleep(2.0)
            assert not service.healthy.is_set()
            assert "cannot reach Redis; retrying" in caplog.text

        server.start()  # ... and comes back on the same port with the same data
        await asyncio.wait_for(service.healthy.wait(), 15)
        model.reply_text("Back in business.", stream=True)
        # Queued without waking a worker: the service is what finds it.
        message = CompletionMessage.now(task.operation_id, task.task_id, True, {"ok": True}, None)
        await get_redis().xadd(keys.COMPLETIONS, {"data": message.model_dump_json()})
        for _ in range(300):  # the continuation runs as a job of its own
            if (await registry.get_task(task.task_id)).status != "running":
                break
            await asyncio.sleep(0.1)
        assert (await registry.get_task(task.task_id)).status == "completed"
        stored = await get_session_store().get(session.session_id, None)
        assert (
            stored.messages[2].content == '{"ok": true}'
            and stored.messages[-1].content == "Back in business."
        )
    finally:
        await service.stop()
        server.stop()
