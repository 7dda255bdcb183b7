"""chat_core.api.paths: ids are short tokens; an id of any other shape is simply not found."""

from __future__ import annotations

import pytest
from chat_core.api.errors import ApiError
from chat_core.api.paths import ID_SCHEMA, checked_id

from tests.api.helpers import user

ODD_IDS = ["a" * 65, "has.dot", "has space", "ünïcode", "semi;colon"]


@pytest.mark.parametrize("value", ["a", "A-z_09", "x" * 64])
def test_a_short_token_is_an_id(value):
    assert checked_id(value, "SESSION_NOT_FOUND", "No such chat session.") == value


@pytest.mark.parametrize("value", ODD_IDS + [""])
def test_anything_else_is_not_found_with_the_callers_code(value):
    with pytest.raises(ApiError) as raised:
        checked_id(value, "TASK_NOT_FOUND", "No such task.")
    assert (raised.value.status, raised.value.code) == (404, "TASK_NOT_FOUND")


@pytest.mark.parametrize("value", ODD_IDS)
async def test_over_http_an_odd_id_is_answered_like_an_unknown_one(api, value):
    unknown_session = await api.get("/api/chat/sessions/unknown")
    unknown_task = await api.get("/api/chat/tasks/unknown")
    odd_session = await api.get("/api/chat/sessions/" + value)
    odd_task = await api.get("/api/chat/tasks/" + value)
    assert odd_session.status_code == odd_task.status_code == 404
    assert odd_session.json() == unknown_session.json()
    assert odd_task.json() == unknown_task.json()


async def test_an_ai_sdk_chat_id_of_another_shape_is_not_made_into_a_session(api):
    response = await api.post("/api/chat", json={"id": "a" * 65, "messages": [user("Hi", "u1")]})
    assert response.status_code == 404
    assert response.json()["detail"]["code"] == "SESSION_NOT_FOUND"
    listed = await api.post("/api/chat", json={"id": "b" * 64, "messages": [user("Hi", "u1")]})
    assert listed.status_code == 200  # the longest id there is


async def test_the_id_pattern_is_documented(api):
    spec = (await api.get("/openapi.json")).json()
    parameters = spec["paths"]["/api/chat/sessions/{session_id}"]["get"]["parameters"]
    [session_id] = [p for p in parameters if p["name"] == "session_id"]
    assert session_id["schema"]["pattern"] == ID_SCHEMA["pattern"]
