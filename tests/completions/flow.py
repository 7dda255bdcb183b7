"""A delegated operation as the page drives it, through the HTTP API: a turn whose model
calls `create_agent`, the signed webhook that finishes it, the operation's stream.

    op = await start_agent_creation(api, model)     # {"operation_id", "task_id", ...}
    await webhook(api, op["operation_id"], {"success": True, "result": {...}})
    chunks = await operation_stream(api, op["task_id"])
"""

from __future__ import annotations

import json

from chat_dev.scripted_model import ToolCall

from tests.chunk_rules import assert_valid_turn
from tests.conftest import sse_chunks
from tests.fakes import signed_headers


async def start_agent_creation(api, model, headers: dict[str, str] | None = None) -> dict:
    """A turn whose model calls create_agent (as the caller `headers` authenticate); returns
    what data-operation-started names, and the session."""
    session = (await api.post("/api/chat/sessions", headers=headers)).json()["id"]
    model.reply_tool_calls(
        ToolCall("create_agent", {"description": "Chase my unpaid invoices"}), stream=True
    )
    response = await api.post(
        f"/api/chat/sessions/{session}/stream",
        json={"message": "Build me an invoice agent"},
        headers=headers,
    )
    chunks = sse_chunks(response.text)
    assert_valid_turn(chunks)
    started = operation_started(chunks)
    assert started["tool_name"] == "create_agent"
    assert not [c for c in chunks if c["type"] == "tool-output-available"]  # the tool is pending
    return {**started, "session_id": session}


def operation_started(chunks: list[dict]) -> dict:
    """The operation a turn's stream says it started (its `data-operation-started`)."""
    data = next(c for c in chunks if c["type"] == "data-operation-started")["data"]
    return {
        "operation_id": data["operationId"],
        "task_id": data["taskId"],
        "tool_name": data["toolName"],
        "tool_call_id": data["toolCallId"],
    }


async def webhook(api, operation_id: str, payload: dict, webhook_id: str | None = None):
    body = json.dumps({"operation_id": operation_id, **payload}).encode()
    return await api.post(
        f"/api/chat/operations/{operation_id}/complete",
        content=body,
        headers=signed_headers(body, webhook_id=webhook_id),
    )


async def operation_stream(api, task_id: str) -> list[dict]:
    response = await api.get(f"/api/chat/tasks/{task_id}/stream")
    return sse_chunks(response.text)
