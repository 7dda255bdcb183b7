"""Glue between Lambda's synchronous handlers and the async core.

    handler = buffered_handler(create_app(sessions.router))  # API Gateway → Mangum → FastAPI
    def handler(event, context): return run(sweep())          # anything else

asyncio clients (Redis, the model) belong to the loop that opened them, so every function
keeps one event loop for the life of its execution environment: connections are reused
across invocations instead of being reopened, and never used from a dead loop.

Mangum is imported on a buffered handler's first invocation: the worker and the sweeper
import this module, and the streaming functions (uvicorn) define a buffered handler they do
not use unless ReadMode=buffered; none of them pays for it at cold start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .observability import logger, metrics, tracer

if TYPE_CHECKING:
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
    from mangum import Mangum

    # Mangum runs lifespan per invocation, so the app has none; it reuses the current loop.
    event_loop()
    return Mangum(app, lifespan="off")


LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def buffered_handler(
    app: FastAPI, *, correlation_id_path: str = "requestContext.requestId"
) -> LambdaHandler:
    """The Lambda handler of an HTTP function behind a buffered API Gateway integration:
    Powertools context, cold-start metric and tracing around Mangum."""
    serve: Mangum | None = None

    @logger.inject_lambda_context(correlation_id_path=correlation_id_path)
    @tracer.capture_lambda_handler(capture_response=False)  # responses carry the conversation
    @metrics.log_metrics(capture_cold_start_metric=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal serve
        if serve is None:
            serve = http_handler(app)
        return serve(event, context)

    return handler
