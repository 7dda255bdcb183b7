"""chat_core.events: the event bus on a real Redis, standalone, a 6.2 cluster (plain pub/sub)
and a Redis 7 cluster (sharded pub/sub)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import redis
from chat_core.events import AsyncEventBus, PayloadTooLarge
from chat_core.redis_client import get_redis, is_cluster
from pydantic import BaseModel


def on_every_topology(test):
    return pytest.mark.both(pytest.mark.redis7(pytest.mark.valkey(test)))


class Note(BaseModel):
    session_id: str
    text: str


async def listen_in_background(bus: AsyncEventBus, key: str, count: int) -> asyncio.Task:
    async def collect() -> list:
        events = []
        async for event in bus.listen_events(key):
            events.append(event)
            if len(events) == count:
                return events
        return events

    task = asyncio.create_task(collect())
    await asyncio.sleep(0.2)  # let SUBSCRIBE reach the server before anything is published
    return task


@on_every_topology
async def test_an_event_reaches_its_listener(redis_target):
    bus = AsyncEventBus("notes", Note)
    listener = await listen_in_background(bus, "user-1", 2)
    await bus.publish_event(Note(session_id="s1", text="one"), "user-1")
    await bus.publish_event(Note(session_id="s9", text="other user"), "user-2")
    await bus.publish_event(Note(session_id="s1", text="two"), "user-1")
    assert await asyncio.wait_for(listener, 5) == [
        Note(session_id="s1", text="one"),
        Note(session_id="s1", text="two"),
    ]
    await bus.close()


async def test_the_channel_is_bus_slash_key_and_the_message_wraps_the_payload(redis_target):
    raw = redis.Redis.from_url(redis_target.url).pubsub()
    raw.subscribe("notes/user-1")
    raw.get_message(timeout=1)
    await AsyncEventBus("notes", Note).publish_event(Note(session_id="s", text="t"), "user-1")
    message = raw.get_message(timeout=2)
    assert message["channel"] == b"notes/user-1"
    assert json.loads(message["data"]) == {"payload": {"session_id": "s", "text": "t"}}
    raw.close()


@on_every_topology
async def test_a_key_with_a_star_subscribes_by_pattern(redis_target):
    bus = AsyncEventBus("notes", Note)
    if redis_target.sharded:
        # Sharded pub/sub has no patterns; the bus says so instead of going silent.
        with pytest.raises(ValueError, match="CHAT_PUBSUB_MODE=classic"):
            await anext(bus.listen_events("user-*"))
        return
    listener = await listen_in_background(bus, "user-*", 2)
    await bus.publish_event(Note(session_id="a", text="1"), "user-1")
    await bus.publish_event(Note(session_id="b", text="2"), "user-2")
    await bus.publish_event(Note(session_id="c", text="3"), "admin")
    assert [e.session_id for e in await asyncio.wait_for(listener, 5)] == ["a", "b"]


@on_every_topology
async def test_a_message_over_the_size_limit_arrives_as_a_placeholder(redis_target):
    bus = AsyncEventBus("notes", Note, max_message_bytes=200)
    listener = await listen_in_background(bus, "user-1", 2)
    await bus.publish_event(Note(session_id="s", text="x" * 1000), "user-1")
    await bus.publish_event(Note(session_id="s", text="small"), "user-1")
    big, small = await asyncio.wait_for(listener, 5)
    assert isinstance(big, PayloadTooLarge)
    assert big.error == "Payload too large for Redis transmission"
    assert big.original_size_bytes > 1000 and big.max_size_bytes == 200
    assert small == Note(session_id="s", text="small")


@on_every_topology
async def test_wait_for_event_returns_the_event_or_none_after_the_timeout(redis_target):
    bus = AsyncEventBus("notes", Note)
    assert await bus.wait_for_event("quiet", timeout=0.3) is None

    async def publish_soon() -> None:
        await asyncio.sleep(0.3)
        await bus.publish_event(Note(session_id="s", text="hi"), "user-1")

    publisher = asyncio.create_task(publish_soon())
    assert await bus.wait_for_event("user-1", timeout=5) == Note(session_id="s", text="hi")
    await publisher


@on_every_topology
async def test_close_ends_the_listeners(redis_target):
    bus = AsyncEventBus("notes", Note)
    listener = await listen_in_background(bus, "user-1", 99)
    await bus.close()
    await bus.publish_event(Note(session_id="s", text="after close"), "user-1")
    assert await asyncio.wait_for(listener, 5) == []  # ended cleanly, heard nothing more


@on_every_topology
async def test_a_failed_publish_is_logged_not_raised(redis_target, settings_env, caplog):
    settings_env(
        redis_url="redis://127.0.0.1:1", redis_connect_timeout=0.2, redis_mode="standalone"
    )
    bus = AsyncEventBus("notes", Note)
    with caplog.at_level(logging.ERROR):
        await bus.publish_event(Note(session_id="s", text="lost"), "user-1")
    assert "could not publish an event" in caplog.text


@on_every_topology
async def test_the_cluster_mode_picks_sharded_pub_sub_only_where_the_servers_have_it(redis_target):
    bus = AsyncEventBus("notes", Note)
    sharded = await bus._sharded_mode()
    assert sharded is redis_target.sharded
    assert is_cluster(get_redis()) is (redis_target.mode == "cluster")
