"""chat_core.lua: the one way Lua scripts run. Keys and arguments by name, numbers as numbers,
the rest as a list; wrong names refused before Redis is asked; a script flushed from the
server (a failover) runs again; on a cluster as on one server."""

from __future__ import annotations

import pytest
import redis
from chat_core import lua
from chat_core.redis_client import get_redis

pytestmark = pytest.mark.both

ECHO = lua.Script(
    "first second",
    "count:n label",
    "redis.call('SET', first, label) redis.call('SET', second, count + 1)\n"
    "return {first, second, count + 1, label, #chunks, chunks[1] or ''}",
    rest="chunks",
)


async def test_keys_and_arguments_arrive_by_name(redis_target) -> None:
    reply = await ECHO(first="{t}:a", second="{t}:b", count="41", label="x", rest=["c1", "c2"])
    assert reply == ["{t}:a", "{t}:b", 42, "x", 2, "c1"]
    assert await get_redis().mget("{t}:a", "{t}:b") == ["x", "42"]


async def test_the_rest_may_be_empty(redis_target) -> None:
    assert await ECHO(first="{t}:a", second="{t}:b", count=0, label="y") == [
        "{t}:a",
        "{t}:b",
        1,
        "y",
        0,
        "",
    ]


@pytest.mark.parametrize(
    "named",
    [
        {"first": "{t}:a", "second": "{t}:b", "count": 1},  # label missing
        {"first": "{t}:a", "second": "{t}:b", "count": 1, "label": "x", "other": 2},
    ],
)
async def test_a_missing_or_unknown_name_is_refused_before_redis_is_asked(
    redis_target, named
) -> None:
    with pytest.raises(TypeError, match="script arguments"):
        await ECHO(**named)
    assert await get_redis().exists("{t}:a") == 0


async def test_a_rest_to_a_script_without_one_is_refused(redis_target) -> None:
    plain = lua.Script("key", "value", "return redis.call('SET', key, value)")
    with pytest.raises(TypeError):
        await plain(key="k", value="v", rest=["extra"])


async def test_a_script_flushed_from_the_server_runs_again(redis_target) -> None:
    await ECHO(first="{t}:a", second="{t}:b", count=1, label="before")
    for node in redis_target.node_urls:  # what a failover to a fresh replica looks like
        with redis.Redis.from_url(node) as client:
            client.script_flush()
    reply = await ECHO(first="{t}:a", second="{t}:b", count=1, label="after")
    assert reply[3] == "after"


def test_every_script_names_its_keys_and_arguments_at_the_top() -> None:
    scripts = [s for s in vars(lua).values() if isinstance(s, lua.Script)]
    assert len(scripts) > 20
    for script in scripts:
        named = len(script.key_names) + len(script.arg_names)
        lines = script.source.splitlines()
        assert [line.split()[1] for line in lines[:named]] == script.key_names + script.arg_names
        body = "\n".join(lines[named + (1 if script.rest else 0) :])
        assert "ARGV[" not in body and "KEYS[" not in body
