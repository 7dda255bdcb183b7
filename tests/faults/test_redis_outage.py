"""Redis going away for a few seconds, for real: a redis-server of the test's own, stopped by
its pid and started again on the same port with the same data.

A turn rides out a short outage (its writes and its lease refreshes are retried), a reader
is told where to resume (never a bare `[DONE]`), an outage longer than the budget ends the
turn visibly with its partial answer saved, and the API answers JSON 503 while Redis is
down."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from chat_core import keys, registry, tasks
from chat_core.chat.service import INTERRUPTED_MARK
from chat_core.completions.sweeper import sweep
from chat_core.redis_client import get_redis, reset_clients
from chat_core.retry import retrying
from chat_core.sessions import get_session_store
from chat_core.worker.runner import STORE_UNREACHABLE
from chat_dev.embedded_redis import EmbeddedCluster, EmbeddedRedis
from redis.crc import key_slot

from tests.chunk_rules import assert_valid_turn, text_of
from tests.conftest import parse_sse

pytestmark = pytest.mark.slow

WORDS = [f"w{i}" for i in range(40)]


@pytest.fixture
async def server(model, settings_env, tmp_path) -> AsyncIterator[EmbeddedRedis]:
    """A Redis of this test's own (persisted, so a restart keeps its data)."""
    redis_server = EmbeddedRedis(data_dir=tmp_path / "redis", persist=True).start()
    settings_env(
        redis_url=redis_server.url,
        redis_connect_timeout=0.3,
        redis_socket_timeout=1,
        redis_retry_seconds=20,
    )
    reset_clients()
    try:
        yield redis_server
    finally:
        redis_server.stop()


async def outage(server: EmbeddedRedis, seconds: float) -> None:
    pid = server.pid
    server.stop_process()  # by its pid: SIGTERM, then wait
    assert pid is not None and server.pid is None
    await asyncio.sleep(seconds)
    server.start()


async def chunks_of(task_id: str) -> list[dict]:
    entries = await get_redis().xrange(keys.task_stream(task_id))
    return [json.loads(fields["data"]) for _, fields in entries]


async def wait_for_text(task_id: str) -> None:
    for _ in range(400):
        if any(c["type"] == "text-delta" for c in await chunks_of(task_id)):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the turn never started writing")


async def ended(task_id: str, seconds: float = 60) -> registry.TaskRecord:
    for _ in range(int(seconds * 10)):
        # A cluster node just restarted answers CLUSTERDOWN until gossip marks it healthy
        # again; the test polls through that as a client polls through the API's 503s.
        task = await retrying(lambda: registry.get_task(task_id))
        if task is not None and not task.running:
            return task
        await asyncio.sleep(0.1)
    raise AssertionError("the task never ended")


async def start_turn(model, delay_ms: int, words: list[str] = WORDS):
    model.slow_stream(delay_ms, text=" ".join(words))
    session = await get_session_store().create(None)
    task = await tasks.start_turn(session.session_id, "count slowly", None)
    return session, task


async def assert_whole_answer(task_id: str) -> None:
    finished = await ended(task_id)
    chunks = await chunks_of(task_id)
    assert finished.status == "completed"
    assert_valid_turn(chunks)
    assert text_of(chunks) == " ".join(WORDS)  # nothing lost, nothing written twice
    assert "error" not in [c["type"] for c in chunks]


async def test_a_turn_rides_out_a_two_second_outage(server, model):
    _, task = await start_turn(model, 100)
    await wait_for_text(task.task_id)
    await outage(server, 2.0)
    await assert_whole_answer(task.task_id)


async def test_a_quiet_turn_keeps_its_lease_through_an_outage(server, model, settings_env):
    settings_env(worker_lease_seconds=5)
    _, task = await start_turn(model, 700, WORDS[:12])  # about 8 s, a word every 0.7 s
    await wait_for_text(task.task_id)
    await outage(server, 2.5)
    await asyncio.sleep(3.0)  # past the lease it held when Redis went away
    assert (await sweep()).failed_tasks == 0  # the lease was refreshed after the outage
    finished = await ended(task.task_id)
    assert finished.status == "completed"
    assert text_of(await chunks_of(task.task_id)) == " ".join(WORDS[:12])


