"""The real dev server as a subprocess, for the browser and AI SDK compatibility tests.

    def test_page(dev_server):
        dev_server.script({"kind": "reply", "delay_ms": 120, "stream": True})   # slow next answer
        httpx.get(f"{dev_server.url}/api/chat/health")

`python -m chat_dev.devserver` runs on a free port against the test's Redis, from an empty
project folder, with no LLM key, so the scripted model answers; its control API (from `/dev/info`) lets a test slow
an answer down or make it fail. At the end the server gets SIGINT, like Ctrl-C, and must
exit 0 with nothing it started left running.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
NODE_MODULES = REPO / "tests" / "js" / "node_modules"

# Keys from the developer's shell must not reach the server: the scripted model must answer.
_DROPPED = ("OPEN_ROUTER_API_KEY", "OPENAI_API_KEY")


def require(condition: bool, reason: str) -> None:
    """Skip without what the test needs; under CI a missing piece is a failure."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: `make test` should have installed it)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(pid)], check=False, capture_output=True, text=True
    ).stdout
    return [int(line) for line in found.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@dataclass
class DevServer:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"{self.url}/api/chat"

    def script(self, *behaviours: dict[str, Any]) -> None:
        """Queue behaviours on the scripted model (see chat_dev.scripted_model)."""
        response = httpx.post(f"{self.info['scripted_url']}/_scripted/queue", json=list(behaviours))
        response.raise_for_status()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> list[int]:
        """Stop it as Ctrl-C does; returns the pids of the children it had."""
        children = children_of(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    f"the dev server ignored {signal.Signals(sig).name} for {timeout}s"
                ) from None
        return children


def start_dev_server(
    cwd: Path,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    timeout: float = 30.0,
    args: tuple[str, ...] = (),
) -> DevServer:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_") and k not in _DROPPED}
    port = free_port()
    env.update(
        PORT=str(port),
        PYTHONUNBUFFERED="1",
        CHAT_DEV_AGENT_DELAY_SECONDS="2",
        CHAT_LLM_RETRY_BASE_SECONDS="0.05",
        CHAT_LLM_RETRY_MAX_SECONDS="0.1",
        **(extra_env or {}),
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - the child writes to it until it exits
    process = subprocess.Popen(
        [sys.executable, "-m", "chat_dev.devserver", *args],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = DevServer(process=process, url=f"http://127.0.0.1:{port}", log_path=log_path)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the dev server exited at start-up:\n{server.log()[-3000:]}")
        try:
            if httpx.get(f"{server.api}/health", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(
                f"the dev server did not answer within {timeout}s:\n{server.log()[-3000:]}"
            )
        time.sleep(0.1)
    server.info = httpx.get(f"{server.url}/dev/info").json()
    return server


@pytest.fixture
def dev_server(redis_target, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DevServer]:
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    # A project folder of its own: no developer's .env is read, no secrets land in the repo.
    server = start_dev_server(
        tmp_path,
        ARTIFACTS / "logs" / f"{name}.log",
        {"CHAT_REDIS_URL": redis_target.url, "CHAT_REDIS_MODE": redis_target.mode},
    )
    try:
        yield server
    finally:
        children = server.stop()
        log = server.log()
        assert server.process.returncode == 0, (
            f"the dev server exited with {server.process.returncode}:\n{log[-3000:]}"
        )
        assert not [pid for pid in children if alive(pid)], "the dev server left processes running"
        assert "Traceback" not in log, f"the dev server logged a traceback:\n{log[-4000:]}"


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium(profile: Path, width: int = 1280, height: int = 800) -> Iterator[Any]:
    """Debian's Chromium under Playwright (no browser download), a fresh profile."""
    from playwright.sync_api import sync_playwright

    require(CHROMIUM.exists(), f"{CHROMIUM} not found (as root: apt-get install -y chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
        )
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            context.close()


def have_node() -> bool:
    return shutil.which("node") is not None and (NODE_MODULES / "ai" / "package.json").is_file()
