"""chat_core.sessions: `get_session_store()` builds what the settings name, once per event loop."""

from __future__ import annotations

import asyncio

from chat_core.sessions import get_session_store
from chat_core.sessions.cache import CachedSessionStore
from chat_core.sessions.dynamodb_store import DynamoDBSessionStore
from chat_core.sessions.redis_store import RedisSessionStore


async def test_redis_is_the_default():
    store = get_session_store()
    assert isinstance(store, RedisSessionStore)
    assert get_session_store() is store


async def test_dynamodb_sits_behind_the_cache_when_it_has_a_ttl(dynamodb_table, settings_env):
    settings_env(session_store="dynamodb", session_cache_ttl_seconds=60)
    store = get_session_store()
    assert isinstance(store, CachedSessionStore)
    assert isinstance(store.inner, DynamoDBSessionStore)
    assert store.inner.table_name == dynamodb_table


async def test_dynamodb_without_cache_when_the_ttl_is_zero(dynamodb_table, settings_env):
    settings_env(session_store="dynamodb", session_cache_ttl_seconds=0)
    store = get_session_store()
    assert isinstance(store, DynamoDBSessionStore)
    assert store.table_name == dynamodb_table


def test_each_event_loop_gets_its_own_store():
    async def build():
        return get_session_store(), get_session_store()

    first, again = asyncio.run(build())
    second, _ = asyncio.run(build())
    assert first is again
    assert second is not first
