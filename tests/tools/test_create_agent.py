"""chat_core.tools.create_agent: the delegated tool asks the external generator (over real
HTTP) to build an agent, and the agent it reports back is saved to the user's library."""

from __future__ import annotations

import pytest
from chat_core.tools import ToolContext, ToolOutcome, ToolRegistry
from chat_core.tools.create_agent import CreateAgent
from chat_core.users import get_user_store

TOOLS = ToolRegistry([CreateAgent()])


def _ok(output) -> ToolOutcome:
    return ToolOutcome(ok=True, output=output)


BUILT = {"agent_json": {"name": "Invoice Chaser", "description": "Chases invoices", "nodes": [1]}}


def context(user_id: str | None = "alice", operation_id: str = "op-1") -> ToolContext:
    return ToolContext(
        session_id="s1", user_id=user_id, task_id="t1", tool_call_id="c1", operation_id=operation_id
    )


async def test_the_generator_is_asked_with_where_to_report_back(agent_generator, settings_env):
    settings_env(public_base_url="https://chat.example/")
    outcome = await TOOLS.execute(
        "create_agent", {"description": "Chase unpaid invoices", "name": "Chaser"}, context()
    )
    assert outcome.ok and outcome.output == {"status": "accepted", "operation_id": "op-1"}
    assert agent_generator.requests == [
        {
            "operation_id": "op-1",
            "task_id": "t1",
            "callback_url": "https://chat.example/api/chat/operations/op-1/complete",
            "description": "Chase unpaid invoices",
            "name": "Chaser",
            "session_id": "s1",
            "user_id": "alice",
        }
    ]


async def test_a_generator_that_refuses_is_a_failure_the_user_reads(agent_generator):
    agent_generator.status = 503
    outcome = await TOOLS.execute("create_agent", {"description": "Chase invoices"}, context())
    assert not outcome.ok
    assert "HTTP 503" in outcome.error and "generator overloaded" in outcome.error


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (None, "not available on this server"),
        ("http://127.0.0.1:1/generate", "could not be reached"),
    ],
    ids=["not configured", "unreachable"],
)
async def test_without_a_generator_to_reach_the_tool_fails_saying_why(settings_env, url, says):
    if url:
        settings_env(agent_generator_url=url)
    outcome = await TOOLS.execute("create_agent", {"description": "Chase invoices"}, context())
    assert not outcome.ok and says in outcome.error


async def test_a_description_too_short_is_refused_before_anything_is_sent(agent_generator):
    outcome = await TOOLS.execute("create_agent", {"description": "x"}, context())
    assert not outcome.ok and "description" in outcome.error
    assert agent_generator.requests == []


async def test_the_built_agent_is_saved_once_to_a_signed_in_users_library(redis_target):
    first = await TOOLS.finish("create_agent", context(), _ok(BUILT))
    again = await TOOLS.finish("create_agent", context(), _ok(BUILT))  # a redelivered result
    assert first == again and first.ok
    saved = first.output
    assert saved["type"] == "agent_saved" and saved["agent_name"] == "Invoice Chaser"
    [agent] = await get_user_store().list_agents("alice")
    assert agent.agent_id == saved["agent_id"] and agent.graph == BUILT["agent_json"]
    assert saved["library_agent_link"] == agent.link
    other = await TOOLS.finish("create_agent", context(operation_id="op-2"), _ok(BUILT))
    assert other.output["agent_id"] != saved["agent_id"]  # another operation, another agent


async def test_an_anonymous_user_gets_the_agent_itself_and_nothing_is_kept(redis_target):
    outcome = await TOOLS.finish("create_agent", context(user_id=None), _ok(BUILT))
    assert outcome.output["type"] == "agent_generated"
    assert outcome.output["agent_json"] == BUILT["agent_json"]


async def test_a_result_without_an_agent_passes_as_the_generator_gave_it(redis_target):
    outcome = await TOOLS.finish("create_agent", context(), _ok({"note": "nothing built"}))
    assert outcome.output == {"note": "nothing built"}
    assert await get_user_store().list_agents("alice") == []
