"""The tools the model can call. `default_tools()` is what a turn offers."""

from __future__ import annotations

from functools import cache

from .base import Tool, ToolContext, ToolError, ToolOutcome, ToolRegistry


@cache
def default_tools(*, anonymous: bool = False) -> ToolRegistry:
    """All tools; for an anonymous user not the ones that need an identity, so the model is
    not offered what can only fail. Built once per process: the tools hold no state, and
    building their schemas takes about 2 ms, which every turn and every webhook would pay
    before its model call."""
    from .create_agent import CreateAgent
    from .find_agent import FindAgent
    from .understanding import UpdateBusinessUnderstanding

    tools: list[Tool] = [FindAgent(), CreateAgent()]
    if not anonymous:
        tools.append(UpdateBusinessUnderstanding())
    return ToolRegistry(tools)


__all__ = ["Tool", "ToolContext", "ToolError", "ToolOutcome", "ToolRegistry", "default_tools"]
