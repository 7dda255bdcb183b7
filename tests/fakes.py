"""Fakes of the outside world, over real HTTP: the external agent generator, and signing
webhooks the way an external service does (Standard Webhooks).

    with FakeAgentGenerator() as generator:       # answers 202 and records each request
        generator.status = 500                     # or refuse the next ones
        generator.requests[-1]["callback_url"]

    set_dispatcher(Recorder())      # jobs handed to the worker are recorded, not run
    set_dispatcher(Failing())       # or cannot be handed over at all
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes


def signed_headers(
    body: bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    webhook_id: str | None = None,
    timestamp: datetime | None = None,
) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = timestamp or datetime.now(UTC)
    signature = Webhook(secret).sign(webhook_id, timestamp, body.decode())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


class _ThreadServer:
    """A small Starlette app served by uvicorn on a free port in a background thread."""

    def __init__(self, routes: list[Route]) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(
            Starlette(routes=routes), host="127.0.0.1", port=self.port, log_level="error"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self):
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(5)


class FakeAgentGenerator(_ThreadServer):
    def __init__(self) -> None:
        self.status = 202
        self.requests: list[dict[str, Any]] = []
        super().__init__([Route("/generate", self._generate, methods=["POST"])])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/generate"

    async def _generate(self, request: Request) -> JSONResponse:
        self.requests.append(await request.json())
        if self.status == 202:
            return JSONResponse({"status": "accepted"}, status_code=202)
        return JSONResponse({"error": "generator overloaded"}, status_code=self.status)


class WebhookReceiver(_ThreadServer):
    """Where a webhook sender posts: records each delivery's headers and body."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        super().__init__([Route("/callback", self._receive, methods=["POST"])])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    async def _receive(self, request: Request) -> JSONResponse:
        self.deliveries.append((dict(request.headers), await request.body()))
        return JSONResponse({"status": "accepted"}, status_code=202)


class FakeIssuer(_ThreadServer):
    """An identity provider: signs RS256 tokens and publishes its keys at a JWKS URL."""

    def __init__(self, issuer: str = "https://issuer.example/", audience: str = "chat-api") -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from jwt.algorithms import RSAAlgorithm

        self.issuer, self.audience = issuer, audience
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": "key-1", "use": "sig", "alg": "RS256"}]}
        self.fetches = 0
        super().__init__([Route("/.well-known/jwks.json", self._jwks)])

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    async def _jwks(self, request: Request) -> JSONResponse:
        self.fetches += 1
        return JSONResponse(self.jwks)

    def token(self, sub: str, *, kid: str = "key-1", key=None, **claims: Any) -> str:
        import jwt

        payload = {
            "sub": sub,
            "iss": self.issuer,
            "aud": self.audience,
            "exp": int(time.time()) + 600,
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}  # aud=None: no aud
        return jwt.encode(payload, key or self.private_key, algorithm="RS256", headers={"kid": kid})


class Recorder:
    """A dispatcher that only records the jobs it is handed, so the test decides when (and
    whether) a worker runs them."""

    def __init__(self) -> None:
        self.jobs: list = []

    async def dispatch(self, job) -> None:
        self.jobs.append(job)


class Failing:
    """A dispatcher that cannot hand anything over (Lambda throttled, say)."""

    async def dispatch(self, job) -> None:
        from chat_core.worker.dispatch import DispatchError

        raise DispatchError("the worker function cannot be invoked")
