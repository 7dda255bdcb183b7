"""chat_core.tools.understanding: the model records what it learns about a signed-in user,
and sees it (or that it is a first meeting) in later turns; an anonymous user is not
offered the tool, and the tool refuses one itself."""

from __future__ import annotations

import pytest
from chat_core.chat.prompts import FIRST_MEETING
from chat_core.tools import ToolContext, default_tools
from chat_core.tools.understanding import UpdateBusinessUnderstanding
from chat_core.users import BusinessUnderstanding, get_user_store
from chat_dev.scripted_model import ToolCall

from tests.api.helpers import SECRET, bearer
from tests.conftest import sse_chunks
from tests.users.helpers import BAKERY, UNDERSTANDING, answer


@pytest.fixture
def alice(settings_env) -> dict[str, str]:
    settings_env(jwt_secret=SECRET)
    return bearer("alice")


async def turn(api, headers: dict[str, str], message: str) -> list[dict]:
    session = (await api.post("/api/chat/sessions", headers=headers)).json()["id"]
    response = await api.post(
        f"/api/chat/sessions/{session}/stream", json={"message": message}, headers=headers
    )
    assert response.status_code == 200
    return sse_chunks(response.text)


def turn_prompts(model) -> list[str]:
    return [r.system_prompt for r in model.chat_requests if r.streaming]


async def test_the_model_is_told_the_understanding_or_that_it_is_a_first_meeting(
    store_backend, api, model, alice
):
    await turn(api, alice, "Hello!")
    assert FIRST_MEETING in turn_prompts(model)[-1]

    await api.put(UNDERSTANDING, json=BAKERY, headers=alice)
    await turn(api, alice, "Hello again!")
    prompt = turn_prompts(model)[-1]
    assert FIRST_MEETING not in prompt
    assert "Business: Crumb & Co" in prompt and "Industry: bakery" in prompt
    assert "Pain points: chasing unpaid invoices" in prompt

    await turn(api, {}, "Hi, I am not signed in")  # anonymous: always a first meeting
    assert FIRST_MEETING in turn_prompts(model)[-1]


async def test_the_model_updates_the_understanding_with_its_tool(store_backend, api, model, alice):
    await api.put(UNDERSTANDING, json={"industry": "bakery"}, headers=alice)
    model.reply_tool_calls(
        ToolCall(
            "update_business_understanding",
            {"business_name": "Crumb & Co", "pain_points": ["rotas"]},
        ),
        stream=True,
    )
    chunks = await turn(api, alice, "We are Crumb & Co and staff rotas eat my week.")
    output = next(c for c in chunks if c["type"] == "tool-output-available")["output"]
    assert output["type"] == "understanding_updated"
    known = {"industry": "bakery", "business_name": "Crumb & Co", "pain_points": ["rotas"]}
    assert (await api.get(UNDERSTANDING, headers=alice)).json() == answer(**known)

    await turn(api, alice, "What do you know about me?")
    assert "Business: Crumb & Co" in turn_prompts(model)[-1]


async def test_an_anonymous_user_is_not_offered_the_tool_and_cannot_be_remembered(
    store_backend, api, model
):
    await turn(api, {}, "I run a bakery")
    offered = [r for r in model.chat_requests if r.streaming][-1].tool_names
    assert "find_agent" in offered and "update_business_understanding" not in offered
    # A model calling it anyway gets a readable refusal, and nothing is kept.
    model.reply_tool_calls(
        ToolCall("update_business_understanding", {"industry": "bakery"}), stream=True
    )
    chunks = await turn(api, {}, "I run a bakery")
    errors = [c for c in chunks if c["type"] == "tool-output-error"]
    assert len(errors) == 1 and "update_business_understanding" in errors[0]["errorText"]
    assert FIRST_MEETING in turn_prompts(model)[-1]


async def test_the_tool_refuses_an_anonymous_caller_itself(store_backend):
    ctx = ToolContext(session_id="s1", user_id=None, task_id="t1", tool_call_id="c1")
    outcome = await default_tools().execute(
        "update_business_understanding", {"industry": "bakery"}, ctx
    )
    assert outcome.ok is False and "not signed in" in outcome.error


async def test_nothing_to_remember_is_a_readable_refusal_and_changes_nothing(store_backend):
    ctx = ToolContext(session_id="s1", user_id="alice", task_id="t1", tool_call_id="c1")
    await get_user_store().put_understanding("alice", BusinessUnderstanding(industry="bakery"))
    outcome = await default_tools().execute("update_business_understanding", {}, ctx)
    assert outcome.ok is False and "Nothing to remember" in outcome.error
    assert await get_user_store().get_understanding("alice") == BusinessUnderstanding(
        industry="bakery"
    )


async def test_given_texts_replace_and_given_items_are_added_once(store_backend):
    ctx = ToolContext(session_id="s1", user_id="alice", task_id="t1", tool_call_id="c1")
    before = BusinessUnderstanding(industry="bakery", pain_points=["rotas", "invoices"])
    await get_user_store().put_understanding("alice", before)
    update = BusinessUnderstanding(industry="catering", pain_points=["invoices", "stock"])
    said = await UpdateBusinessUnderstanding().run(ctx, update)
    known = {"industry": "catering", "pain_points": ["rotas", "invoices", "stock"]}
    assert said["type"] == "understanding_updated" and said["understanding"] == known
    assert await get_user_store().get_understanding("alice") == BusinessUnderstanding(**known)
