"""API Gateway HTTP API (payload 2.0) events, as Lambda receives them, for Mangum tests,
and a worker that runs each job as its own Lambda would.

event = http_api_event("GET", "/api/chat/tasks/t1/stream", headers={"last-event-id": "1-0"},
                       claims={"sub": "u1"})
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any
from urllib.parse import urlencode

from chat_core.worker.runner import run_job


def http_api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    claims: dict[str, Any] | None = None,
) -> dict[str, Any]:
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    now = time.time()
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "a1b2c3d4e5",
        "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "a1b2c3d4e5",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.7",
            "userAgent": "pytest",
        },
        "requestId": f"req-{int(now * 1000)}",
        "routeKey": f"{method} {path}",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {
            "host": context["domainName"],
            "content-type": "application/json",
            **(headers or {}),
        },
        "queryStringParameters": query,
        "requestContext": context,
        "body": text,
        "isBase64Encoded": False,
    }


class WorkerLambda:
    """Each job runs in its own thread and event loop, like an async-invoked worker."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    async def dispatch(self, job) -> None:
        thread = threading.Thread(target=asyncio.run, args=(run_job(job),), daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(30)
