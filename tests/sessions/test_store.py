"""chat_core.sessions.store: the interface every session store implements, method for method
(the behaviour behind it is the contract, contract.py)."""

from __future__ import annotations

import inspect

import pytest
from chat_core.sessions.cache import CachedSessionStore
from chat_core.sessions.dynamodb_store import DynamoDBSessionStore
from chat_core.sessions.redis_store import RedisSessionStore
from chat_core.sessions.store import SessionStore

METHODS = sorted(
    name
    for name, member in vars(SessionStore).items()
    if inspect.iscoroutinefunction(member) and not name.startswith("_")
)


def test_the_interface_is_the_stores_whole_api():
    assert METHODS == [
        "add_usage",
        "append_messages",
        "assign_user",
        "create",
        "delete",
        "get",
        "list_sessions",
        "truncate_messages",
        "update_title",
        "update_tool_message",
    ]


@pytest.mark.parametrize(
    "implementation", [RedisSessionStore, DynamoDBSessionStore, CachedSessionStore]
)
@pytest.mark.parametrize("method", METHODS)
def test_every_store_has_each_method_with_the_interfaces_parameters(implementation, method):
    ours = getattr(implementation, method)
    assert inspect.iscoroutinefunction(ours)
    expected = inspect.signature(getattr(SessionStore, method)).parameters
    got = inspect.signature(ours).parameters
    assert [(p.name, p.default) for p in got.values()] == [
        (p.name, p.default) for p in expected.values()
    ]
