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

from .. import keys
from ..redis_client import get_redis
from ..settings import get_settings
from .models import ChatMessage, ChatSession, SessionSummary, Usage
from .store import SessionStore

# A version must outlive every read that saw it before the bump, or an expired (absent)
# version would look unchanged. Fifteen minutes is the longest a Lambda runs.
_VERSION_TTL_MS = 15 * 60 * 1000

# KEYS: cache, version. ARGV: version TTL (ms)
_INVALIDATE = """
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: cache, version. ARGV: version seen before reading ('' = none), TTL (ms), session JSON
_FILL = """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
return 1
"""


class CachedSessionStore:
    """Wraps any `SessionStore`; every write through it invalidates the session's copy."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner

    async def get(self, session_id: str, user_id: str | None) -> ChatSession | None:
        cache_keys = _cache_keys(session_id)
        cached, version = await get_redis().mget(cache_keys)
        if cached is not None:
            session = ChatSession.model_validate_json(cached)
            return session if session.visible_to(user_id) else None
        session = await self.inner.get(session_id, user_id)
        ttl_ms = get_settings().session_cache_ttl_seconds * 1000
        if session is not None and ttl_ms > 0:
            await _script(_FILL, cache_keys, [version or "", ttl_ms, session.model_dump_json()])
        return session

    async def create(self, user_id: str | None, session_id: str | None = None) -> ChatSession:
        # Nothing to invalidate: absent sessions are never cached.
        return await self.inner.create(user_id, session_id)

    async def list_sessions(
        self, user_id: str, limit: int = 50, offset: int = 0
    ) -> tuple[list[SessionSummary], int]:
        return await self.inner.list_sessions(user_id, limit, offset)

    async def upsert(self, session: ChatSession) -> ChatSession:
        async with _writing(session.session_id):
            return await self.inner.upsert(session)

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

    async def update_tool_message(self, session_id: str, tool_call_id: str, content: str) -> bool:
        async with _writing(session_id):
            return await self.inner.update_tool_message(session_id, tool_call_id, content)


@asynccontextmanager
async def _writing(session_id: str) -> AsyncIterator[None]:
    """Invalidate after the inner write, also when it failed half-way."""
    try:
        yield
    finally:
        await _script(_INVALIDATE, _cache_keys(session_id), [_VERSION_TTL_MS])


def _cache_keys(session_id: str) -> list[str]:
    return [keys.session_cache(session_id), keys.session_cache_version(session_id)]


async def _script(body: str, script_keys: list[str], args: list[object]) -> object:
    client = get_redis()
    return await client.register_script(body)(keys=script_keys, args=args, client=client)
