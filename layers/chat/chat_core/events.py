"""A pub/sub event bus over Redis, generic over a pydantic model.

    class TitleChanged(BaseModel):
        session_id: str
        title: str

    bus = AsyncEventBus("session-events", TitleChanged)
    await bus.publish_event(TitleChanged(session_id="s1", title="Trip to Rome"), "user-1")
    async for event in bus.listen_events("user-1"):      # channel "session-events/user-1"
        ...
    event = await bus.wait_for_event("user-*", timeout=5)  # a `*` key subscribes by pattern
    await bus.close()

Events are fire-and-forget notifications: a publish that fails is logged, never raised, so
a Redis hiccup never breaks the request that emitted the event. A message over the size
limit is replaced by a small `PayloadTooLarge` event, so listeners learn something was
dropped instead of the connection choking on it.

On a cluster whose servers have it (Redis 7+, ElastiCache Serverless) exact channels use
sharded pub/sub (SPUBLISH/SSUBSCRIBE), which stays on the channel's shard instead of being
broadcast to every node. Patterns cannot be sharded, so a pattern subscription there raises;
`CHAT_PUBSUB_MODE=classic` keeps plain pub/sub, which still works on a cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from . import keys
from .redis_client import get_redis, is_cluster, listener_redis
from .settings import get_settings

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class PayloadTooLarge(BaseModel):
    """Published in place of an event that exceeded `event_bus_max_message_bytes`."""

    model_config = ConfigDict(extra="forbid")

    event_type: Literal["error_comms_update"] = "error_comms_update"
    error: str = "Payload too large for Redis transmission"
    original_size_bytes: int
    max_size_bytes: int


class _BaseEventBus(Generic[M]):
    def __init__(self, name: str, model: type[M], *, max_message_bytes: int | None = None) -> None:
        self.event_bus_name = name
        self.Model = model
        self.max_message_bytes = max_message_bytes or get_settings().event_bus_max_message_bytes

        class Message(BaseModel):
            # PayloadTooLarge first: it only matches its own strict shape.
            payload: PayloadTooLarge | model  # type: ignore[valid-type]

        self.Message = Message

    def _channel(self, channel_key: str) -> str:
        return keys.channel(self.event_bus_name, channel_key)

    def _serialize_message(self, event: M, channel_key: str) -> tuple[str, str]:
        message = self.Message(payload=event).model_dump_json()
        size = len(message.encode())
        if size > self.max_message_bytes:
            logger.warning(
                "event of %d bytes on %s exceeds the %d byte limit; sending a placeholder",
                size,
                self._channel(channel_key),
                self.max_message_bytes,
            )
            placeholder = PayloadTooLarge(
                original_size_bytes=size, max_size_bytes=self.max_message_bytes
            )
            message = self.Message(payload=placeholder).model_dump_json()
        return message, self._channel(channel_key)

    def _deserialize_message(self, message: dict[str, Any] | None) -> M | PayloadTooLarge | None:
        if not message or message.get("type") not in ("message", "pmessage", "smessage"):
            return None
        try:
            return self.Message.model_validate_json(message["data"]).payload
        except ValidationError as exc:
            logger.error("dropping an unreadable event on %s: %s", message.get("channel"), exc)
            return None

    @staticmethod
    def _uses_sharded(client: Any, server_major: int) -> bool:
        mode = get_settings().pubsub_mode
        if mode == "auto":
            return is_cluster(client) and server_major >= 7
        return mode == "sharded"

    def _subscription(self, pubsub: Any, channel_key: str, sharded: bool) -> tuple[Any, Any]:
        """(subscribe call, receive call) of `pubsub` for this key: pattern, sharded or plain."""
        if "*" in channel_key:
            if sharded:
                raise ValueError(
                    f"pattern subscription {channel_key!r} is impossible with sharded pub/sub; "
                    "subscribe to exact keys, or set CHAT_PUBSUB_MODE=classic"
                )
            return pubsub.psubscribe, pubsub.get_message
        if sharded:
            receive = getattr(pubsub, "get_sharded_message", pubsub.get_message)
            return pubsub.ssubscribe, receive
        return pubsub.subscribe, pubsub.get_message


def _major_version(info: Any) -> int:
    # A cluster client answers INFO per node ({node: info}); any node tells the version.
    if isinstance(info, dict) and "redis_version" not in info:
        info = next(iter(info.values()), {})
    return int(str(info.get("redis_version", "0")).split(".")[0])


class AsyncEventBus(_BaseEventBus[M]):
    def __init__(self, name: str, model: type[M], *, max_message_bytes: int | None = None) -> None:
        super().__init__(name, model, max_message_bytes=max_message_bytes)
        self._pubsubs: set[Any] = set()
        self._sharded: bool | None = None

    async def _sharded_mode(self) -> bool:
        if self._sharded is None:
            client = get_redis()
            major = _major_version(await client.info("server")) if is_cluster(client) else 0
            self._sharded = self._uses_sharded(client, major)
        return self._sharded

    async def publish_event(self, event: M, channel_key: str) -> None:
        try:
            message, channel = self._serialize_message(event, channel_key)
            client = get_redis()
            if await self._sharded_mode():
                await client.spublish(channel, message)
            else:
                await client.publish(channel, message)
        except Exception:
            logger.exception("could not publish an event to %s; carrying on", channel_key)

    async def listen_events(self, channel_key: str) -> AsyncGenerator[M | PayloadTooLarge]:
        # Listeners hold their connection: never from the writers' or readers' pools.
        pubsub = (await listener_redis()).pubsub()
        subscribe, receive = self._subscription(pubsub, channel_key, await self._sharded_mode())
        self._pubsubs.add(pubsub)
        try:
            await subscribe(self._channel(channel_key))
            while True:
                try:
                    raw = await receive(ignore_subscribe_messages=True, timeout=1.0)
                except Exception:
                    if pubsub not in self._pubsubs:
                        return  # close() took the connection away: the listener is done
                    raise
                event = self._deserialize_message(raw)
                if event is not None:
                    yield event
        finally:
            self._pubsubs.discard(pubsub)
            await pubsub.aclose()

    async def wait_for_event(
        self, channel_key: str, timeout: float | None = None
    ) -> M | PayloadTooLarge | None:
        events = self.listen_events(channel_key)
        try:
            return await asyncio.wait_for(anext(events), timeout)
        except TimeoutError:
            return None
        finally:
            await events.aclose()

    async def close(self) -> None:
        pubsubs, self._pubsubs = self._pubsubs, set()
        for pubsub in pubsubs:
            try:
                await pubsub.aclose()
            except Exception:
                logger.warning("could not close a pub/sub connection", exc_info=True)
