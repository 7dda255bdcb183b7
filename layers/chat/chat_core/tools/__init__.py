"""The tools the model can call. `default_tools()` is what a turn offers."""

from __future__ import annotations

from .base import Tool, ToolContext, ToolError, ToolOutcome, ToolRegistry


def default_tools(*, anonymous: bool = False) -> ToolRegistry:
    """All tools; for an anonymous user not the ones that need an identity, so the model is
    not offered what can only fail."""
    from .create_agent import CreateAgent
    from .find_agent import FindAgent
    from .understanding import UpdateBusinessUnderstanding

    tools: list[Tool] = [FindAgent(), CreateAgent()]
    if not anonymous:
        tools.append(UpdateBusinessUnderstanding())
    return ToolRegistry(tools)


__all__ = ["Tool", "ToolContext", "ToolError", "ToolOutcome", "ToolRegistry", "default_tools"]
