"""chat_core.tools: `default_tools()` is what a turn offers the model; an anonymous user is
not offered the tools that need an identity."""

from __future__ import annotations

from chat_core.tools import default_tools


def names(registry) -> list[str]:
    return [tool["function"]["name"] for tool in registry.openai_tools()]


def test_a_signed_in_user_is_offered_every_tool():
    assert names(default_tools()) == ["find_agent", "create_agent", "update_business_understanding"]


def test_an_anonymous_user_is_not_offered_what_needs_an_identity():
    offered = default_tools(anonymous=True)
    assert names(offered) == ["find_agent", "create_agent"]
    assert "update_business_understanding" not in offered


def test_only_create_agent_is_long_running_and_delegated():
    registry = default_tools()
    flags = {
        name: (registry.get(name).long_running, registry.get(name).delegated)
        for name in names(registry)
    }
    assert flags == {
        "find_agent": (False, False),
        "create_agent": (True, True),
        "update_business_understanding": (False, False),
    }
