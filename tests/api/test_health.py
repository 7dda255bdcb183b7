"""chat_core.api.health: `GET /health` checks Redis and writes nothing; `GET /config/ttl`
publishes the reconnect window."""

from __future__ import annotations

import pytest
from chat_core.api import health
from chat_core.redis_client import get_redis

from tests.api.helpers import serve


@pytest.fixture
async def api(redis_target):
    """The health routes alone: they need nothing else of the API."""
    async with serve(health.router) as client:
        yield client


async def test_health_checks_redis_and_writes_nothing(api):
    before = await get_redis().dbsize()
    response = await api.get("/api/chat/health")
    assert response.status_code == 200 and response.json() == {"status": "healthy", "redis": "ok"}
    assert await get_redis().dbsize() == before


async def test_health_reports_an_unreachable_redis(api, settings_env):
    settings_env(redis_url="redis://127.0.0.1:1", redis_connect_timeout=0.2)
    from chat_core.redis_client import reset_clients

    reset_clients()
    response = await api.get("/api/chat/health")
    assert response.status_code == 503 and response.json()["status"] == "unhealthy"


async def test_the_reconnect_window_is_published(api, settings_env):
    settings_env(stream_ttl_seconds=1800)
    assert (await api.get("/api/chat/config/ttl")).json() == {
        "stream_ttl_seconds": 1800,
        "stream_ttl_ms": 1_800_000,
    }
