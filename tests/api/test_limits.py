"""chat_core.api.limits: a body over the limit is refused with 413 before anything reads it,
whether its length is declared or not; the webhook path has its own limit."""

from __future__ import annotations

import httpx
import pytest
from chat_core.api.limits import BodyLimit
from fastapi import APIRouter, FastAPI, Request

pytestmark = pytest.mark.both


async def test_a_chunked_body_over_the_limit_is_413(api, settings_env):
    settings_env(max_body_bytes=1000)
    session = (await api.post("/api/chat/sessions")).json()["id"]

    async def chunked():
        yield b'{"message": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    response = await api.post(
        f"/api/chat/sessions/{session}/stream",
        content=chunked(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["detail"]["code"] == "BODY_TOO_LARGE"
    assert (await api.get(f"/api/chat/sessions/{session}")).json()["messages"] == []


def echo_app() -> httpx.AsyncClient:
    """Routes that answer how much body they were given, behind the middleware alone."""
    router = APIRouter()

    @router.post("/echo")
    @router.post("/operations/op-1/complete")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @router.get("/echo")
    async def read() -> dict[str, str]:
        return {"status": "ok"}

    app = FastAPI()
    app.include_router(router, prefix="/api/chat")
    transport = httpx.ASGITransport(app=BodyLimit(app))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_a_body_at_the_limit_reaches_the_route_whole_and_one_byte_more_is_413(settings_env):
    settings_env(max_body_bytes=100)
    async with echo_app() as client:
        at_limit = await client.post("/api/chat/echo", content=b"x" * 100)
        over = await client.post("/api/chat/echo", content=b"x" * 101)
    assert at_limit.status_code == 200 and at_limit.json() == {"received": 100}
    assert over.status_code == 413
    assert over.json() == {
        "detail": {"code": "BODY_TOO_LARGE", "message": "The request body exceeds 100 bytes."}
    }


async def test_the_webhook_path_has_its_own_limit(settings_env):
    settings_env(max_body_bytes=100, max_webhook_body_bytes=1000)
    async with echo_app() as client:
        webhook = await client.post("/api/chat/operations/op-1/complete", content=b"x" * 500)
        other = await client.post("/api/chat/echo", content=b"x" * 500)
        too_big = await client.post("/api/chat/operations/op-1/complete", content=b"x" * 1001)
    assert webhook.status_code == 200 and webhook.json() == {"received": 500}
    assert other.status_code == 413 and too_big.status_code == 413


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(settings_env):
    settings_env(max_body_bytes=100)
    sent = 0

    async def body():
        nonlocal sent
        for _ in range(3):
            sent += 1
            yield b"x" * 10

    async with echo_app() as client:
        response = await client.post(
            "/api/chat/echo", content=body(), headers={"content-length": "5000"}
        )
    assert response.status_code == 413
    assert sent == 0  # nothing was read: the declared length was enough


async def test_requests_without_a_body_pass_untouched(settings_env):
    settings_env(max_body_bytes=1)
    async with echo_app() as client:
        response = await client.get("/api/chat/echo")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
