"""Hand a job to the worker: an async Lambda invoke on AWS, an asyncio task in the dev server.

    await get_dispatcher().dispatch(RunTurn(task_id=task.task_id))

Generation is never tied to an HTTP connection: a Lambda freezes when its response ends,
and Mangum buffers the whole response. So HTTP functions only create, dispatch and read.
`CHAT_DISPATCH=lambda` invokes `CHAT_WORKER_FUNCTION` with InvocationType=Event (the
worker's async config has no automatic retries; a duplicate delivery is still harmless,
because a job claims its task's lease first).

In-process dispatch runs the function its host installs (the dev server and the tests:
`set_dispatcher(InProcessDispatcher(run_job))`), so nothing here imports the worker, and
what dispatches (the chat turn, the completions consumer) never imports the model client
through this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from .. import background
from ..settings import get_settings
from .jobs import Job

logger = logging.getLogger(__name__)

MAX_ASYNC_PAYLOAD_BYTES = 1_048_576


class DispatchError(Exception):
    """The job could not be handed over; nothing will run it."""


class Dispatcher(Protocol):
    async def dispatch(self, job: Job) -> None: ...


class InProcessDispatcher:
    """Runs jobs as asyncio tasks of this process (dev server, tests)."""

    def __init__(self, run: Callable[[Job], Coroutine[Any, Any, Any]]) -> None:
        self.run = run

    async def dispatch(self, job: Job) -> None:
        background.spawn(self.run(job), name=f"job:{job.kind}:{getattr(job, 'task_id', '')}")
        # The job's first round trips go out before its caller goes on (to acknowledge, to
        # answer): they are what the job's readers wait for.
        await asyncio.sleep(0)


class LambdaDispatcher:
    def __init__(self, function_name: str, client: Any = None) -> None:
        self.function_name = function_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("lambda")
        return self._client

    async def dispatch(self, job: Job) -> None:
        payload = job.model_dump_json().encode()
        if len(payload) > MAX_ASYNC_PAYLOAD_BYTES:
            raise DispatchError(
                f"job payload of {len(payload)} bytes exceeds Lambda's 1 MB async limit"
            )
        try:
            response = await asyncio.to_thread(
                self.client.invoke,
                FunctionName=self.function_name,
                InvocationType="Event",
                Payload=payload,
            )
        except Exception as exc:
            raise DispatchError(f"could not invoke {self.function_name}: {exc}") from exc
        if response.get("StatusCode") != 202:
            raise DispatchError(
                f"{self.function_name} answered {response.get('StatusCode')}, not 202"
            )


_dispatcher: Dispatcher | None = None


def get_dispatcher() -> Dispatcher:
    global _dispatcher
    if _dispatcher is None:
        settings = get_settings()
        if settings.dispatch == "lambda":
            if not settings.worker_function:
                raise DispatchError("CHAT_DISPATCH=lambda needs CHAT_WORKER_FUNCTION")
            _dispatcher = LambdaDispatcher(settings.worker_function)
        else:
            raise DispatchError(
                "CHAT_DISPATCH=inprocess: this process runs no worker "
                "(its host installs one with set_dispatcher(InProcessDispatcher(run_job)))"
            )
    return _dispatcher


def set_dispatcher(dispatcher: Dispatcher | None) -> None:
    """Replace the dispatcher (tests, the dev server); None rebuilds it from settings."""
    global _dispatcher
    _dispatcher = dispatcher
