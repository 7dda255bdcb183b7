"""chat_core.retry: riding out a Redis blip. A write is tried again while the server is away,
given up once the budget is spent, and an answer Redis gave is never retried."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from chat_core.retry import retrying
from chat_dev.embedded_redis import EmbeddedRedis
from redis.exceptions import ConnectionError, ResponseError


async def test_a_write_lands_once_the_server_is_back(tmp_path) -> None:
    server = EmbeddedRedis(data_dir=tmp_path / "redis").start()
    client = redis.asyncio.Redis.from_url(server.url, socket_connect_timeout=0.2)
    try:
        await client.ping()
        server.stop_process()  # a failover, a restart: the server is away for a moment
        # It comes back after the first attempts have failed.
        comes_back = asyncio.create_task(
            asyncio.to_thread(lambda: (time.sleep(0.3), server.start()))
        )
        assert await retrying(lambda: client.set("k", "v"), budget_seconds=30) is True
        await comes_back
        assert await client.get("k") == b"v"
    finally:
        await client.aclose()
        server.stop()


class WriteToNowhere:
    """A write to a server that has gone away, counting its attempts."""

    def __init__(self, url: str) -> None:
        self.client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=0.2)
        self.attempts = 0

    async def __call__(self) -> None:
        self.attempts += 1
        await self.client.set("k", "v")


@pytest.fixture
async def write_to_nowhere() -> AsyncIterator[WriteToNowhere]:
    server = EmbeddedRedis().start()
    url = server.url
    server.stop()  # nothing listens there any more
    write = WriteToNowhere(url)
    yield write
    await write.client.aclose()


async def test_past_the_budget_the_error_is_raised(write_to_nowhere) -> None:
    with pytest.raises(ConnectionError):
        await retrying(write_to_nowhere, budget_seconds=0.5)
    assert write_to_nowhere.attempts > 1


async def test_the_budget_defaults_to_the_setting(write_to_nowhere, settings_env) -> None:
    settings_env(redis_retry_seconds=0)
    with pytest.raises(ConnectionError):
        await retrying(write_to_nowhere)
    assert write_to_nowhere.attempts == 1  # no budget: the first failure is the answer


async def test_an_answer_from_redis_is_not_retried(redis_target) -> None:
    client = redis.asyncio.Redis.from_url(redis_target.url)
    attempts = 0

    async def refused() -> None:
        nonlocal attempts
        attempts += 1
        await client.eval("return redis.error_reply('NOPE refused')", 0)

    with pytest.raises(ResponseError, match="NOPE"):
        await retrying(refused, budget_seconds=5)
    assert attempts == 1
    await client.aclose()


@pytest.mark.parametrize("reply", ["CLUSTERDOWN The cluster is down", "TRYAGAIN Multiple keys"])
async def test_a_cluster_not_ready_yet_is_a_blip(redis_target, reply) -> None:
    # What a cluster answers while a restarted node rejoins or a slot moves: nothing ran.
    client = redis.asyncio.Redis.from_url(redis_target.url)
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await client.eval(f"return redis.error_reply('{reply}')", 0)
        return "written"

    assert await retrying(flaky, budget_seconds=5) == "written"
    assert attempts == 2
    await client.aclose()
