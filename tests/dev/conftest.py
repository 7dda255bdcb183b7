"""The scripted model server (the suite's one, tests/conftest.py) emptied before each test,
without the Redis and settings the chat's `model` fixture brings, and an SDK client per test
(clients belong to the test's event loop)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from chat_dev.scripted_model import ScriptedModelServer
from openai import AsyncOpenAI


@pytest.fixture
def model(scripted_server: ScriptedModelServer) -> ScriptedModelServer:
    scripted_server.clear()
    scripted_server.delay_ms = 0
    return scripted_server


@pytest.fixture
async def client(model: ScriptedModelServer) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=model.base_url, api_key="sk-any", max_retries=0) as sdk:
        yield sdk
