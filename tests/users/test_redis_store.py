"""chat_core.users.redis_store: the user-store contract on Redis, and where the
records live."""

from __future__ import annotations

import pytest
from chat_core import keys
from chat_core.redis_client import get_redis
from chat_core.users import BusinessUnderstanding, LibraryAgent
from chat_core.users.redis_store import RedisUserStore

from tests.users.contract import UserStoreContract


@pytest.mark.parametrize("store_backend", ["redis"], indirect=True)
class TestUserStoreContract(UserStoreContract):
    pass


@pytest.mark.both
async def test_a_users_records_share_a_slot_and_never_expire(redis_target, settings_env):
    settings_env(session_ttl_seconds=1)  # sessions expire; what is known about the user does not
    store = RedisUserStore()
    await store.put_understanding("u1", BusinessUnderstanding(industry="bakery"))
    await store.save_agent("u1", LibraryAgent(agent_id="a1", name="Invoice Chaser"))
    r = get_redis()
    names = (keys.user_understanding("u1"), keys.user_agents("u1"))
    assert [await r.ttl(name) for name in names] == [-1, -1]
    assert len({name[name.index("{") : name.index("}")] for name in names}) == 1
