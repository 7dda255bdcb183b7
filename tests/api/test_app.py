"""chat_core.api.app: the app each function mounts (only its own routers, under the prefix,
operations named after their handlers), with CORS for the configured origins."""

from __future__ import annotations

import httpx
import pytest
from chat_core.api import health
from chat_core.api.app import ALL_ROUTERS, create_app

from tests.api.helpers import user

pytestmark = pytest.mark.both


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


async def test_a_function_serves_only_the_routers_it_mounts(redis_target):
    app = create_app(health.router)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        assert (await client.get("/api/chat/health")).status_code == 200
        missing = await client.post("/api/chat/sessions")
    assert missing.status_code == 404 and missing.json()["detail"]["code"] == "NOT_FOUND"
    assert set(app.openapi()["paths"]) == {"/api/chat/health", "/api/chat/config/ttl"}


def test_operation_ids_are_the_handlers_names():
    spec = create_app(*ALL_ROUTERS).openapi()
    ids = {
        operation["operationId"]
        for path in spec["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    assert {"create_session", "stream_turn", "ai_sdk_chat", "task_stream", "health"} <= ids
    assert all(i.isidentifier() for i in ids)  # what a generated client's method is called


async def test_the_ai_sdk_resume_path_does_not_shadow_the_session_routes(api):
    # `GET /sessions/stream` is also `/{session_id}/stream` with the id "sessions".
    created = await api.post("/api/chat", json={"id": "stream", "messages": [user("Hi", "u1")]})
    assert created.status_code == 200
    session = await api.get("/api/chat/sessions/stream")
    assert session.status_code == 200 and session.json()["id"] == "stream"
