"""What a delegated operation's result becomes before anyone sees it: a built agent saved to
the user's library (`agent_saved`, with the link to open it), and sensitive keys redacted
from the stream, the session and the model. Through the HTTP API with the scripted model
over real HTTP, on Redis and DynamoDB."""

from __future__ import annotations

import json

import pytest
from chat_core.tools import ToolContext, ToolOutcome, default_tools
from chat_core.users import get_user_store
from chat_dev.scripted_model import ToolCall

from tests.api.helpers import SECRET, bearer
from tests.chunk_rules import assert_valid_turn
from tests.completions.test_flow import operation_started, webhook
from tests.conftest import sse_chunks

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


async def start_agent_creation(api, model, headers: dict[str, str]) -> dict:
    session = (await api.post("/api/chat/sessions", headers=headers)).json()["id"]
    model.reply_tool_calls(
        ToolCall("create_agent", {"description": "Chase my unpaid invoices"}), stream=True
    )
    response = await api.post(
        f"/api/chat/sessions/{session}/stream",
        json={"message": "Build me an invoice agent"},
        headers=headers,
    )
    started = operation_started(sse_chunks(response.text))
    return {**started, "session_id": session}


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


async def test_a_result_applied_twice_saves_the_agent_once(store_backend):
    """A redelivery after a crash runs the post-processing again: same library entry."""
    ctx = ToolContext(
        session_id="s1", user_id="alice", task_id="t1", tool_call_id="c1", operation_id="op-1"
    )
    outcome = ToolOutcome(ok=True, output=BUILT)
    first, second = [await default_tools().finish("create_agent", ctx, outcome) for _ in "12"]
    assert first == second and first.output["type"] == "agent_saved"
    assert len(await get_user_store().list_agents("alice")) == 1


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
