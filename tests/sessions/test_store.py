"""chat_core.sessions.store: the interface every session store implements, method for method
(the behaviour behind it is the contract, contract.py)."""

from __future__ import annotations

import pytest
from chat_core.sessions.cache import CachedSessionStore
from chat_core.sessions.dynamodb_store import DynamoDBSessionStore
from chat_core.sessions.redis_store import RedisSessionStore
from chat_core.sessions.store import SessionStore

from tests.interfaces import assert_implements, async_methods

METHODS = async_methods(SessionStore)


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
    assert_implements(implementation, SessionStore, method)
