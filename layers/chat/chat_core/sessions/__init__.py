"""Chat sessions: the models, the store interface, and the store this deployment uses.

    from chat_core.sessions import ChatMessage, get_session_store
    store = get_session_store()                 # CHAT_SESSION_STORE picks redis | dynamodb
    session = await store.create(user_id="u1")
    await store.append_messages(session.session_id, [ChatMessage(role="user", content="Hi")])

The store is built once per event loop, like the Redis client, because the asyncio clients
it uses belong to the loop that opened them. Backends are imported only when chosen, so a
Redis deployment never imports boto3.
"""

from __future__ import annotations

import asyncio
import weakref

from ..settings import get_settings
from .models import ChatMessage, ChatSession, SessionSummary, Usage
from .store import SessionNotFound, SessionStore

__all__ = [
    "ChatMessage",
    "ChatSession",
    "SessionNotFound",
    "SessionStore",
    "SessionSummary",
    "Usage",
    "build_session_store",
    "get_session_store",
]

_stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SessionStore] = (
    weakref.WeakKeyDictionary()
)


def get_session_store() -> SessionStore:
    """The store of the running event loop (built on first use)."""
    loop = asyncio.get_running_loop()
    store = _stores.get(loop)
    if store is None:
        store = _stores[loop] = build_session_store()
    return store


def build_session_store() -> SessionStore:
    """A new store as the settings describe it: Redis, or DynamoDB behind the Redis read
    cache when `session_cache_ttl_seconds` > 0."""
    settings = get_settings()
    if settings.session_store == "redis":
        from .redis_store import RedisSessionStore

        return RedisSessionStore()

    from .dynamodb_store import DynamoDBSessionStore

    store: SessionStore = DynamoDBSessionStore()
    if settings.session_cache_ttl_seconds > 0:
        from .cache import CachedSessionStore

        store = CachedSessionStore(store)
    return store
