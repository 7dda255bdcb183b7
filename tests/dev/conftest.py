"""One scripted model server for the module's tests, emptied before each test, and an SDK
client per test (clients belong to the test's event loop)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from chat_dev.scripted_model import ScriptedModelServer
from openai import AsyncOpenAI


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def model(scripted_server: ScriptedModelServer) -> ScriptedModelServer:
    scripted_server.clear()
    scripted_server.delay_ms = 0
    return scripted_server


@pytest.fixture
async def client(model: ScriptedModelServer) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=model.base_url, api_key="sk-any", max_retries=0) as sdk:
        yield sdk
