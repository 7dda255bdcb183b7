"""Redis connection factory: one client per process and event loop.

    from chat_core.redis_client import get_redis
    r = get_redis()                 # redis.asyncio.Redis or RedisCluster, bound to this loop
    await r.ping()

`redis://` and `rediss://` (TLS) URLs, standalone or cluster mode (`CHAT_REDIS_MODE`).
asyncio connections belong to the loop that opened them, so clients are cached per loop:
Lambda (Mangum or our `run()` helper) keeps one loop per execution environment and
therefore one client; tests get a fresh client with every fresh loop.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from .settings import Settings, get_settings

AsyncRedis: TypeAlias = "redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster"
SyncRedis: TypeAlias = "redis.Redis | redis.cluster.RedisCluster"

_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]" = (
    weakref.WeakKeyDictionary()
)
_sync_client: Any = None


def client_options(settings: Settings) -> dict[str, Any]:
    # A blocking XREAD longer than the socket timeout would surface as a TimeoutError,
    # so the read timeout always leaves room for the longest block we issue.
    socket_timeout = max(settings.redis_socket_timeout, settings.read_block_ms / 1000 + 5)
    options: dict[str, Any] = {
        "decode_responses": True,
        "protocol": settings.redis_protocol,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_timeout": socket_timeout,
        "max_connections": settings.redis_max_connections,
    }
    if settings.redis_mode == "standalone":
        options["health_check_interval"] = settings.redis_health_check_interval
    return options


def _url(settings: Settings) -> str:
    if not settings.redis_url:
        raise RuntimeError(
            "CHAT_REDIS_URL is not set. The dev server and the tests start an embedded "
            "redis-server and set it; in AWS point it at ElastiCache (rediss://...)."
        )
    return settings.redis_url


def create_async_client(settings: Settings | None = None) -> Any:
    settings = settings or get_settings()
    if settings.redis_mode == "cluster":
        return redis.asyncio.cluster.RedisCluster.from_url(
            _url(settings), **client_options(settings)
        )
    return redis.asyncio.Redis.from_url(_url(settings), **client_options(settings))


def create_sync_client(settings: Settings | None = None) -> Any:
    settings = settings or get_settings()
    if settings.redis_mode == "cluster":
        return redis.cluster.RedisCluster.from_url(_url(settings), **client_options(settings))
    return redis.Redis.from_url(_url(settings), **client_options(settings))


def get_redis() -> Any:
    """The async client of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = create_async_client()
    return client


def get_sync_redis() -> Any:
    global _sync_client
    if _sync_client is None:
        _sync_client = create_sync_client()
    return _sync_client


async def close_redis() -> None:
    """Close the running loop's client (tests, dev server shutdown)."""
    client = _async_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def reset_clients() -> None:
    """Forget every cached client, e.g. after the settings changed."""
    global _sync_client
    _async_clients.clear()
    if _sync_client is not None:
        _sync_client.close()
        _sync_client = None


class LuaScript:
    """A Lua script registered lazily and always run on the current loop's client.

        INCR_TWO = LuaScript("return {redis.call('INCR', KEYS[1]), redis.call('INCR', KEYS[2])}")
        await INCR_TWO(keys=["a{t}", "b{t}"], args=[])

    redis-py retries NOSCRIPT with EVAL, which ElastiCache needs after a failover. Never
    queue scripts in pipelines: a cluster pipeline would not load them first.
    """

    def __init__(self, body: str) -> None:
        self.body = body
        self._script: Any = None

    async def __call__(self, keys: list[str], args: Any = ()) -> Any:
        client = get_redis()
        if self._script is None:
            self._script = client.register_script(self.body)
        return await self._script(keys=keys, args=list(args), client=client)


def is_cluster(client: Any) -> bool:
    return isinstance(client, (redis.asyncio.cluster.RedisCluster, redis.cluster.RedisCluster))
