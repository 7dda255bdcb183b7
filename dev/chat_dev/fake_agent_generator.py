"""A stand-in for the external agent generator, so `create_agent` works on a laptop.

    generator = FakeAgentGenerator(webhook_secret="whsec_…", delay_seconds=4)
    app.include_router(generator.router)            # POST /dev/agent-generator
    ...
    await generator.aclose()                        # on shutdown: no webhook left in flight

It behaves like the real service as `create_agent` sees it: it answers 202 at once, then
some seconds later POSTs a Standard-Webhooks-signed completion to the `callback_url` it was
given, with a made-up agent as the result (`agent_json`, which the chat saves to the user's
library). A description containing "[fail]" makes it report
a failure instead, so the error path can be seen in the page too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from standardwebhooks.webhooks import Webhook

logger = logging.getLogger(__name__)

FAIL_MARK = "[fail]"


class GenerationRequest(BaseModel):
    """What `create_agent` posts (chat_core.tools.create_agent)."""

    model_config = ConfigDict(extra="ignore")

    operation_id: str = Field(min_length=1, max_length=64)
    task_id: str = Field(min_length=1, max_length=64)
    callback_url: str = Field(min_length=1, max_length=2048)
    description: str = Field(min_length=1, max_length=4000)
    name: str | None = None
    session_id: str | None = None
    user_id: str | None = None


class GenerationAccepted(BaseModel):
    status: str
    operation_id: str
    eta_seconds: float


class FakeAgentGenerator:
    def __init__(self, webhook_secret: str, delay_seconds: float = 4.0) -> None:
        self.webhook = Webhook(webhook_secret)
        self.delay_seconds = delay_seconds
        # Strong references: asyncio would otherwise let a pending delivery be collected.
        self._deliveries: set[asyncio.Task[None]] = set()
        self.router = APIRouter(prefix="/dev", tags=["dev"])
        self.router.add_api_route(
            "/agent-generator",
            self.accept,
            methods=["POST"],
            status_code=202,
            response_model=GenerationAccepted,
        )

    async def accept(self, body: GenerationRequest) -> JSONResponse:
        task = asyncio.create_task(self._deliver_later(body), name=f"agent-gen:{body.operation_id}")
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)
        return JSONResponse(
            {
                "status": "accepted",
                "operation_id": body.operation_id,
                "eta_seconds": self.delay_seconds,
            },
            status_code=202,
        )

    async def _deliver_later(self, request: GenerationRequest) -> None:
        await asyncio.sleep(self.delay_seconds)
        payload = json.dumps(completion_for(request))
        message_id = f"msg_{uuid.uuid4().hex}"
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self.webhook.sign(message_id, now, payload),
        }
        try:
            async with httpx.AsyncClient(timeout=15.0) as client:
                response = await client.post(request.callback_url, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            logger.warning("fake agent generator: webhook delivery failed: %r", exc)
            return
        logger.info(
            "fake agent generator: webhook for %s answered %s",
            request.operation_id,
            response.status_code,
        )

    async def aclose(self) -> None:
        tasks = list(self._deliveries)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def completion_for(request: GenerationRequest) -> dict[str, Any]:
    """The webhook body: `{operation_id, success, result}` or `{operation_id, success: false,
    error}`. The operation id is inside what is signed, binding the delivery to it."""
    if FAIL_MARK in request.description.lower():
        return {
            "operation_id": request.operation_id,
            "success": False,
            "error": "The agent generator could not build this agent (a simulated failure).",
        }
    name = request.name or _name_from(request.description)
    return {
        "operation_id": request.operation_id,
        "success": True,
        "result": {
            "type": "agent_generated",
            "agent_json": {
                "name": name,
                "description": request.description[:300],
                "nodes": [
                    {"id": "trigger", "block": "schedule", "input": {"every": "day"}},
                    {"id": "work", "block": "llm", "input": {"prompt": request.description[:300]}},
                ],
                "links": [{"from": "trigger", "to": "work"}],
            },
        },
    }


_STOP = frozenset(
    """a an the agent that which who me for to please create build make generate design set up
    can you i want need""".split()
)


def _name_from(description: str) -> str:
    words = [w for w in re.findall(r"[A-Za-z][\w'-]*", description) if w.lower() not in _STOP]
    core = " ".join(w.capitalize() for w in words[:3]) or "Helpful"
    return f"{core} Agent"
