"""Sessions over HTTP, identity, and the small endpoints."""

from __future__ import annotations

import time

import jwt
import pytest
from chat_core.redis_client import get_redis

SECRET = "test-jwt-secret-with-enough-entropy-0123456789"


def bearer(user_id: str, secret: str = SECRET, **claims) -> dict[str, str]:
    token = jwt.encode(
        {"sub": user_id, "exp": int(time.time()) + 600, **claims}, secret, algorithm="HS256"
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(settings_env):
    settings_env(jwt_secret=SECRET)
    return bearer


async def test_create_get_and_list_own_sessions(api, auth):
    alice = auth("alice")
    first = (await api.post("/api/chat/sessions", headers=alice)).json()
    second = (await api.post("/api/chat/sessions", headers=alice)).json()
    assert first["user_id"] == "alice" and set(first) == {"id", "created_at", "user_id"}
    await api.post("/api/chat/sessions", headers=auth("bob"))

    listing = (await api.get("/api/chat/sessions", headers=alice)).json()
    assert listing["total"] == 2
    assert [s["id"] for s in listing["sessions"]] == [second["id"], first["id"]]  # newest first
    page = (await api.get("/api/chat/sessions?limit=1&offset=1", headers=alice)).json()
    assert [s["id"] for s in page["sessions"]] == [first["id"]] and page["total"] == 2

    got = (await api.get(f"/api/chat/sessions/{first['id']}", headers=alice)).json()
    assert got["id"] == first["id"] and got["messages"] == [] and got["active_stream"] is None


async def test_another_users_session_is_not_found_exactly_like_a_missing_one(api, auth):
    session = (await api.post("/api/chat/sessions", headers=auth("alice"))).json()["id"]
    theirs = await api.get(f"/api/chat/sessions/{session}", headers=auth("mallory"))
    missing = await api.get("/api/chat/sessions/does-not-exist", headers=auth("mallory"))
    anonymous = await api.get(f"/api/chat/sessions/{session}")
    assert theirs.status_code == missing.status_code == anonymous.status_code == 404
    assert (
        theirs.json()
        == missing.json()
        == {"detail": {"code": "SESSION_NOT_FOUND", "message": "No such chat session."}}
    )
    assert (
        await api.delete(f"/api/chat/sessions/{session}", headers=auth("mallory"))
    ).status_code == 404
    assert (
        await api.post(
            f"/api/chat/sessions/{session}/stream", json={"message": "hi"}, headers=auth("mallory")
        )
    ).status_code == 404


async def test_anonymous_sessions_are_reachable_by_id_and_can_be_claimed(api, auth):
    session = (await api.post("/api/chat/sessions")).json()
    assert session["user_id"] is None
    assert (await api.get(f"/api/chat/sessions/{session['id']}")).status_code == 200
    claimed = await api.patch(
        f"/api/chat/sessions/{session['id']}/assign-user", headers=auth("carol")
    )
    assert claimed.status_code == 200
    assert (await api.get("/api/chat/sessions", headers=auth("carol"))).json()["total"] == 1
    # Now it is Carol's: anonymous readers and others lose it, and it cannot be claimed again.
    assert (await api.get(f"/api/chat/sessions/{session['id']}")).status_code == 404
    again = await api.patch(f"/api/chat/sessions/{session['id']}/assign-user", headers=auth("dave"))
    assert again.status_code == 404


async def test_rename_sets_the_title_for_its_owner_only(api, auth):
    session = (await api.post("/api/chat/sessions", headers=auth("alice"))).json()["id"]
    path = f"/api/chat/sessions/{session}"
    renamed = await api.patch(path, json={"title": "Tax questions"}, headers=auth("alice"))
    assert renamed.status_code == 200 and renamed.json()["title"] == "Tax questions"
    assert (await api.get(path, headers=auth("alice"))).json()["title"] == "Tax questions"
    other = await api.patch(path, json={"title": "Mine now"}, headers=auth("mallory"))
    assert other.status_code == 404 and other.json()["detail"]["code"] == "SESSION_NOT_FOUND"
    empty = await api.patch(path, json={"title": ""}, headers=auth("alice"))
    assert empty.status_code == 422 and empty.json()["detail"]["code"] == "INVALID_REQUEST"
    assert (await api.get(path, headers=auth("alice"))).json()["title"] == "Tax questions"


async def test_delete_answers_204_and_the_session_is_gone(api, auth):
    session = (await api.post("/api/chat/sessions", headers=auth("alice"))).json()["id"]
    deleted = await api.delete(f"/api/chat/sessions/{session}", headers=auth("alice"))
    assert deleted.status_code == 204 and deleted.content == b""
    assert (
        await api.get(f"/api/chat/sessions/{session}", headers=auth("alice"))
    ).status_code == 404


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "UNAUTHENTICATED"),
        ({"Authorization": "Basic abc"}, 401, "INVALID_TOKEN"),
        ({"Authorization": "Bearer not.a.jwt"}, 401, "INVALID_TOKEN"),
        (bearer("eve", secret="another-secret-entirely-0123456789abcdef"), 401, "INVALID_TOKEN"),
    ],
)
async def test_listing_needs_a_valid_token(api, auth, headers, status, code):
    response = await api.get("/api/chat/sessions", headers=headers)
    assert response.status_code == status and response.json()["detail"]["code"] == code


async def test_an_expired_token_is_refused(api, auth):
    expired = bearer("alice", exp=int(time.time()) - 10)
    response = await api.get("/api/chat/sessions", headers=expired)
    assert response.status_code == 401 and response.json()["detail"]["code"] == "TOKEN_EXPIRED"


async def test_a_token_without_a_configured_secret_answers_503(api):
    response = await api.get("/api/chat/sessions", headers=bearer("alice"))
    assert response.status_code == 503 and response.json()["detail"]["code"] == "JWT_NOT_CONFIGURED"


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


async def test_openapi_describes_every_route(api):
    spec = (await api.get("/openapi.json")).json()
    assert {
        "/api/chat/sessions", "/api/chat/sessions/{session_id}", "/api/chat/sessions/{session_id}/stream",
        "/api/chat/sessions/{session_id}/assign-user", "/api/chat", "/api/chat/{session_id}/stream",
        "/api/chat/sessions/{session_id}/messages", "/api/chat/{session_id}/stop",
        "/api/chat/tasks/{task_id}", "/api/chat/tasks/{task_id}/stream", "/api/chat/tasks/{task_id}/cancel",
        "/api/chat/operations/{operation_id}/complete", "/api/chat/events", "/api/chat/health", "/api/chat/config/ttl",
    } <= set(spec["paths"])  # fmt: skip
    assert (await api.get("/docs")).status_code == 200
