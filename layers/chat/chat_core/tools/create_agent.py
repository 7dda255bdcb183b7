"""`create_agent`: the reference delegated long-running tool.

    POST {CHAT_AGENT_GENERATOR_URL}
    {"operation_id", "task_id", "callback_url", "description", "name", "session_id", "user_id"}
    → 202 Accepted; later the generator calls `callback_url` with a signed webhook.

Building an agent takes minutes in an external service. The turn gets its own operation
task and answers at once that the operation started; the service reports back to the
webhook, which finishes the job (see chat_core.completions). Anything but a 202 is a tool
error the user sees.

The generator's result carries the agent it built (`agent_json`). Before the reader and the
model see it, the agent is saved to the user's library (once per operation, whatever the
webhook's retries) and the result becomes `agent_saved` with the link to open it. An
anonymous user has no library: they get the agent itself (`agent_generated`).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from pydantic import BaseModel, Field

from ..settings import get_settings
from ..users import LibraryAgent, get_user_store
from .base import Tool, ToolContext, ToolError

# Library ids derive from the operation id, so a redelivered result saves nothing new.
_LIBRARY_IDS = uuid.UUID("5b0e4c8e-2f7d-4d55-9d0f-6f1c2a7e9b31")


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

    async def postprocess_result(self, ctx: ToolContext, result: Any) -> Any:
        agent_json = result.get("agent_json") if isinstance(result, dict) else None
        if not isinstance(agent_json, dict):
            return result  # nothing built to keep: the result as the generator gave it
        name = str(agent_json.get("name") or "Your new agent")
        description = agent_json.get("description")
        if ctx.user_id is None:
            return {
                "type": "agent_generated",
                "agent_name": name,
                "description": description,
                "agent_json": agent_json,
                "message": f"{name} is built. Sign in to keep agents in a library.",
            }
        agent = await get_user_store().save_agent(
            ctx.user_id,
            LibraryAgent(
                agent_id=str(uuid.uuid5(_LIBRARY_IDS, ctx.operation_id or ctx.tool_call_id)),
                name=name,
                description=str(description) if description else None,
                graph=agent_json,
                operation_id=ctx.operation_id,
                session_id=ctx.session_id,
            ),
        )
        return {
            "type": "agent_saved",
            "agent_id": agent.agent_id,
            "agent_name": agent.name,
            "description": agent.description,
            "library_agent_id": agent.agent_id,
            "library_agent_link": agent.link,
            "message": f"{agent.name} is saved to your library.",
        }
