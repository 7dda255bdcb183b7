"""chat_core.api.users: the signed-in user's understanding over HTTP, on Redis and on
DynamoDB; anonymous callers get 401."""

from __future__ import annotations

import pytest
from chat_core.api import users

from tests.api.helpers import SECRET, bearer, serve
from tests.users.helpers import BAKERY, UNDERSTANDING, answer


@pytest.fixture
async def api(redis_target):
    """The users routes alone: they need nothing else of the API."""
    async with serve(users.router) as client:
        yield client


@pytest.fixture
def alice(settings_env) -> dict[str, str]:
    settings_env(jwt_secret=SECRET)
    return bearer("alice")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", UNDERSTANDING),
        ("PUT", UNDERSTANDING),
        ("GET", "/api/chat/users/me/agents"),
        ("GET", "/api/chat/users/me/agents/a1"),
    ],
)
async def test_anonymous_callers_get_401_json(store_backend, api, method, path):
    response = await api.request(method, path, json=BAKERY if method == "PUT" else None)
    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "UNAUTHENTICATED"


async def test_the_user_reads_and_replaces_their_understanding(store_backend, api, alice):
    assert (await api.get(UNDERSTANDING, headers=alice)).json() == {"understanding": None}
    put = await api.put(UNDERSTANDING, json=BAKERY, headers=alice)
    assert put.status_code == 200 and put.json() == answer(**BAKERY)
    assert (await api.get(UNDERSTANDING, headers=alice)).json() == answer(**BAKERY)
    # Another user sees only their own (nothing).
    bob = bearer("bob")
    assert (await api.get(UNDERSTANDING, headers=bob)).json() == {"understanding": None}
    await api.put(UNDERSTANDING, json={"industry": "catering"}, headers=alice)
    assert (await api.get(UNDERSTANDING, headers=alice)).json() == answer(industry="catering")


@pytest.mark.parametrize(
    "body",
    [{"favourite_colour": "blue"}, {"industry": "x" * 501}, {"pain_points": "not a list"}, []],
)
async def test_an_invalid_understanding_is_refused_and_loses_nothing(
    store_backend, api, alice, body
):
    await api.put(UNDERSTANDING, json=BAKERY, headers=alice)
    response = await api.put(UNDERSTANDING, json=body, headers=alice)
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "INVALID_REQUEST"
    assert (await api.get(UNDERSTANDING, headers=alice)).json() == answer(**BAKERY)
