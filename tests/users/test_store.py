"""chat_core.users.store: the interface every user store implements, method for method (the
behaviour behind it is the contract, contract.py)."""

from __future__ import annotations

import pytest
from chat_core.users.dynamodb_store import DynamoDBUserStore
from chat_core.users.redis_store import RedisUserStore
from chat_core.users.store import UserStore

from tests.interfaces import assert_implements, async_methods

METHODS = async_methods(UserStore)


def test_the_interface_is_the_stores_whole_api():
    assert METHODS == [
        "get_agent",
        "get_understanding",
        "list_agents",
        "merge_understanding",
        "put_understanding",
        "save_agent",
    ]


@pytest.mark.parametrize("implementation", [RedisUserStore, DynamoDBUserStore])
@pytest.mark.parametrize("method", METHODS)
def test_every_store_has_each_method_with_the_interfaces_parameters(implementation, method):
    assert_implements(implementation, UserStore, method)