async def test_an_outage_past_the_budget_ends_the_turn_visibly_with_its_partial_answer(
    server, model, settings_env
):
    settings_env(redis_retry_seconds=1)
    session, task = await start_turn(model, 100, [f"w{i}" for i in range(100)])
    await wait_for_text(task.task_id)
    await outage(server, 4.0)
    finished = await ended(task.task_id)
    chunks = await chunks_of(task.task_id)
    assert finished.status == "failed"
    assert chunks[-2:] == [{"type": "error", "errorText": STORE_UNREACHABLE}, {"type": "finish"}]
    stored = await get_session_store().get(session.session_id, None)
    [partial] = [m for m in stored.messages if m.role == "assistant" and m.content]
    assert partial.content.endswith(INTERRUPTED_MARK)
    assert partial.content.startswith(text_of(chunks).strip()[:6])


async def test_an_interrupted_read_names_where_to_resume_and_never_says_done(
    server, model, settings_env
):
    from chat_core.api.app import ALL_ROUTERS, create_app

    settings_env(redis_retry_seconds=30)
    _, task = await start_turn(model, 100)
    await wait_for_text(task.task_id)
    app = create_app(*ALL_ROUTERS)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=60
    ) as api:
        reading = asyncio.create_task(api.get(f"/api/chat/tasks/{task.task_id}/stream"))
        await asyncio.sleep(0.5)
        server.stop_process()
        events = parse_sse((await reading).text)
        server.start()
        assert events[-1]["data"] != "[DONE]"
        error = json.loads(events[-1]["data"])
        assert error["type"] == "error"
        last_id = events[-2]["id"]
        assert events[-1]["id"] == last_id and last_id in error["errorText"]

        # Resuming from the id it named gives the rest: the whole answer, once.
        await ended(task.task_id)
        rest = parse_sse(
            (await api.get(f"/api/chat/tasks/{task.task_id}/stream?last_message_id={last_id}")).text
        )
    before = [json.loads(e["data"]) for e in events[:-1]]
    after = [json.loads(e["data"]) for e in rest if e.get("data") != "[DONE]"]
    assert text_of(before + after) == " ".join(WORDS)


async def test_the_api_answers_json_503_while_redis_is_down(server, model):
    from chat_core.api.app import ALL_ROUTERS, create_app

    app = create_app(*ALL_ROUTERS)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
    ) as api:
        server.stop_process()
        try:
            created = await api.post("/api/chat/sessions")
        finally:
            server.start()
        assert created.status_code == 503
        assert created.json()["detail"]["code"] == "STORE_UNAVAILABLE"
        assert int(created.headers["retry-after"]) > 0
        assert (await api.post("/api/chat/sessions")).status_code == 200


@pytest.fixture
async def cluster(model, settings_env) -> AsyncIterator[EmbeddedCluster]:
    """A 3-node cluster of this test's own, persisted, so a node restarted keeps its data."""
    nodes = EmbeddedCluster(nodes=3, persist=True).start()
    settings_env(
        redis_url=nodes.url,
        redis_mode="cluster",
        redis_connect_timeout=0.3,
        redis_socket_timeout=1,
        redis_retry_seconds=20,
    )
    reset_clients()
    try:
        yield nodes
    finally:
        nodes.stop()


async def test_a_turn_rides_out_a_restart_of_its_cluster_node(cluster, model):
    """On a cluster the blip is one node going away: the one that holds the task's slot."""
    _, task = await start_turn(model, 100)
    await wait_for_text(task.task_id)
    slot = key_slot(keys.task_stream(task.task_id).encode())
    count, slots = len(cluster.servers), EmbeddedCluster.SLOTS
    [node] = [
        server
        for i, server in enumerate(cluster.servers)
        if i * slots // count <= slot < (i + 1) * slots // count
    ]
    await outage(node, 2.0)
    await assert_whole_answer(task.task_id)
