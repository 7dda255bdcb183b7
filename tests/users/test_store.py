"""chat_core.users.store: the interface every user store implements, method for method (the
behaviour behind it is the contract, contract.py)."""

from __future__ import annotations

import inspect

import pytest
from chat_core.users.dynamodb_store import DynamoDBUserStore
from chat_core.users.redis_store import RedisUserStore
from chat_core.users.store import UserStore

METHODS = sorted(
    name
    for name, member in vars(UserStore).items()
    if inspect.iscoroutinefunction(member) and not name.startswith("_")
)


def test_the_interface_is_the_stores_whole_api():
    assert METHODS == [
        "get_agent",
        "get_understanding",
        "list_agents",
        "put_understanding",
        "save_agent",
    ]


@pytest.mark.parametrize("implementation", [RedisUserStore, DynamoDBUserStore])
@pytest.mark.parametrize("method", METHODS)
def test_every_store_has_each_method_with_the_interfaces_parameters(implementation, method):
    ours = getattr(implementation, method)
    assert inspect.iscoroutinefunction(ours)
    expected = inspect.signature(getattr(UserStore, method)).parameters
    got = inspect.signature(ours).parameters
    assert [(p.name, p.default) for p in got.values()] == [
        (p.name, p.default) for p in expected.values()
    ]
