"""What the assistant keeps per user beside their sessions: the business understanding it
formats into the system prompt, and the library of agents built for them.

    from chat_core.users import get_user_store
    store = get_user_store()            # Redis or DynamoDB, as CHAT_SESSION_STORE says

Built once per event loop, like the session store, since its clients belong to the loop.
"""

from __future__ import annotations

import asyncio
import weakref

from ..settings import get_settings
from .models import BusinessUnderstanding, LibraryAgent
from .store import UserStore

__all__ = ["BusinessUnderstanding", "LibraryAgent", "UserStore", "get_user_store"]

_stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, UserStore] = (
    weakref.WeakKeyDictionary()
)


def get_user_store() -> UserStore:
    loop = asyncio.get_running_loop()
    store = _stores.get(loop)
    if store is None:
        if get_settings().session_store == "redis":
            from .redis_store import RedisUserStore

            store = RedisUserStore()
        else:
            from .dynamodb_store import DynamoDBUserStore

            store = DynamoDBUserStore()
        _stores[loop] = store
    return store
