"""Redis connection factory: two clients per process and event loop, writers and readers.

    from chat_core.redis_client import get_redis, get_reader_redis
    r = get_redis()                 # redis.asyncio.Redis or RedisCluster, bound to this loop
    await r.ping()
    await get_reader_redis().xread(...)   # what stream readers send: their own pool

Readers and writers never share a pool, so a thousand readers cannot take the connection a
worker needs for its next publish, lease refresh or completion. Both pools wait for a free
connection (up to `redis_pool_timeout_seconds`) instead of failing at once when full.

`redis://` and `rediss://` (TLS) URLs, standalone or cluster mode (`CHAT_REDIS_MODE`).
asyncio connections belong to the loop that opened them, so clients are cached per loop:
Lambda (Mangum or our `run()` helper) keeps one loop per execution environment and
therefore one client; tests get a fresh client with every fresh loop.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from .settings import Settings, get_settings

AsyncRedis: TypeAlias = "redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster"

Role: TypeAlias = Literal["writer", "reader", "follower", "listener"]

_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Role, Any]] = (
    weakref.WeakKeyDictionary()
)
_closers: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, list[Callable[[], Awaitable[None]]]
] = weakref.WeakKeyDictionary()


class _WaitingRedisCluster(redis.asyncio.cluster.RedisCluster):
    """A cluster client whose commands wait for a connection instead of raising
    MaxConnectionsError when every pooled one is busy (redis-py's cluster pool cannot wait).
    At most `max_connections` commands are in flight, so no node's pool is ever exhausted
    by them."""

    def __init__(self, *args: Any, in_flight: int, pool_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(in_flight)
        self._pool_timeout = pool_timeout

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self._pool_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise redis.ConnectionError("No connection available.") from None
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self._slots.release()


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


def create_async_client(settings: Settings | None = None, role: Role = "writer") -> Any:
    settings = settings or get_settings()
    options = client_options(settings)
    if role == "reader":
        options["max_connections"] = settings.redis_reader_max_connections
    elif role in ("follower", "listener"):  # held for long: at most one per reader
        options["max_connections"] = settings.max_readers_per_process
    if settings.redis_mode == "cluster":
        # Pipelines take node connections outside the gate: leave them room.
        in_flight = options["max_connections"]
        options["max_connections"] = in_flight * 2
        return _WaitingRedisCluster.from_url(
            _url(settings),
            in_flight=in_flight,
            pool_timeout=settings.redis_pool_timeout_seconds,
            **options,
        )
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        _url(settings), timeout=settings.redis_pool_timeout_seconds, **options
    )
    return redis.asyncio.Redis.from_pool(pool)


def get_redis() -> Any:
    """The async client of the running event loop (created on first use): every write,
    and every read that is not a stream reader's."""
    return _loop_client("writer")


def get_reader_redis() -> Any:
    """The stream readers' client of the running event loop, on a pool of its own."""
    return _loop_client("reader")


async def follower_redis() -> Any:
    """On a cluster, the client of the fan-out's blocking reads (one per live task), apart
    from the readers' pool so that many live tasks never queue replays behind them."""
    client = _loop_client("follower")
    await asyncio.shield(client.initialize())
    return client


async def listener_redis() -> Any:
    """The client pub/sub listeners take their connection from and hold it: never the
    writers' or the readers' bounded pools on a single server. (A cluster's pub/sub takes
    node connections outside the commands' gate, so the writers' client serves it.)"""
    if get_settings().redis_mode == "cluster":
        client = get_redis()
        # Its pub/sub needs the slot map, which a client that sent nothing yet lacks.
        await asyncio.shield(client.initialize())
        return client
    return _loop_client("listener")


async def reader_redis() -> Any:
    """`get_reader_redis()`, ready for concurrent use: a fresh cluster client's first
    commands, sent at once, race its slot-map initialization in redis-py (a connection is
    closed under one of them), and its pub/sub needs the slot map before anything."""
    client = get_reader_redis()
    if is_cluster(client):
        # Once; afterwards it returns at once. Shielded: an initialization cancelled halfway
        # (a caller's timeout) leaves redis-py's cluster client unusable.
        await asyncio.shield(client.initialize())
    return client


def _loop_client(role: Role) -> Any:
    clients = _async_clients.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(role)
    if client is None:
        client = clients[role] = create_async_client(role=role)
    return client


async def close_redis() -> None:
    """Close the running loop's clients (tests, dev server shutdown), after what uses them."""
    loop = asyncio.get_running_loop()
    for closer in _closers.pop(loop, []):
        await closer()
    clients = _async_clients.pop(loop, {})
    for client in clients.values():
        await client.aclose()


def on_close(closer: Callable[[], Awaitable[None]]) -> None:
    """Run `closer` in `close_redis()` of the running loop, before its clients close (the
    fan-out stops its reads this way)."""
    _closers.setdefault(asyncio.get_running_loop(), []).append(closer)


def reset_clients() -> None:
    """Forget every cached client, e.g. after the settings changed."""
    _async_clients.clear()


def is_cluster(client: Any) -> bool:
    return isinstance(client, (redis.asyncio.cluster.RedisCluster, redis.cluster.RedisCluster))
