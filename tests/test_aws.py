"""chat_core.aws: one event loop for the life of a Lambda execution environment, so clients
opened by one invocation serve the next; a buffered HTTP handler serves API Gateway events
through the app."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import redis
from chat_core import aws
from chat_core.observability import count, logger
from chat_core.redis_client import close_redis, get_redis
from fastapi import FastAPI

from tests.api.gateway import http_api_event


def lambda_context(name: str = "chat-test") -> SimpleNamespace:
    return SimpleNamespace(
        function_name=name,
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        aws_request_id=str(uuid.uuid4()),
    )


def test_invocations_share_one_loop_and_its_clients(redis_target) -> None:
    async def invocation() -> object:
        client = get_redis()
        await client.incr("invocations")
        return client

    first, second = aws.run(invocation()), aws.run(invocation())
    assert first is second  # the connection pool of the first invocation is reused
    assert redis.Redis.from_url(redis_target.url).get("invocations") == b"2"
    aws.run(close_redis())


def test_a_closed_loop_is_replaced() -> None:
    loop = aws.event_loop()
    loop.close()
    assert aws.event_loop() is not loop and aws.run(_answer()) == 42


async def _answer() -> int:
    return 42


def test_the_buffered_handler_serves_an_api_gateway_event() -> None:
    app = FastAPI()

    @app.get("/api/chat/hello")
    async def hello(name: str) -> dict[str, str]:
        count("Greetings")  # flushed by the handler's metrics decorator
        return {"hello": name}

    handler = aws.buffered_handler(app)
    event = http_api_event("GET", "/api/chat/hello", query={"name": "lambda"})
    response = handler(event, lambda_context())
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"hello": "lambda"}
    again = handler(event, lambda_context())  # the same Mangum adapter, warm
    assert again["statusCode"] == 200

    # Powertools' context is on: the log lines of the request carry its correlation id.
    assert logger.get_correlation_id() == event["requestContext"]["requestId"]
