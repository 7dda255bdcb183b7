"""The long-lived consumer never gives up: it survives Redis going away and coming back."""

from __future__ import annotations

import asyncio
import logging

import pytest
from chat_core import keys, registry, tasks
from chat_core.completions.consumer import ConsumerService
from chat_core.completions.inbox import CompletionMessage
from chat_core.redis_client import get_redis, reset_clients
from chat_core.sessions import get_session_store
from chat_core.sessions.models import ChatMessage
from chat_dev.embedded_redis import EmbeddedRedis


@pytest.mark.slow
async def test_the_consumer_survives_a_redis_restart_and_goes_back_to_work(
    model, settings_env, tmp_path, caplog
):
    server = EmbeddedRedis(data_dir=tmp_path / "redis", persist=True).start()
    service = ConsumerService(block_ms=200, max_backoff=0.5)
    try:
        settings_env(redis_url=server.url, redis_connect_timeout=0.3, redis_socket_timeout=1)
        reset_clients()
        session = await get_session_store().create(None)
        call = {
            "id": "c1",
            "type": "function",
            "function": {"name": "create_agent", "arguments": "{}"},
        }
        await get_session_store().append_messages(
            session.session_id,
            [
                ChatMessage(role="user", content="make me an agent"),
                ChatMessage(role="assistant", tool_calls=[call]),
                ChatMessage(
                    role="tool", tool_call_id="c1", content='{"type": "operation_pending"}'
                ),
            ],
        )
        task = await tasks.create_operation(
            session_id=session.session_id,
            user_id=None,
            tool_call_id="c1",
            tool_name="create_agent",
            tool_input={},
        )
        await tasks.await_operation(task)

        service.start()
        await asyncio.wait_for(service.healthy.wait(), 10)

        with caplog.at_level(logging.WARNING):
            server.stop_process()  # Redis goes away (its data stays on disk)
            await asyncio.sleep(2.0)
            assert not service.healthy.is_set()
            assert "cannot reach Redis; retrying" in caplog.text

        server.start()  # ... and comes back on the same port with the same data
        await asyncio.wait_for(service.healthy.wait(), 15)
        model.reply_text("Back in business.", stream=True)
        # Queued without waking a worker: the service is what finds it.
        message = CompletionMessage.now(task.operation_id, task.task_id, True, {"ok": True}, None)
        await get_redis().xadd(keys.COMPLETIONS, {"data": message.model_dump_json()})
        for _ in range(300):  # the continuation runs as a job of its own
            if (await registry.get_task(task.task_id)).status != "running":
                break
            await asyncio.sleep(0.1)
        assert (await registry.get_task(task.task_id)).status == "completed"
        stored = await get_session_store().get(session.session_id, None)
        assert (
            stored.messages[2].content == '{"ok": true}'
            and stored.messages[-1].content == "Back in business."
        )
    finally:
        await service.stop()
        server.stop()
