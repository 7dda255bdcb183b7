"""Glue between Lambda's synchronous handlers and the async core.

    handler = http_handler(create_app(streams.router))     # API Gateway → Mangum → FastAPI
    def handler(event, context): return run(sweep())        # anything else

asyncio clients (Redis, the model) belong to the loop that opened them, so every function
keeps one event loop for the life of its execution environment: connections are reused
across invocations instead of being reopened, and never used from a dead loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from fastapi import FastAPI
from mangum import Mangum

T = TypeVar("T")
_loop: asyncio.AbstractEventLoop | None = None


def event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_loop)
    return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    return event_loop().run_until_complete(coro)


def http_handler(app: FastAPI) -> Mangum:
    # Mangum runs lifespan per invocation, so the app has none; it reuses the current loop.
    event_loop()
    return Mangum(app, lifespan="off")
