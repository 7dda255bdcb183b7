"""Webhook completions arriving (chat_core.completions.inbox): queued durably, exactly once
per (operation, webhook id); a repeat gets the first answer back."""

from __future__ import annotations

import asyncio

import pytest

from tests.chunk_rules import text_of
from tests.completions.flow import (
    operation_stream,
    start_agent_creation,
    webhook,
)

pytestmark = [pytest.mark.both, pytest.mark.redis7, pytest.mark.valkey]


async def test_duplicate_and_repeated_webhooks_give_exactly_one_continuation(
    api, model, agent_generator
):
    op = await start_agent_creation(api, model)
    model.reply_text("Done, exactly once.", stream=True)
    payload = {"success": True, "result": {"agent_id": "a1"}}
    answers = await asyncio.gather(
        *[webhook(api, op["operation_id"], payload, webhook_id="msg_same") for _ in range(10)],
        *[webhook(api, op["operation_id"], payload) for _ in range(3)],
    )
    assert all(200 <= a.status_code < 300 for a in answers)
    chunks = await operation_stream(api, op["task_id"])
    await asyncio.sleep(0.3)  # let any duplicate processing finish, if there were one
    chunks = await operation_stream(api, op["task_id"])
    assert [c["type"] for c in chunks].count("tool-output-available") == 1
    assert text_of(chunks) == "Done, exactly once."
    assert (
        len([r for r in model.chat_requests if r.body.get("stream")]) == 2
    )  # turn + one continuation
