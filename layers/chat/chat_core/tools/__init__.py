"""The tools the model can call. `default_tools()` is what a turn offers."""

from __future__ import annotations

from .base import Tool, ToolContext, ToolError, ToolOutcome, ToolRegistry


def default_tools() -> ToolRegistry:
    from .create_agent import CreateAgent
    from .find_agent import FindAgent
    from .understanding import UpdateBusinessUnderstanding

    return ToolRegistry([FindAgent(), CreateAgent(), UpdateBusinessUnderstanding()])


__all__ = ["Tool", "ToolContext", "ToolError", "ToolOutcome", "ToolRegistry", "default_tools"]
