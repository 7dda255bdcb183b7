"""The AI SDK routes in-process: POST /api/chat following the client's conversation,
GET /sessions/{id}/messages, resume, stop, bad input, CORS and reasoning."""

from __future__ import annotations

import asyncio

import pytest
from chat_core import registry
from chat_core.api.app import ALL_ROUTERS, create_app
from chat_core.sessions import get_session_store
from chat_core.tasks import start_turn
from chat_dev.scripted_model import ReplyWith

from tests.api.test_streams_api import wait_until_streaming
from tests.conftest import sse_chunks

pytestmark = pytest.mark.both


def user(text: str, message_id: str) -> dict:
    return {"id": message_id, "role": "user", "parts": [{"type": "text", "text": text}]}


async def post(api, chat: str, messages: list[dict], **extra):
    body = {"id": chat, "messages": messages, "trigger": "submit-message", **extra}
    return await api.post("/api/chat", json=body)


async def messages_of(api, chat: str) -> list[dict]:
    response = await api.get(f"/api/chat/sessions/{chat}/messages")
    assert response.status_code == 200, response.text
    return response.json()["messages"]


async def test_messages_are_the_ai_sdk_shape_with_the_stream_ids(api, model):
    model.reply_text("Hi! I can chat.", stream=True)
    chunks = sse_chunks((await post(api, "chat-a", [user("Hello", "u1")])).text)
    assert chunks[0]["type"] == "start" and chunks[-1] == {"type": "finish"}
    history = await messages_of(api, "chat-a")
    assert history[0] == user("Hello", "u1")
    assert history[1]["id"] == chunks[0]["messageId"] and history[1]["role"] == "assistant"
    text = [p for p in history[1]["parts"] if p["type"] == "text"]
    assert text == [{"type": "text", "text": "Hi! I can chat.", "state": "done"}]
    # The model's own history is unchanged by the view records.
    session = (await api.get("/api/chat/sessions/chat-a")).json()
    assert [m["role"] for m in session["messages"]] == ["user", "assistant"]


async def test_a_message_in_progress_is_left_to_the_resume(api, model):
    session = await get_session_store().create(None, session_id="chat-b")
    model.slow_stream(60, text=" ".join(f"w{i}" for i in range(40)))
    task = await start_turn(session, "count", None)
    await wait_until_streaming(task.task_id)
    history = await messages_of(api, "chat-b")
    assert [m["role"] for m in history] == ["user"]
    resumed = sse_chunks((await api.get("/api/chat/chat-b/stream")).text)
    assert resumed[0]["type"] == "start" and resumed[-1] == {"type": "finish"}
    history = await messages_of(api, "chat-b")
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[1]["id"] == resumed[0]["messageId"]


async def test_regenerate_replaces_the_answer_and_edit_rewinds(api, model):
    first = sse_chunks((await post(api, "chat-c", [user("One", "u1")])).text)
    answer = {"id": first[0]["messageId"], "role": "assistant", "parts": []}
    await post(api, "chat-c", [user("One", "u1"), answer, user("Two", "u2")])
    assert len(await messages_of(api, "chat-c")) == 4

    model.reply_text("Regenerated.", stream=True)
    body = {"id": "chat-c", "messages": [user("One", "u1")], "trigger": "regenerate-message"}
    body["messageId"] = first[0]["messageId"]
    again = sse_chunks((await api.post("/api/chat", json=body)).text)
    history = await messages_of(api, "chat-c")
    assert [m["id"] for m in history] == ["u1", again[0]["messageId"]]
    assert [p["text"] for p in history[1]["parts"] if p["type"] == "text"] == ["Regenerated."]

    model.reply_text("Edited answer.", stream=True)
    await post(api, "chat-c", [user("One, edited", "u1")], messageId="u1")
    history = await messages_of(api, "chat-c")
    assert history[0] == user("One, edited", "u1") and len(history) == 2
    session = (await api.get("/api/chat/sessions/chat-c")).json()
    assert [m["content"] for m in session["messages"]] == ["One, edited", "Edited answer."]


@pytest.mark.parametrize(
    ("messages", "detail"),
    [
        ([{"role": "user", "parts": [{"type": "text", "text": "no id"}]}], "messages.0.id"),
        ([{"id": "u1", "role": "user", "parts": "text"}], "messages.0.parts"),
        ([{"id": "u1", "role": "user", "parts": [{"text": "no type"}]}], "messages.0.parts.0.type"),
        ([{"id": "u1", "role": "robot", "parts": []}], "messages.0.role"),
    ],
)
async def test_messages_that_are_not_ui_messages_are_refused(api, messages, detail):
    response = await post(api, "chat-d", messages)
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "INVALID_REQUEST"
    assert response.json()["detail"]["message"].startswith(detail)
    assert (await api.get("/api/chat/sessions/chat-d")).status_code == 404  # nothing saved


