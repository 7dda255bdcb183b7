"""What the API tests share: signed tokens, sessions, turns (whole, or still running),
and the AI SDK's request shapes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import jwt
from chat_core import background, keys, tasks
from chat_core.api.app import create_app
from chat_core.redis_client import get_redis
from fastapi import APIRouter

from tests.conftest import parse_sse

SECRET = "test-jwt-secret-with-enough-entropy-0123456789"


@asynccontextmanager
async def serve(*routers: APIRouter) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app mounting `routers` in-process (as a function mounts its own, in
    `functions/*/app.py`); on leaving, the work it started in the background is drained."""
    transport = httpx.ASGITransport(app=create_app(*routers))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", timeout=30
    ) as client:
        yield client
    await background.drain(timeout=10)


def bearer(user_id: str, secret: str = SECRET, **claims) -> dict[str, str]:
    token = jwt.encode(
        {"sub": user_id, "exp": int(time.time()) + 600, **claims}, secret, algorithm="HS256"
    )
    return {"Authorization": f"Bearer {token}"}


async def new_session(api) -> str:
    return (await api.post("/api/chat/sessions")).json()["id"]


async def full_turn(api, message: str = "Hello there") -> tuple[str, list[dict]]:
    session = await new_session(api)
    response = await api.post(f"/api/chat/sessions/{session}/stream", json={"message": message})
    assert response.status_code == 200
    return response.headers["x-task-id"], parse_sse(response.text)


async def wait_until_streaming(task_id: str) -> None:
    for _ in range(200):
        entries = await get_redis().xrange(keys.task_stream(task_id))
        if any('"text-delta"' in f["data"] for _, f in entries):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the turn never started streaming")


async def start_slow_turn(api, model, words: int = 80) -> tuple[str, str]:
    """A turn still running when this returns: (session id, task id)."""
    model.slow_stream(60, text=" ".join(f"w{i}" for i in range(words)))
    session = await new_session(api)

    task = await tasks.start_turn(session, "count slowly", None)
    await wait_until_streaming(task.task_id)
    return session, task.task_id


def user(text: str, message_id: str) -> dict:
    return {"id": message_id, "role": "user", "parts": [{"type": "text", "text": text}]}


async def post(api, chat: str, messages: list[dict], **extra):
    body = {"id": chat, "messages": messages, "trigger": "submit-message", **extra}
    return await api.post("/api/chat", json=body)


async def messages_of(api, chat: str) -> list[dict]:
    response = await api.get(f"/api/chat/sessions/{chat}/messages")
    assert response.status_code == 200, response.text
    return response.json()["messages"]
