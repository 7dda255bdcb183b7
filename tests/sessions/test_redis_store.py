"""chat_core.sessions.redis_store: the session-store contract on Redis, and what only the
Redis store does: idle expiry, and an index that heals itself."""

from __future__ import annotations

import asyncio
import time

import pytest
from chat_core import keys
from chat_core.redis_client import get_redis
from chat_core.sessions import ChatMessage, Usage
from chat_core.sessions.redis_store import RedisSessionStore

from tests.sessions.contract import SessionStoreContract

pytestmark = pytest.mark.parametrize("store_kind", ["redis"], indirect=True)


@pytest.mark.both
class TestSessionStoreContract(SessionStoreContract):
    pass


@pytest.mark.both
@pytest.mark.valkey  # also on a standalone Valkey
async def test_an_idle_session_expires_whole_and_writes_keep_it_alive(store, settings_env):
    assert isinstance(store, RedisSessionStore)
    settings_env(session_ttl_seconds=1)
    await store.create(user_id="u1", session_id="s1")
    await store.append_messages("s1", [ChatMessage(role="user", content="hi")])
    await store.add_usage("s1", Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2))
    await store.create(user_id="u1", session_id="idle")

    await asyncio.sleep(0.6)
    await store.update_title("s1", "still here")  # a write refreshes every key
    await asyncio.sleep(0.6)  # 1.2 s after the first writes
    alive = await store.get("s1", user_id="u1")
    assert alive is not None
    assert ([m.content for m in alive.messages], len(alive.usage)) == (["hi"], 1)
    assert await store.get("idle", user_id="u1") is None
    listed, total = await store.list_sessions("u1")
    assert ([s.session_id for s in listed], total) == (["s1"], 1)

    await asyncio.sleep(1.2)
    assert await store.get("s1", user_id="u1") is None
    assert await store.list_sessions("u1") == ([], 0)
    # Nothing of it was left behind: the id starts empty when used again.
    await store.create(user_id="u1", session_id="s1")
    reused = await store.get("s1", user_id="u1")
    assert reused is not None and (reused.messages, reused.usage, reused.title) == ([], [], None)


@pytest.mark.both
@pytest.mark.valkey
async def test_index_entries_of_vanished_sessions_are_not_listed(store):
    await store.create(user_id="u1", session_id="s1")
    # What a crash between a session's script and its index update can leave behind.
    await get_redis().zadd(keys.user_sessions("u1"), {"ghost": int(time.time() * 1000) + 1})
    listed, total = await store.list_sessions("u1")
    assert ([s.session_id for s in listed], total) == (["s1"], 1)
    assert await store.list_sessions("u1") == (listed, 1)
