"""Fixtures of the session-store tests: each store built the way the app builds it.

`store` runs a test once per implementation: "redis", "dynamodb" (moto) and
"dynamodb+cache" (moto behind the Redis read cache). Modules marked `both` also run the
Redis-backed ones on the 3-node cluster; plain DynamoDB never touches Redis, so its cluster
copy is deselected.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chat_core.sessions import SessionStore, get_session_store

STORE_KINDS = ["redis", "dynamodb", "dynamodb+cache"]


@pytest.fixture(params=STORE_KINDS)
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    redundant = [
        item
        for item in items
        if here in item.path.parents
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("store_kind") == "dynamodb"
        and item.callspec.params.get("redis_topology") == "cluster"
    ]
    if redundant:
        config.hook.pytest_deselected(items=redundant)
        items[:] = [item for item in items if item not in redundant]
