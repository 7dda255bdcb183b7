"""chat_core.redis_client: one writer and one reader client per event loop, on pools of their
own; a full pool waits for a connection (up to its timeout) instead of failing at once;
standalone and cluster alike."""

from __future__ import annotations

import asyncio

import pytest
import redis
from chat_core.redis_client import (
    client_options,
    close_redis,
    get_reader_redis,
    get_redis,
    listener_redis,
)
from chat_core.settings import Settings

pytestmark = pytest.mark.both


async def test_one_writer_and_one_reader_client_per_loop(redis_target) -> None:
    assert get_redis() is get_redis()
    assert get_reader_redis() is get_reader_redis()
    assert get_redis() is not get_reader_redis()
    await get_redis().set("k", "written")
    assert await get_reader_redis().get("k") == "written"


def test_each_event_loop_gets_its_own_clients(redis_target) -> None:
    async def use() -> object:
        client = get_redis()
        await client.ping()
        await close_redis()
        return client

    assert asyncio.run(use()) is not asyncio.run(use())


async def test_a_full_pool_waits_for_a_connection(redis_target, settings_env) -> None:
    settings_env(redis_max_connections=1, redis_pool_timeout_seconds=30)
    client = get_redis()
    await client.ping()  # a cluster client learns its slot map first
    holding = asyncio.create_task(client.blpop(["{q}:nothing"], timeout=0.5))  # the one connection
    await asyncio.sleep(0.1)
    assert await client.set("{q}:k", "v") is True  # waited for it, did not fail
    assert await holding is None


async def test_a_pool_full_past_its_timeout_fails_with_a_connection_error(
    redis_target, settings_env
) -> None:
    settings_env(redis_max_connections=1, redis_pool_timeout_seconds=0.2)
    client = get_redis()
    await client.ping()
    holding = asyncio.create_task(client.blpop(["{q}:nothing"], timeout=2))
    await asyncio.sleep(0.1)
    with pytest.raises(redis.ConnectionError):
        await client.set("{q}:k", "v")
    await holding


async def test_readers_never_take_the_writers_connections(redis_target, settings_env) -> None:
    settings_env(redis_reader_max_connections=1, redis_pool_timeout_seconds=0.2)
    reader = get_reader_redis()
    await reader.ping()
    blocked = asyncio.create_task(reader.blpop(["{q}:nothing"], timeout=1))
    await asyncio.sleep(0.1)
    assert await get_redis().set("{q}:k", "v") is True  # the writers' pool is untouched
    await blocked


async def test_a_listener_on_a_fresh_client_can_subscribe(redis_target) -> None:
    pubsub = (await listener_redis()).pubsub()  # nothing was sent on this loop before
    await pubsub.subscribe("chat-test/channel")
    await get_redis().publish("chat-test/channel", "hello")
    messages = [await pubsub.get_message(timeout=5) for _ in range(2)]
    assert [(m["type"], m["data"]) for m in messages] == [("subscribe", 1), ("message", "hello")]
    await pubsub.aclose()


def test_the_read_timeout_outlasts_the_longest_blocking_read() -> None:
    options = client_options(Settings(redis_socket_timeout=2, read_block_ms=20_000))
    assert options["socket_timeout"] >= 20 + 1


async def test_without_a_url_the_error_says_what_to_set(settings_env) -> None:
    with pytest.raises(RuntimeError, match="CHAT_REDIS_URL is not set"):
        get_redis()
