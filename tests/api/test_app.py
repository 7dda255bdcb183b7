"""chat_core.api.app: the app each function mounts, with CORS for the configured origins."""

from __future__ import annotations

import pytest
from chat_core.api.app import ALL_ROUTERS, create_app

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
