"""chat_dev.fake_agent_generator: the stand-in for the external agent generator answers 202 at
once, then posts a Standard-Webhooks-signed completion to the callback URL it was given;
"[fail]" in the description makes it report a failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from chat_dev.fake_agent_generator import FakeAgentGenerator
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook

from tests.fakes import WEBHOOK_SECRET, WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
async def generator() -> AsyncIterator[FakeAgentGenerator]:
    fake = FakeAgentGenerator(webhook_secret=WEBHOOK_SECRET, delay_seconds=0)
    yield fake
    await fake.aclose()


async def post(generator: FakeAgentGenerator, body: dict) -> httpx.Response:
    app = FastAPI()
    app.include_router(generator.router)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://dev"
    ) as client:
        return await client.post("/dev/agent-generator", json=body)


async def delivered(receiver: WebhookReceiver) -> dict:
    """The one completion delivered, its signature checked as the chat's webhook does."""
    for _ in range(500):
        if receiver.deliveries:
            break
        await asyncio.sleep(0.01)
    [(headers, body)] = receiver.deliveries
    return Webhook(WEBHOOK_SECRET).verify(body, headers)


def request(receiver: WebhookReceiver, description: str) -> dict:
    return {
        "operation_id": "op-1",
        "task_id": "task-1",
        "callback_url": receiver.url,
        "description": description,
    }


async def test_it_accepts_at_once_while_the_build_takes_its_time(generator, receiver):
    generator.delay_seconds = 60  # far past the test: the answer cannot wait for the build
    answer = await post(generator, request(receiver, "Chase my unpaid invoices every Monday"))
    assert answer.status_code == 202
    assert answer.json() == {"status": "accepted", "operation_id": "op-1", "eta_seconds": 60}
    assert receiver.deliveries == []  # not yet: it takes its time


async def test_then_it_delivers_a_signed_built_agent(generator, receiver):
    answer = await post(generator, request(receiver, "Chase my unpaid invoices every Monday"))
    assert answer.status_code == 202
    completion = await delivered(receiver)
    assert completion["operation_id"] == "op-1" and completion["success"] is True
    agent = completion["result"]["agent_json"]
    assert completion["result"]["type"] == "agent_generated"
    assert agent["name"] == "Chase My Unpaid Agent"
    assert agent["description"] == "Chase my unpaid invoices every Monday"


async def test_a_description_marked_fail_is_reported_as_a_failure(generator, receiver):
    await post(generator, request(receiver, "An agent that always breaks [FAIL]"))
    completion = await delivered(receiver)
    assert completion["success"] is False and "could not build" in completion["error"]
    assert "result" not in completion


async def test_a_request_without_a_callback_is_refused(generator, receiver):
    body = request(receiver, "An agent")
    del body["callback_url"]
    answer = await post(generator, body)
    assert answer.status_code == 422 and "callback_url" in answer.text


async def test_closing_it_cancels_the_deliveries_still_waiting(generator, receiver):
    generator.delay_seconds = 60
    assert (await post(generator, request(receiver, "An agent"))).status_code == 202
    await generator.aclose()
    assert receiver.deliveries == []
