"""Fixtures of the session-store tests: each store built the way the app builds it.

`store` is the store `store_kind` names: "redis", "dynamodb" (moto) or "dynamodb+cache" (moto
behind the Redis read cache). An implementation's module picks its kind for the contract
(contract.py) with `@pytest.mark.parametrize("store_kind", [...], indirect=True)`.
"""

from __future__ import annotations

import pytest
from chat_core.sessions import SessionStore, get_session_store


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def store(
    store_kind: str, redis_target, settings_env, request: pytest.FixtureRequest
) -> SessionStore:
    if store_kind == "redis":
        settings_env(session_store="redis")
    else:
        request.getfixturevalue("dynamodb_table")
        cache_ttl = 300 if store_kind == "dynamodb+cache" else 0
        settings_env(session_store="dynamodb", session_cache_ttl_seconds=cache_ttl)
    return get_session_store()
