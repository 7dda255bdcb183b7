"""A Redis read cache of whole sessions in front of another store, safe under races.

    store = CachedSessionStore(DynamoDBSessionStore())
    session = await store.get(session_id, user_id="u1")    # the inner store once, then Redis

Next to the cached session (`keys.session_cache`) sits a version counter
(`keys.session_cache_version`), both under the session's hash tag. A write goes to the inner
store first, then bumps the version and drops the cached copy in one script. A reader notes
the version before it reads the inner store and fills the cache only if the version is
unchanged, so a read that started before a write can never put its older copy back after
that write's invalidation. Owner checks apply to cached copies as to fresh ones; listings
are not cached.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .. import keys, lua
from ..redis_client import get_redis
from ..settings import get_settings
from .models import ChatMessage, ChatSession, SessionSummary, Usage
from .store import SessionStore

# A version must outlive every read that saw it before the bump, or an expired (absent)
# version would look unchanged. Fifteen minutes is the longest a Lambda runs.
_VERSION_TTL_MS = 15 * 60 * 1000


class CachedSessionStore:
    """Wraps any `SessionStore`; every write through it invalidates the session's copy."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner

    async def get(self, session_id: str, user_id: str | None) -> ChatSession | None:
        cached, version = await get_redis().mget(list(_cache_keys(session_id).values()))
        if cached is not None:
            hit = ChatSession.model_validate_json(cached)
            return hit if hit.visible_to(user_id) else None
        session = await self.inner.get(session_id, user_id)
        ttl_ms = get_settings().session_cache_ttl_seconds * 1000
        if session is not None and ttl_ms > 0:
            await lua.CACHE_FILL(
                **_cache_keys(session_id),
                ttl_ms=ttl_ms,
                seen=version or "",
                session_json=session.model_dump_json(),
            )
        return session

    async def create(self, user_id: str | None, session_id: str | None = None) -> ChatSession:
        # Nothing to invalidate: absent sessions are never cached.
        return await self.inner.create(user_id, session_id)

    async def list_sessions(
        self, user_id: str, limit: int = 50, offset: int = 0
    ) -> tuple[list[SessionSummary], int]:
        return await self.inner.list_sessions(user_id, limit, offset)

    async def append_messages(
        self, session_id: str, messages: list[ChatMessage]
    ) -> list[ChatMessage]:
        async with _writing(session_id):
            return await self.inner.append_messages(session_id, messages)

    async def delete(self, session_id: str, user_id: str | None) -> bool:
        async with _writing(session_id):
            return await self.inner.delete(session_id, user_id)

    async def assign_user(self, session_id: str, user_id: str) -> bool:
        async with _writing(session_id):
            return await self.inner.assign_user(session_id, user_id)

    async def update_title(self, session_id: str, title: str) -> bool:
        async with _writing(session_id):
            return await self.inner.update_title(session_id, title)

    async def add_usage(self, session_id: str, usage: Usage) -> None:
        async with _writing(session_id):
            await self.inner.add_usage(session_id, usage)

    async def truncate_messages(self, session_id: str, keep: int) -> bool:
        async with _writing(session_id):
            return await self.inner.truncate_messages(session_id, keep)

    async def update_tool_message(
        self, session_id: str, tool_call_id: str, content: str, *, if_pending: bool = False
    ) -> bool:
        async with _writing(session_id):
            return await self.inner.update_tool_message(
                session_id, tool_call_id, content, if_pending=if_pending
            )


@asynccontextmanager
async def _writing(session_id: str) -> AsyncIterator[None]:
    """Invalidate after the inner write, also when it failed half-way."""
    try:
        yield
    finally:
        await lua.CACHE_INVALIDATE(**_cache_keys(session_id), version_ttl_ms=_VERSION_TTL_MS)


def _cache_keys(session_id: str) -> dict[str, str]:
    return {
        "cache": keys.session_cache(session_id),
        "version": keys.session_cache_version(session_id),
    }
