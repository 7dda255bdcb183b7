"""chat_dev.devserver, in process: what `prepare()` provides when nothing is configured,
secrets kept so sign-ins survive a restart, one server per data directory, and the app with
its dev routes and page. The whole server as a subprocess (what `make dev` runs) is tested
in tests/e2e/test_devserver.py."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from chat_core.settings import get_settings
from chat_core.worker.dispatch import set_dispatcher

# Importing the dev server switches Powertools to its dev mode and off metrics, for the
# server's own process; the tests that run after this module must not inherit that.
_environ = dict(os.environ)
from chat_dev.devserver import DevEnvironment, build_app, kept_secret, prepare  # noqa: E402

os.environ.clear()
os.environ.update(_environ)

PROVIDED = (
    "CHAT_REDIS_URL",
    "CHAT_REDIS_MODE",
    "CHAT_LLM_BASE_URL",
    "CHAT_JWT_SECRET",
    "CHAT_WEBHOOK_SECRET",
    "CHAT_PUBLIC_BASE_URL",
    "CHAT_AGENT_GENERATOR_URL",
)


@pytest.fixture
def environ() -> Iterator[None]:
    """`prepare()` writes what it provides into os.environ, as the server needs; put it back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()


@pytest.fixture
def prepared(environ, redis_target, tmp_path: Path) -> Iterator[DevEnvironment]:
    """A dev environment on the test's Redis, with no model key and no secrets set."""
    env = prepare("127.0.0.1", 8765, tmp_path)
    yield env
    env.stop()


@pytest.fixture
async def dev_app(prepared) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(prepared)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://dev"
    ) as client:
        yield client
    set_dispatcher(None)


def test_with_no_model_key_the_scripted_model_answers(prepared) -> None:
    assert prepared.scripted is not None
    assert os.environ["CHAT_LLM_BASE_URL"] == prepared.scripted.base_url
    base_url = prepared.scripted.base_url
    assert httpx.get(f"{base_url}/models").status_code == 200
    prepared.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/models")


def test_missing_secrets_are_made_once_and_kept(environ, redis_target, tmp_path) -> None:
    first = prepare("127.0.0.1", 8765, tmp_path)
    made = {name: os.environ[name] for name in ("CHAT_JWT_SECRET", "CHAT_WEBHOOK_SECRET")}
    first.stop()
    assert made["CHAT_WEBHOOK_SECRET"].startswith("whsec_")
    assert first.generated == ["CHAT_JWT_SECRET", "CHAT_WEBHOOK_SECRET"]
    for name in made:
        del os.environ[name]
    get_settings.cache_clear()
    second = prepare("127.0.0.1", 8765, tmp_path)  # a restart: the same secrets
    second.stop()
    assert {name: os.environ[name] for name in made} == made


def test_the_agent_generator_is_the_local_fake_unless_one_is_set(prepared) -> None:
    assert prepared.agent_generator_local
    assert os.environ["CHAT_AGENT_GENERATOR_URL"] == "http://127.0.0.1:8765/dev/agent-generator"
    assert os.environ["CHAT_PUBLIC_BASE_URL"] == "http://127.0.0.1:8765"


def test_a_kept_secret_is_owner_only_and_the_first_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "CHAT_JWT_SECRET"
    assert kept_secret(path, lambda: "first") == "first"
    assert kept_secret(path, lambda: "second") == "first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def unconfigured() -> None:
    """The environment of a fresh `make dev`: nothing that prepare() provides is set."""
    for name in PROVIDED:
        os.environ.pop(name, None)
    get_settings.cache_clear()


def test_a_second_server_on_the_same_data_is_refused(environ, tmp_path: Path) -> None:
    unconfigured()
    first = prepare("127.0.0.1", 8765, tmp_path)  # starts the embedded Redis in .data/redis
    try:
        assert first.redis is not None and first.redis_data_dir == tmp_path / ".data" / "redis"
        unconfigured()  # the second server is another process, started the same way
        with pytest.raises(SystemExit, match="Another dev server is using"):
            prepare("127.0.0.1", 8766, tmp_path)
    finally:
        first.stop()


async def test_dev_info_says_what_runs(dev_app, prepared) -> None:
    info = (await dev_app.get("/dev/info")).json()
    assert info["scripted"] is True and info["scripted_url"] == prepared.scripted.url
    assert info["dev_login"] is True and info["redis_embedded"] is False
    assert info["generated_secrets"] == ["CHAT_JWT_SECRET", "CHAT_WEBHOOK_SECRET"]


async def test_dev_login_mints_a_token_the_api_accepts(dev_app) -> None:
    answer = (await dev_app.post("/dev/login", json={"user_id": "alice"})).json()
    headers = {"Authorization": f"Bearer {answer['token']}"}
    created = await dev_app.post("/api/chat/sessions", headers=headers)
    assert created.status_code in (200, 201)
    listed = (await dev_app.get("/api/chat/sessions", headers=headers)).json()
    assert [s["id"] for s in listed["sessions"]] == [created.json()["id"]]
    refused = await dev_app.post("/dev/login", json={"user_id": "not an id!"})
    assert refused.status_code == 422


async def test_the_page_is_served_and_never_cached(dev_app) -> None:
    page = await dev_app.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert page.headers["cache-control"] == "no-cache"


def test_the_info_never_shows_a_redis_password() -> None:
    env = DevEnvironment("127.0.0.1", 8000, Path("."), redis_url="rediss://app:s3cret@cache:6379")
    assert env.info()["redis_url"] == "rediss://app:***@cache:6379"
