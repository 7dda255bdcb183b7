"""chat_core.users: `get_user_store()` keeps user records in the session store's backend,
one store per event loop."""

from __future__ import annotations

import asyncio

from chat_core.users import get_user_store
from chat_core.users.dynamodb_store import DynamoDBUserStore
from chat_core.users.redis_store import RedisUserStore


async def test_redis_is_the_default_and_built_once():
    store = get_user_store()
    assert isinstance(store, RedisUserStore)
    assert get_user_store() is store


async def test_dynamodb_when_the_sessions_are_there(dynamodb_table, settings_env):
    settings_env(session_store="dynamodb")
    store = get_user_store()
    assert isinstance(store, DynamoDBUserStore)
    assert store.table_name == dynamodb_table


def test_each_event_loop_gets_its_own_store():
    async def build():
        return get_user_store(), get_user_store()

    first, again = asyncio.run(build())
    second, _ = asyncio.run(build())
    assert first is again and second is not first
