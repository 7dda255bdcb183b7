"""chat_core.api.errors: every error answer is `{"detail": {"code", "message"}}`: the
contract's codes, a 503 to retry when the store cannot be reached, and a 500 that tells the
caller nothing of our insides."""

from __future__ import annotations

import httpx
import pytest
import redis
from chat_core import redis_client
from chat_core.api.app import create_app
from chat_core.api.errors import STORE_RETRY_AFTER_SECONDS, ApiError
from fastapi import APIRouter

pytestmark = pytest.mark.both


@pytest.mark.parametrize(
    "body",
    [b'{"message": "caf\xc3"}', b'{"message": "\xff\xfe"}', b"[" * 10_000 + b"]" * 10_000],
    ids=["truncated utf-8", "not utf-8", "10,000 deep"],
)
async def test_a_body_that_is_not_json_text_is_422(api, body):
    session = (await api.post("/api/chat/sessions")).json()["id"]
    response = await api.post(
        f"/api/chat/sessions/{session}/stream",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "INVALID_JSON"
    assert (await api.get(f"/api/chat/sessions/{session}")).json()["messages"] == []


def app_raising(exc: Exception) -> httpx.AsyncClient:
    """The app with one route that raises `exc`, as a client that sees what a caller would."""
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise exc

    transport = httpx.ASGITransport(app=create_app(router), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_an_api_error_is_answered_with_its_status_code_and_message():
    async with app_raising(ApiError(409, "SOMETHING_ODD", "Something odd happened.")) as client:
        response = await client.get("/api/chat/boom")
    assert response.status_code == 409
    assert response.json() == {
        "detail": {"code": "SOMETHING_ODD", "message": "Something odd happened."}
    }


async def test_an_unexpected_error_is_a_500_that_tells_nothing_of_its_insides(caplog):
    async with app_raising(RuntimeError("password=hunter2 in a stack frame")) as client:
        response = await client.get("/api/chat/boom")
    assert response.status_code == 500
    assert response.json() == {
        "detail": {"code": "INTERNAL_ERROR", "message": "Something went wrong on our side."}
    }
    assert "hunter2" in caplog.text  # logged for us, not shown to the caller


@pytest.mark.parametrize(
    "exc",
    [
        redis.exceptions.ConnectionError("refused"),
        redis.exceptions.TimeoutError("slow"),
        redis.exceptions.ClusterDownError("down"),
        redis.exceptions.RedisClusterException("no node could be reached"),
    ],
    ids=["connection", "timeout", "cluster down", "no cluster node"],
)
async def test_a_store_that_cannot_be_reached_is_a_503_to_retry(exc):
    async with app_raising(exc) as client:
        response = await client.get("/api/chat/boom")
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(STORE_RETRY_AFTER_SECONDS)
    assert response.json()["detail"]["code"] == "STORE_UNAVAILABLE"


async def test_an_unreachable_redis_answers_503_and_nothing_half_done(api, settings_env):
    settings_env(redis_url="redis://127.0.0.1:1", redis_connect_timeout=0.2)
    redis_client.reset_clients()
    response = await api.post("/api/chat/sessions")
    assert response.status_code == 503
    assert response.json()["detail"]["code"] == "STORE_UNAVAILABLE"


async def test_an_unknown_path_is_a_json_404(api):
    response = await api.get("/api/chat/no/such/route")
    assert response.status_code == 404
    assert response.json()["detail"]["code"] == "NOT_FOUND"


async def test_invalid_input_names_the_field_and_the_problem(api):
    session = (await api.post("/api/chat/sessions")).json()["id"]
    response = await api.post(f"/api/chat/sessions/{session}/stream", json={"message": 7})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["code"] == "INVALID_REQUEST" and detail["message"].startswith("message: ")
