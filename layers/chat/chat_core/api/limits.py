"""Refuse request bodies over the limit before anything reads them: 413, never a crash.

    app.add_middleware(BodyLimit)     # CHAT_MAX_BODY_BYTES; the webhook path has its own

A pure ASGI middleware, so the body is counted as it arrives (a missing or lying
Content-Length, or a chunked body, does not get past it) and streamed responses pass
through untouched.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..settings import get_settings

WEBHOOK_PATH_MARK = "/operations/"


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)  # no route reads a body of anything else
            return
        settings = get_settings()
        webhook = WEBHOOK_PATH_MARK in scope["path"]
        limit = settings.max_webhook_body_bytes if webhook else settings.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        # The body is read here, up to the limit, before the app sees any of it: a chunked
        # body (no length) or one longer than it said is refused here too, as a 413 (the
        # app, reading it itself, could only fail with a 400). Bodies are small by limit.
        parts: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            parts.append(message.get("body", b""))
            received += len(parts[-1])
            if received > limit:
                await _refuse(send, limit)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, for streaming responses

        await self.app(scope, replay, send)


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "detail": {
                "code": "BODY_TOO_LARGE",
                "message": f"The request body exceeds {limit} bytes.",
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
