"""`make dev` as a user runs it: no configuration at all, then Ctrl-C.

    .venv/bin/python -m pytest tests/e2e/test_devserver.py -q

The server is started the way the Makefile does (`python -m chat_dev.devserver` from
the project folder, here a temporary one), with no CHAT_* variable: it must start its own
Redis with persistence in `<project>/.data/redis`, the scripted model and the fake agent
generator, serve the page, keep chats and sign-ins across a restart, read the project's
`.env`, restart itself on code changes with `--reload` (`make dev RELOAD=1`), and leave
nothing running after SIGINT or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from redis import Redis
from redis.exceptions import RedisError

from .conftest import ARTIFACTS, DevServer, alive, start_dev_server

pytestmark = pytest.mark.slow


def sign_in(server: DevServer, user_id: str) -> dict[str, str]:
    token = httpx.post(f"{server.url}/dev/login", json={"user_id": user_id}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def assert_turn_streams_to_the_end(
    server: DevServer, headers: dict[str, str], session_id: str, message: str
) -> None:
    with httpx.stream(
        "POST",
        f"{server.api}/sessions/{session_id}/stream",
        headers=headers,
        json={"message": message},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.read().rstrip().endswith(b"data: [DONE]")


def stop_and_check(server: DevServer, sig: int, data_dir: Path) -> None:
    children = server.stop(sig)
    assert server.process.returncode == 0, server.log()[-3000:]
    assert children, "the embedded Redis should have been a child of the dev server"
    assert not [pid for pid in children if alive(pid)], "a child of the dev server outlived it"
    leftover = subprocess.run(
        ["pgrep", "-f", str(data_dir)], check=False, capture_output=True, text=True
    ).stdout
    assert leftover.strip() == "", f"processes still use {data_dir}: {leftover}"
    assert "Traceback" not in server.log(), server.log()[-4000:]


def test_make_dev_with_nothing_configured(tmp_path: Path) -> None:
    logs = ARTIFACTS / "logs"
    server = start_dev_server(tmp_path, logs / "make-dev-first.log")
    data_dir = tmp_path / ".data" / "redis"
    try:
        info = server.info
        assert info["redis_embedded"] and Path(info["redis_data_dir"]) == data_dir
        assert info["scripted"] and info["scripted_url"].startswith("http://127.0.0.1:")
        assert info["dev_login"] and info["agent_generator_local"]
        assert info["public_base_url"] == server.url
        assert set(info["generated_secrets"]) == {"CHAT_JWT_SECRET", "CHAT_WEBHOOK_SECRET"}
        log = server.log()
        for line in (
            f"Page        {server.url}/",
            f"API docs    {server.url}/docs",
            str(data_dir),
            "scripted model",
        ):
            assert line in log, f"the banner lacks {line!r}:\n{log[-2000:]}"

        page = httpx.get(f"{server.url}/")
        assert page.status_code == 200 and 'src="/dist/app.js"' in page.text  # the built page
        assert page.headers["cache-control"] == "no-cache"
        assert (
            httpx.get(f"{server.url}/dist/app.js")
            .headers["content-type"]
            .startswith(("text/javascript", "application/javascript"))
        )
        assert httpx.get(f"{server.url}/docs").status_code == 200
        assert httpx.get(f"{server.api}/nothing-here").json()["detail"]["code"] == "NOT_FOUND"
        bad_login = httpx.post(f"{server.url}/dev/login", json={"user_id": "no spaces"})
        assert (
            bad_login.status_code == 422 and bad_login.json()["detail"]["code"] == "INVALID_REQUEST"
        )

        headers = sign_in(server, "grace")
        session_id = httpx.post(f"{server.api}/sessions", headers=headers).json()["id"]
        assert_turn_streams_to_the_end(server, headers, session_id, "Hello there")

        # A second server on the same data folder would corrupt it: it is refused.
        second = subprocess.run(
            [sys.executable, "-m", "chat_dev.devserver", "--port", "0"],
            check=False,
            cwd=tmp_path,
            env={k: v for k, v in server_env().items()},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0 and "Another dev server is using" in second.stderr
    finally:
        stop_and_check(server, signal.SIGINT, data_dir)
    assert (
        "Dev server stopped, and the embedded Redis and the scripted model with it." in server.log()
    )

    secret = tmp_path / ".data" / "secrets" / "CHAT_JWT_SECRET"
    assert secret.stat().st_mode & 0o777 == 0o600

    # Started again, now with a .env in the project folder: the chat is still there, the
    # token from before the restart still signs grace in, and the .env setting holds.
    (tmp_path / ".env").write_text("CHAT_STREAM_TTL_SECONDS=1234\n")
    again = start_dev_server(tmp_path, logs / "make-dev-second.log")
    try:
        assert httpx.get(f"{again.api}/config/ttl").json()["stream_ttl_seconds"] == 1234
        listed = httpx.get(f"{again.api}/sessions", headers=headers).json()["sessions"]
        assert [s["id"] for s in listed] == [session_id]
        session = httpx.get(f"{again.api}/sessions/{session_id}", headers=headers).json()
        assert [m["role"] for m in session["messages"]] == ["user", "assistant"]
        assert session["messages"][1]["content"].startswith("Hello, nice to meet you!")
    finally:
        stop_and_check(again, signal.SIGTERM, data_dir)


def test_reload_restarts_on_python_changes_and_keeps_sign_ins(tmp_path: Path) -> None:
    server = start_dev_server(
        tmp_path, ARTIFACTS / "logs" / "make-dev-reload.log", args=("--reload",)
    )
    data_dir = tmp_path / ".data" / "redis"
    try:
        first_pid = server.info["pid"]
        headers = sign_in(server, "lin")
        session_id = httpx.post(f"{server.api}/sessions", headers=headers).json()["id"]

        (tmp_path / "edited.py").write_text("CHANGED = True\n")
        deadline = time.monotonic() + 60
        while True:
            try:
                pid = httpx.get(f"{server.url}/dev/info", timeout=2).json()["pid"]
            except httpx.HTTPError:
                pid = first_pid  # between the old process and the new one
            if pid != first_pid:
                break
            assert time.monotonic() < deadline, f"no restart:\n{server.log()[-3000:]}"
            time.sleep(0.2)

        listed = httpx.get(f"{server.api}/sessions", headers=headers)
        assert listed.status_code == 200, listed.text
        assert [s["id"] for s in listed.json()["sessions"]] == [session_id]
        assert "Restarting: 1 file(s) changed" in server.log()
    finally:
        stop_and_check(server, signal.SIGINT, data_dir)


def test_the_embedded_redis_is_started_again_when_it_dies(tmp_path: Path) -> None:
    server = start_dev_server(tmp_path, ARTIFACTS / "logs" / "make-dev-redis-dies.log")
    data_dir = tmp_path / ".data" / "redis"
    try:
        headers = sign_in(server, "ada")
        session_id = httpx.post(f"{server.api}/sessions", headers=headers).json()["id"]
        redis = Redis.from_url(server.info["redis_url"])
        first_pid = redis.info("server")["process_id"]
        os.kill(first_pid, signal.SIGKILL)

        deadline = time.monotonic() + 30
        while True:
            try:
                pid = redis.info("server")["process_id"]
            except RedisError:
                pid = first_pid
            if pid != first_pid:
                break
            assert time.monotonic() < deadline, f"Redis stayed down:\n{server.log()[-3000:]}"
            time.sleep(0.2)

        assert httpx.get(f"{server.api}/health").json() == {"status": "healthy", "redis": "ok"}
        listed = httpx.get(f"{server.api}/sessions", headers=headers).json()["sessions"]
        assert [s["id"] for s in listed] == [session_id]  # the chat survived the crash
        assert_turn_streams_to_the_end(server, headers, session_id, "Hello again")
        redis.close()
    finally:
        stop_and_check(server, signal.SIGINT, data_dir)


def server_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
