"""Who is calling: a user id from JWT claims, or None for anonymous.

    @router.get("/me")
    async def me(user_id: UserId): ...

Where an API Gateway authorizer stands in front, its claims arrive in the Lambda event
(through Mangum) or in the `x-amzn-request-context` header (through the Lambda Web Adapter,
trusted only when running under it). The stack in template.yaml has none (an authorizer
cannot let a request without a token through and still cache): the app verifies the
identity provider's tokens itself against its published keys (`CHAT_JWT_JWKS_URL`, with
issuer, optional audience and required claims), caching the keys and each verified token
until it expires. The dev server verifies HS256 tokens signed with `CHAT_JWT_SECRET`. No
token means anonymous: anonymous sessions and tasks are reachable only through their
unguessable ids; a token that fails any check is 401, never anonymous.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import OrderedDict
from functools import lru_cache
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request

from ..settings import get_settings
from .errors import ApiError
from .openapi import declares


def _gateway_claims(request: Request) -> dict[str, Any] | None:
    event = request.scope.get("aws.event")
    context = event.get("requestContext") if isinstance(event, dict) else None
    if (
        context is None
        and os.environ.get("AWS_LAMBDA_EXEC_WRAPPER")
        and "x-amzn-request-context" in request.headers
    ):
        try:
            context = json.loads(request.headers["x-amzn-request-context"])
        except json.JSONDecodeError:
            context = None
    authorizer = (context or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or authorizer.get("claims")
    return claims if isinstance(claims, dict) else None


@declares(
    {401: ("INVALID_TOKEN", "TOKEN_EXPIRED"), 503: ("JWT_NOT_CONFIGURED", "JWKS_UNAVAILABLE")},
    bearer="optional",
)
def current_user_id(request: Request) -> str | None:
    claims = _gateway_claims(request)
    if claims is not None:
        return str(claims["sub"]) if claims.get("sub") else None
    header = request.headers.get("authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "INVALID_TOKEN", "The Authorization header must be 'Bearer <token>'.")
    digest = _digest(token)
    cached = _verified.get(digest)
    if cached is not None and cached[1] > time.time():
        return cached[0]
    user_id, expires = _verify(token)
    _remember(digest, user_id, expires)
    return user_id


def _digest(token: str) -> bytes:
    # What the token was checked against is part of the key: other settings, other verdict.
    s = get_settings()
    checks = (s.jwt_jwks_url, s.jwt_issuer, s.jwt_audience, s.jwt_required_claims)
    return hashlib.sha256(f"{token}\0{checks}\0{s.secret('jwt_secret')}".encode()).digest()


def _verify(token: str) -> tuple[str, float]:
    settings = get_settings()
    try:
        if settings.jwt_jwks_url:
            key: Any = _jwks(settings.jwt_jwks_url).get_signing_key_from_jwt(token).key
            algorithms = ["RS256", "ES256"]
        elif secret := settings.secret("jwt_secret"):
            key, algorithms = secret, ["HS256"]
        else:
            raise ApiError(
                503,
                "JWT_NOT_CONFIGURED",
                "This server cannot verify tokens: set CHAT_JWT_JWKS_URL or CHAT_JWT_SECRET.",
            )
        audience = [a.strip() for a in (settings.jwt_audience or "").split(",") if a.strip()]
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=audience or None,
            issuer=settings.jwt_issuer or None,
            options={"require": ["sub", "exp"], "verify_aud": bool(audience)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise ApiError(401, "TOKEN_EXPIRED", "The token has expired.") from exc
    except jwt.PyJWKClientConnectionError as exc:
        raise ApiError(
            503, "JWKS_UNAVAILABLE", "The identity provider's keys could not be fetched."
        ) from exc
    except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:  # or a key id nobody publishes
        raise ApiError(401, "INVALID_TOKEN", f"The token is not valid: {exc}.") from exc
    for name, expected in _required_claims(settings.jwt_required_claims or ""):
        if str(claims.get(name)) != expected:
            raise ApiError(401, "INVALID_TOKEN", f"The token's {name!r} claim is not accepted.")
    return str(claims["sub"]), float(claims["exp"])


@lru_cache(maxsize=4)
def _required_claims(spec: str) -> tuple[tuple[str, str], ...]:
    pairs = (pair.partition("=") for pair in spec.split(",") if pair.strip())
    return tuple((name.strip(), value.strip()) for name, _, value in pairs)


# Verified tokens (by digest) → (user id, expiry): a warm function checks a returning
# token's signature once, not on every request. Bounded; expiry is checked on each use.
_verified: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
_VERIFIED_MAX = 1024


def _remember(digest: bytes, user_id: str, expires: float) -> None:
    _verified[digest] = (user_id, expires)
    _verified.move_to_end(digest)
    while len(_verified) > _VERIFIED_MAX:
        _verified.popitem(last=False)


@lru_cache(maxsize=4)
def _jwks(url: str) -> jwt.PyJWKClient:
    # One client per URL and process: it caches the keys, refetching for an unknown key id.
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=600, timeout=5)


@declares({401: "UNAUTHENTICATED"}, bearer="required")
def required_user_id(user_id: Annotated[str | None, Depends(current_user_id)]) -> str:
    if user_id is None:
        raise ApiError(401, "UNAUTHENTICATED", "Sign in to do this.")
    return user_id


UserId = Annotated[str | None, Depends(current_user_id)]
SignedInUserId = Annotated[str, Depends(required_user_id)]
