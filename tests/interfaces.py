"""Checking that a class implements an interface (a `typing.Protocol` of async methods)
method for method, with the interface's parameters and defaults.

    METHODS = async_methods(SessionStore)
    assert_implements(RedisSessionStore, SessionStore, "append_messages")
"""

from __future__ import annotations

import inspect


def async_methods(interface: type) -> list[str]:
    """The public async methods an interface declares, sorted."""
    return sorted(
        name
        for name, member in vars(interface).items()
        if inspect.iscoroutinefunction(member) and not name.startswith("_")
    )


def assert_implements(implementation: type, interface: type, method: str) -> None:
    ours = getattr(implementation, method)
    assert inspect.iscoroutinefunction(ours), f"{implementation.__name__}.{method} is not async"
    expected = inspect.signature(getattr(interface, method)).parameters
    got = inspect.signature(ours).parameters
    assert [(p.name, p.default) for p in got.values()] == [
        (p.name, p.default) for p in expected.values()
    ]