async def test_no_messages_is_no_user_message(api):
    response = await post(api, "chat-d", [])
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "NO_USER_MESSAGE"


async def test_an_unknown_message_id_and_another_chats_message_are_not_found(api, model):
    await post(api, "chat-e", [user("Mine", "e1")])
    await post(api, "chat-f", [user("Other", "f1")])
    before = await messages_of(api, "chat-e")
    for message_id in ("no-such-message", "f1"):  # f1 belongs to chat-f
        response = await post(api, "chat-e", [user("Edited", message_id)], messageId=message_id)
        assert response.status_code == 404
        assert response.json()["detail"]["code"] == "MESSAGE_NOT_FOUND"
    body = {"id": "chat-e", "messages": [user("Mine", "e1")], "trigger": "regenerate-message"}
    response = await api.post("/api/chat", json={**body, "messageId": "nope"})
    assert response.status_code == 404
    assert await messages_of(api, "chat-e") == before  # nothing lost


async def test_a_history_the_server_does_not_have_is_refused(api, model):
    await post(api, "chat-g", [user("One", "g1")])
    made_up = {"id": "invented", "role": "assistant", "parts": [{"type": "text", "text": "?"}]}
    response = await post(api, "chat-g", [user("One", "g1"), made_up, user("Two", "g2")])
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "HISTORY_MISMATCH"
    assert len(await messages_of(api, "chat-g")) == 2


async def test_resume_of_a_new_or_foreign_chat_is_204_and_stop_is_idempotent(
    api, model, settings_env
):
    from tests.api.test_sessions_api import SECRET, bearer

    settings_env(jwt_secret=SECRET)
    assert (await api.get("/api/chat/never-posted/stream")).status_code == 204
    owned = (await api.post("/api/chat/sessions", headers=bearer("alice"))).json()["id"]
    assert (
        await api.get(f"/api/chat/{owned}/stream", headers=bearer("mallory"))
    ).status_code == 204
    assert (await api.post(f"/api/chat/{owned}/stop", headers=bearer("mallory"))).status_code == 204
    assert (await api.post("/api/chat/never-posted/stop")).status_code == 204


async def test_stop_cancels_the_running_turn(api, model):
    session = await get_session_store().create(None, session_id="chat-h")
    model.slow_stream(60, text=" ".join(f"w{i}" for i in range(200)))
    task = await start_turn(session, "count", None)
    await wait_until_streaming(task.task_id)
    assert (await api.post("/api/chat/chat-h/stop")).status_code == 204
    for _ in range(100):
        if not (await registry.get_task(task.task_id)).running:
            break
        await asyncio.sleep(0.05)
    assert (await registry.get_task(task.task_id)).status == "cancelled"
    assert (await api.post("/api/chat/chat-h/stop")).status_code == 204
    [_, answer] = await messages_of(api, "chat-h")
    assert "w199" not in str(answer["parts"])


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
async def test_reasoning_streams_and_is_kept(api, model, field):
    model.enqueue(
        ReplyWith(text="Four.", reasoning="Two and two.", reasoning_field=field, stream=True)
    )
    chunks = sse_chunks((await post(api, f"chat-r-{field}", [user("2+2?", "u1")])).text)
    kinds = [c["type"] for c in chunks]
    assert kinds.index("reasoning-start") < kinds.index("reasoning-end") < kinds.index("text-start")
    [answer] = (await messages_of(api, f"chat-r-{field}"))[1:]
    [reasoning] = [p for p in answer["parts"] if p["type"] == "reasoning"]
    assert (reasoning["text"], reasoning["state"]) == ("Two and two.", "done")


async def test_cors_answers_the_configured_origin_only(model, settings_env):
    import httpx

    async def preflight(app, origin: str) -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            return await client.options(
                "/api/chat",
                headers={
                    "origin": origin,
                    "access-control-request-method": "POST",
                    "access-control-request-headers": "content-type,authorization",
                },
            )

    settings_env(cors_origins="http://localhost:5173, https://app.example")
    app = create_app(*ALL_ROUTERS)
    allowed = await preflight(app, "http://localhost:5173")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = await preflight(app, "https://evil.example")
    assert "access-control-allow-origin" not in refused.headers
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.get("/api/chat/health", headers={"origin": "https://app.example"})
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-vercel-ai-ui-message-stream" in exposed and "x-task-id" in exposed

    settings_env(cors_origins="")
    plain = await preflight(create_app(*ALL_ROUTERS), "http://localhost:5173")
    assert "access-control-allow-origin" not in plain.headers
