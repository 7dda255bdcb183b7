"""`create_agent`: the reference delegated long-running tool.

    POST {CHAT_AGENT_GENERATOR_URL}
    {"operation_id", "task_id", "callback_url", "description", "name", "session_id", "user_id"}
    → 202 Accepted; later the generator calls `callback_url` with a signed webhook.

Building an agent takes minutes in an external service. The turn gets its own operation
task and answers at once that the operation started; the service reports back to the
webhook, which finishes the job (see chat_core.completions). Anything but a 202 is a tool
error the user sees.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, Field

from ..settings import get_settings
from .base import Tool, ToolContext, ToolError


def callback_url(operation_id: str) -> str:
    base = get_settings().public_base_url.rstrip("/")
    return f"{base}/api/chat/operations/{operation_id}/complete"


class CreateAgent(Tool):
    name = "create_agent"
    description = (
        "Build a new AI agent from a description of what it should do. Building takes a few "
        "minutes: the result arrives later, and you will be asked to continue then. Use it "
        "when the user wants a new agent and find_agent found nothing suitable."
    )
    long_running = True
    delegated = True

    class Args(BaseModel):
        description: str = Field(
            min_length=3, max_length=4000, description="What the agent should do"
        )
        name: str | None = Field(
            None, max_length=100, description="A name for the agent, if the user gave one"
        )

    async def run(self, ctx: ToolContext, args: Args) -> dict[str, Any]:
        url = get_settings().agent_generator_url
        if not url:
            raise ToolError(
                "Creating agents is not available on this server: no agent generator is configured."
            )
        payload = {
            "operation_id": ctx.operation_id,
            "task_id": ctx.task_id,
            "callback_url": callback_url(ctx.operation_id or ""),
            "description": args.description,
            "name": args.name,
            "session_id": ctx.session_id,
            "user_id": ctx.user_id,
        }
        try:
            async with httpx.AsyncClient(timeout=15.0) as client:
                response = await client.post(url, json=payload)
        except httpx.HTTPError as exc:
            raise ToolError(
                f"The agent generator could not be reached ({type(exc).__name__})."
            ) from exc
        if response.status_code != 202:
            raise ToolError(
                f"The agent generator refused the request (HTTP {response.status_code}): "
                f"{response.text[:200]}"
            )
        return {"status": "accepted", "operation_id": ctx.operation_id}
