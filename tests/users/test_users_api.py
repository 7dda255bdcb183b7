"""The user's understanding and library over HTTP, and what the model sees of them, with the
scripted model over real HTTP, on Redis and on DynamoDB."""

from __future__ import annotations

import pytest
from chat_core.chat.prompts import FIRST_MEETING
from chat_core.tools import ToolContext, default_tools
from chat_core.users import BusinessUnderstanding
from chat_dev.scripted_model import ToolCall

from tests.api.test_sessions_api import SECRET, bearer
from tests.conftest import sse_chunks

UNDERSTANDING = "/api/chat/users/me/understanding"
BAKERY = {
    "user_name": "Ada",
    "business_name": "Crumb & Co",
    "industry": "bakery",
    "pain_points": ["chasing unpaid invoices"],
}


def answer(**facts) -> dict:
    """The answer with these facts known: every field present, the others empty."""
    return {"understanding": BusinessUnderstanding(**facts).model_dump()}


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


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", UNDERSTANDING),
        ("PUT", UNDERSTANDING),
        ("GET", "/api/chat/users/me/agents"),
        ("GET", "/api/chat/users/me/agents/a1"),
    ],
)
async def test_anonymous_callers_get_401_json(store_backend, api, method, path):
    response = await api.request(method, path, json=BAKERY if method == "PUT" else None)
    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "UNAUTHENTICATED"


async def test_the_user_reads_and_replaces_their_understanding(store_backend, api, alice):
    assert (await api.get(UNDERSTANDING, headers=alice)).json() == {"understanding": None}
    put = await api.put(UNDERSTANDING, json=BAKERY, headers=alice)
    assert put.status_code == 200 and put.json() == answer(**BAKERY)
    assert (await api.get(UNDERSTANDING, headers=alice)).json() == answer(**BAKERY)
    # Another user sees only their own (nothing).
    bob = bearer("bob")
    assert (await api.get(UNDERSTANDING, headers=bob)).json() == {"understanding": None}
    await api.put(UNDERSTANDING, json={"industry": "catering"}, headers=alice)
    assert (await api.get(UNDERSTANDING, headers=alice)).json() == answer(industry="catering")


@pytest.mark.parametrize(
    "body",
    [{"favourite_colour": "blue"}, {"industry": "x" * 501}, {"pain_points": "not a list"}, []],
)
async def test_an_invalid_understanding_is_refused_and_loses_nothing(
    store_backend, api, alice, body
):
    await api.put(UNDERSTANDING, json=BAKERY, headers=alice)
    response = await api.put(UNDERSTANDING, json=body, headers=alice)
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "INVALID_REQUEST"
    assert (await api.get(UNDERSTANDING, headers=alice)).json() == answer(**BAKERY)


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
