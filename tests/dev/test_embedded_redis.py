"""chat_dev.embedded_redis: real redis-servers for tests and `make dev`. A server on a free
port that stops without a trace, keeps its data across a restart when asked, and a local
cluster whose nodes share the slots."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import redis
from chat_dev.embedded_redis import EmbeddedCluster, EmbeddedRedis, find_redis_server


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_server_answers_on_its_port_and_stops_without_a_trace() -> None:
    with EmbeddedRedis() as server:
        data_dir, pid = server.data_dir, server.pid
        with redis.Redis.from_url(server.url) as client:
            assert client.ping() and client.set("k", "v")
    assert not answers(server.port)
    assert not data_dir.exists()  # a throwaway directory is removed
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_persistent_server_keeps_its_data_across_a_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(data_dir=tmp_path / "redis", persist=True).start()
    try:
        with redis.Redis.from_url(server.url) as client:
            client.set("chat", "kept")
        server.stop_process()
        assert not answers(server.port)
        server.start()  # same port, same data
        with redis.Redis.from_url(server.url) as client:
            assert client.get("chat") == b"kept"
    finally:
        server.stop()
    assert (tmp_path / "redis").is_dir()  # a given directory is the caller's, and stays


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exited at start-up"):
        EmbeddedRedis(data_dir=tmp_path, extra_args=["--no-such-option", "x"]).start()


def test_a_cluster_shares_the_slots_between_its_nodes() -> None:
    with EmbeddedCluster(nodes=3) as cluster:
        with redis.RedisCluster.from_url(cluster.url) as client:
            for i in range(30):
                client.set(f"key-{i}", i)
            assert [int(client.get(f"key-{i}")) for i in range(30)] == list(range(30))
            nodes_with_keys = [
                n for n in client.get_primaries() if client.dbsize(target_nodes=n) > 0
            ]
            assert len(client.get_primaries()) == 3 and len(nodes_with_keys) == 3


def test_the_binary_named_in_the_environment_wins(monkeypatch) -> None:
    monkeypatch.setenv("CHAT_REDIS_SERVER_BIN", "/opt/redis/bin/redis-server")
    assert find_redis_server() == "/opt/redis/bin/redis-server"
    monkeypatch.delenv("CHAT_REDIS_SERVER_BIN")
    assert Path(find_redis_server()).name == "redis-server"
