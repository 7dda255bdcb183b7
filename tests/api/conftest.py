"""Fixtures of the API tests: signing in, and the HTTP API behind Mangum as on AWS."""

from __future__ import annotations

import pytest
from chat_core import aws
from chat_core.api.app import ALL_ROUTERS, create_app
from chat_core.worker.dispatch import set_dispatcher

from tests.api.gateway import WorkerLambda, http_api_event
from tests.api.helpers import SECRET, bearer


@pytest.fixture
def auth(settings_env):
    """`auth("alice")` → the headers of a signed-in Alice (HS256 with the test secret)."""
    settings_env(jwt_secret=SECRET)
    return bearer


@pytest.fixture
def gateway(model, settings_env):
    """`gateway(method, path, ...)` → (status, headers, body): the whole API through Mangum
    with API Gateway events and buffered long-poll reads, the way the HTTP API functions
    serve it on AWS. The worker runs beside, as its own Lambda would."""
    settings_env(read_mode="buffered", long_poll_seconds=1.5, long_poll_linger_ms=100)
    worker = WorkerLambda()
    set_dispatcher(worker)
    handler = aws.http_handler(create_app(*ALL_ROUTERS))

    def call(method, path, **kw):
        response = handler(http_api_event(method, path, **kw), None)
        return response["statusCode"], response.get("headers", {}), response.get("body") or ""

    yield call
    worker.join()
