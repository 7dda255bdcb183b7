"""chat_core.api.identity: who is calling. HS256 tokens signed with the configured secret,
tokens from a real identity provider verified against its published keys (what the
streaming Function URL does, having no API Gateway authorizer in front), and the claims of
an API Gateway authorizer."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.api.helpers import bearer
from tests.fakes import FakeIssuer


@pytest.fixture(scope="module")
def issuer():
    with FakeIssuer() as provider:
        yield provider


@pytest.fixture
def jwks(issuer, settings_env):
    from chat_core.api import identity

    identity._jwks.cache_clear()
    settings_env(
        jwt_jwks_url=issuer.jwks_url, jwt_issuer=issuer.issuer, jwt_audience=issuer.audience
    )
    return issuer


def with_token(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "UNAUTHENTICATED"),
        ({"Authorization": "Basic abc"}, 401, "INVALID_TOKEN"),
        ({"Authorization": "Bearer not.a.jwt"}, 401, "INVALID_TOKEN"),
        (bearer("eve", secret="another-secret-entirely-0123456789abcdef"), 401, "INVALID_TOKEN"),
    ],
)
async def test_listing_needs_a_valid_token(api, auth, headers, status, code):
    response = await api.get("/api/chat/sessions", headers=headers)
    assert response.status_code == status and response.json()["detail"]["code"] == code


async def test_an_expired_token_is_refused(api, auth):
    expired = bearer("alice", exp=int(time.time()) - 10)
    response = await api.get("/api/chat/sessions", headers=expired)
    assert response.status_code == 401 and response.json()["detail"]["code"] == "TOKEN_EXPIRED"


async def test_a_token_without_a_configured_secret_answers_503(api):
    response = await api.get("/api/chat/sessions", headers=bearer("alice"))
    assert response.status_code == 503 and response.json()["detail"]["code"] == "JWT_NOT_CONFIGURED"


async def test_a_token_signed_by_the_provider_identifies_the_user(api, jwks):
    created = await api.post("/api/chat/sessions", headers=with_token(jwks.token("user-7")))
    assert created.status_code == 200 and created.json()["user_id"] == "user-7"
    listing = await api.get("/api/chat/sessions", headers=with_token(jwks.token("user-7")))
    assert listing.json()["total"] == 1
    assert jwks.fetches >= 1


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda p: p.token("u", aud="another-api"), "INVALID_TOKEN"),
        (lambda p: p.token("u", iss="https://impostor.example/"), "INVALID_TOKEN"),
        (
            lambda p: p.token(
                "u", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
            ),
            "INVALID_TOKEN",
        ),
        (lambda p: p.token("u", kid="unpublished-key"), "INVALID_TOKEN"),
        (lambda p: p.token("u", exp=1), "TOKEN_EXPIRED"),
    ],
    ids=["wrong audience", "wrong issuer", "foreign key", "unknown key id", "expired"],
)
async def test_tokens_the_provider_did_not_issue_for_us_are_refused(api, jwks, make_token, code):
    response = await api.get("/api/chat/sessions", headers=with_token(make_token(jwks)))
    assert response.status_code == 401 and response.json()["detail"]["code"] == code


async def test_an_unreachable_provider_answers_503(api, settings_env):
    from chat_core.api import identity

    identity._jwks.cache_clear()
    settings_env(jwt_jwks_url="http://127.0.0.1:1/.well-known/jwks.json")
    with FakeIssuer() as provider:  # its token is well formed; its keys cannot be fetched
        response = await api.get("/api/chat/sessions", headers=with_token(provider.token("u")))
    assert response.status_code == 503 and response.json()["detail"]["code"] == "JWKS_UNAVAILABLE"


async def test_without_a_token_the_caller_is_anonymous(api, jwks):
    assert (await api.post("/api/chat/sessions")).json()["user_id"] is None


def test_claims_from_the_api_gateway_authorizer_identify_the_caller(gateway):
    status, _, body = gateway(
        "POST", "/api/chat/sessions", claims={"sub": "gw-user", "iss": "https://issuer"}
    )
    assert status == 200 and json.loads(body)["user_id"] == "gw-user"
    session = json.loads(body)["id"]
    assert gateway("GET", f"/api/chat/sessions/{session}", claims={"sub": "gw-user"})[0] == 200
    assert gateway("GET", f"/api/chat/sessions/{session}", claims={"sub": "someone-else"})[0] == 404
    listing = json.loads(gateway("GET", "/api/chat/sessions", claims={"sub": "gw-user"})[2])
    assert listing["total"] == 1
