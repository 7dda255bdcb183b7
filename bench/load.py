"""Load benchmark: one dev-server process under many readers and many turns, over loopback.

    .venv/bin/python -m bench load          # `make bench` runs every benchmark

Starts its own redis-server, the scripted model (its own process) and one dev server
(`python -m chat_dev.devserver`), raises the open-file limit, and measures, in about two
minutes, writing bench/results/load.json:

- readers: N = 10, 100, 500, 1,000 clients follow one slow turn (a text-delta every
  READER_DELTA_MS) through `GET /tasks/{id}/stream`; once every reader has its replay, they
  follow it live for READER_LIVE_SECONDS, then the turn is cancelled (each gets `finish`).
  Errors (a status other than 200, an `error` chunk, no `finish`, a reader still open at the
  deadline), the most Redis client connections seen (INFO clients, less the benchmark's
  own), delivery latency of every text-delta written in the live window (entry id time,
  which is Redis's clock when it was written → when the client read it; same host, ms
  resolution), and the dev server process's CPU time (utime + stime) in that window per
  text-delta delivered per reader.
- turns: N = 10, 50, 200 turns started at once (`POST /sessions/{id}/stream`, each its own
  session), read to the end: errors, time to first text-delta and to `[DONE]`, p50/p99.
- first token: POST → first text-delta at the client, one turn at a time, next to the same
  model read with the `openai` SDK alone (create() → first content delta). Ours = the
  difference of the medians: everything the backend adds before the model's first token
  reaches the user (session, task, dispatch, the model call's set-up, the Redis hop, SSE).
- webhook: a `create_agent` turn leaves its operation waiting; the benchmark posts the
  signed webhook and times it (from when its bytes are written, as for the readers: a
  client library's set-up is the sender's) → the continuation's first text-delta at a
  reader already following the operation's task. Model excluded: less the SDK-alone
  first-token median.

Each section starts on a quiet server: once the last one's aftermath (a turn's title goes
out a moment after its answer) is done, or 15 s have passed.

Loopback only, bounded loops: every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import redis
import uvloop
from chat_core import gc_tuning
from standardwebhooks.webhooks import Webhook

from bench._common import (
    RESULTS_DIR,
    Target,
    check_targets,
    embedded_redis,
    environment,
    summary_ms,
)

TARGETS = (
    Target("readers_1000_errors", "<", 1),
    Target("readers_1000_redis_connections", "<", 33),
    Target("readers_1000_delivery_p99_ms", "<", 50),
    Target("turns_200_errors", "<", 1),
    Target("first_token_ours_p50_ms", "<", 5),
    Target("webhook_first_token_p50_ms", "<", 5),
)

READER_COUNTS = (10, 100, 500, 1000)
READER_DELTA_MS = 100  # a slow turn: what a thousand readers of one chat would follow
READER_WORDS = 600  # two words a text-delta: up to 30 s of them, cut short by a cancel
READER_LIVE_SECONDS = 4.0  # followed live by every reader, then the turn is cancelled
READER_CONNECT_SECONDS = 30.0
TURN_COUNTS = (10, 50, 200)
TURN_WORDS = 20
FIRST_TOKEN_ROUNDS = 30
WEBHOOK_ROUNDS = 20
# A section starts once the server's CPU over a window is at most this share of it.
QUIET_WINDOW_SECONDS = 0.25
QUIET_CPU_SHARE = 0.05
DEADLINE_SECONDS = 60.0  # for any one reader or turn
ROOT = Path(__file__).resolve().parent.parent


def run() -> dict[str, Any]:
    _raise_file_limit()
    with embedded_redis() as server, _model() as model_url, _agent_generator() as generator:
        env = environment(server)
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        with _dev_server(server.url, model_url, generator.url, secret) as dev:
            # The thousand readers are this process: on the server's event loop (uvloop) and
            # GC settings, so that the table shows the server's delivery, not this client's
            # backlog.
            gc_tuning.for_many_streams()
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                result = runner.run(_measure(dev, model_url, server.url, generator, secret))
    env["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    result["environment"] = env
    return result


# --- Processes ----------------------------------------------------------------------------
def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # children inherit it


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def _process(args: list[str], env: dict[str, str], ready_url: str) -> Iterator[subprocess.Popen]:
    log = RESULTS_DIR / f"load-{Path(args[2]).suffix.lstrip('.') or args[2]}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:  # what the process said, for when a number looks wrong
        process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=output, stderr=output)
    try:
        _wait_http(ready_url)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def _model() -> Iterator[str]:
    port = _free_port()
    args = [sys.executable, "-m", "chat_dev.scripted_model", "--port", str(port), "--delay-ms", "0"]
    with _process(args, dict(os.environ), f"http://127.0.0.1:{port}/v1/models"):
        yield f"http://127.0.0.1:{port}/v1"


@dataclass
class _Generator:
    """The external agent generator as `create_agent` sees it: records the job, says 202."""

    url: str = ""
    jobs: asyncio.Queue | None = None
    loop: asyncio.AbstractEventLoop | None = None


@contextmanager
def _agent_generator() -> Iterator[_Generator]:
    import threading

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    generator = _Generator()

    async def accept(request: Request) -> JSONResponse:
        job = await request.json()
        if generator.loop is not None and generator.jobs is not None:
            generator.loop.call_soon_threadsafe(generator.jobs.put_nowait, job)
        return JSONResponse({"accepted": True}, status_code=202)

    port = _free_port()
    config = uvicorn.Config(
        Starlette(routes=[Route("/generate", accept, methods=["POST"])]),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    generator.url = f"http://127.0.0.1:{port}/generate"
    try:
        _wait_http(f"http://127.0.0.1:{port}/")
        yield generator
    finally:
        server.should_exit = True
        thread.join(5)


@dataclass
class _Dev:
    url: str
    host: str
    port: int
    pid: int


@contextmanager
def _dev_server(redis_url: str, model_url: str, generator_url: str, secret: str) -> Iterator[_Dev]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CHAT_REDIS_URL": redis_url,
        "CHAT_LLM_BASE_URL": model_url,
        "CHAT_LLM_API_KEY": "bench",
        "CHAT_WEBHOOK_SECRET": secret,
        "CHAT_AGENT_GENERATOR_URL": generator_url,
        "CHAT_PUBLIC_BASE_URL": url,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "LOG_LEVEL": "WARNING",
    }
    args = [sys.executable, "-m", "chat_dev.devserver", "--port", str(port)]
    with _process(args, env, f"{url}/api/chat/health") as process:
        yield _Dev(url, "127.0.0.1", port, process.pid)


async def _quiet(dev: _Dev, seconds: float = 15.0) -> None:
    """Until the server has finished what the last section left it (the titles of 200 turns
    go out a moment after their answers, for one): each section measures its own load."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        before = _cpu_seconds(dev.pid)
        await asyncio.sleep(QUIET_WINDOW_SECONDS)
        if _cpu_seconds(dev.pid) - before <= QUIET_CPU_SHARE * QUIET_WINDOW_SECONDS:
            return


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- A cheap SSE client (a thousand of these share the benchmark's one core) ---------------
@dataclass
class _Read:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    chunks: int = 0
    deltas: int = 0
    connected_ms: float = 0.0  # epoch ms when the headers arrived
    samples: list[tuple[int, float]] = field(default_factory=list)  # (written ms, latency s)
    first_delta_at: float | None = None
    done: bool = False
    finished: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.finished and self.done and not self.errors


async def _sse(
    dev: _Dev,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    on_headers: Any = None,
    read: _Read | None = None,
) -> _Read:
    """One request, read to `[DONE]` (or its deadline), into `read` (watchable meanwhile)."""
    read = read or _Read()
    payload = json.dumps(body).encode() if body is not None else b""
    request = (
        f"{method} {path} HTTP/1.1\r\nHost: {dev.host}:{dev.port}\r\nAccept: text/event-stream\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + payload
    writer = None
    try:
        async with asyncio.timeout(DEADLINE_SECONDS):
            reader, writer = await asyncio.open_connection(dev.host, dev.port, limit=1 << 20)
            writer.write(request)
            status_line = await reader.readline()
            read.status = int(status_line.split()[1])
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                read.headers[name.strip().lower()] = value.strip()
            read.connected_ms = time.time() * 1000
            if on_headers is not None:
                on_headers(read)
            if read.status != 200:
                read.errors.append(f"HTTP {read.status}")
                return read
            chunked = read.headers.get("transfer-encoding") == "chunked"
            raw, buffer = b"", b""
            # Whatever has arrived, in one read: a thousand readers share this process's
            # core, so each event costs as few awaits as the framing allows.
            while data := await reader.read(65536):
                if chunked:
                    raw, body, ended = _unchunk(raw + data)
                    buffer += body
                else:
                    buffer, ended = buffer + data, False
                *events, buffer = buffer.split(b"\n\n")
                now_ms = time.time() * 1000
                for event in events:
                    _event(read, event, now_ms)
                if read.done or ended:
                    break
    except TimeoutError:
        read.errors.append("still open at the deadline")
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        read.errors.append(type(exc).__name__)
    finally:
        if writer is not None:
            writer.close()
    if read.status == 200 and not (read.finished and read.done):
        read.errors.append("no finish")
    return read


def _unchunk(raw: bytes) -> tuple[bytes, bytes, bool]:
    """HTTP/1.1 chunked framing: (what is left of `raw`, the body it held, ended)."""
    body, position = [], 0
    while (line_end := raw.find(b"\r\n", position)) != -1:
        size = int(raw[position:line_end] or b"0", 16)
        if size == 0:
            return b"", b"".join(body), True
        start = line_end + 2
        if len(raw) < start + size + 2:
            break
        body.append(raw[start : start + size])
        position = start + size + 2
    return raw[position:], b"".join(body), False


def _event(read: _Read, event: bytes, now_ms: float) -> None:
    entry_id, data = "", b""
    for line in event.split(b"\n"):
        if line.startswith(b"id: "):
            entry_id = line[4:].decode()
        elif line.startswith(b"data: "):
            data = line[6:]
    if not data:
        return
    if data == b"[DONE]":
        read.done = True
        return
    read.chunks += 1
    if data.startswith(b'{"type":"text-delta"'):
        read.deltas += 1
        if read.first_delta_at is None:
            read.first_delta_at = time.perf_counter()
        written_ms = int(entry_id.split("-")[0]) if entry_id else 0
        read.samples.append((written_ms, max(0.0, now_ms - written_ms) / 1000))
    elif data.startswith(b'{"type":"finish"'):
        read.finished = True
    elif data.startswith(b'{"type":"error"'):
        read.errors.append("error chunk: " + json.loads(data)["errorText"][:80])


# --- Measuring ----------------------------------------------------------------------------
async def _measure(
    dev: _Dev, model_url: str, redis_url: str, generator: _Generator, secret: str
) -> dict[str, Any]:
    generator.loop, generator.jobs = asyncio.get_running_loop(), asyncio.Queue()
    async with httpx.AsyncClient(base_url=dev.url, timeout=30) as api:
        control = model_url.removesuffix("/v1")
        sdk = openai.AsyncOpenAI(base_url=model_url, api_key="bench", max_retries=0)
        admin = redis.Redis.from_url(redis_url)
        try:
            readers, turns = {}, {}
            for n in READER_COUNTS:
                await _quiet(dev)
                readers[n] = await _readers(dev, api, control, admin, n)
            for n in TURN_COUNTS:
                await _quiet(dev)
                turns[n] = await _turns(dev, api, n)
            await _quiet(dev)
            first = await _first_token(dev, api, sdk)
            await _quiet(dev)
            webhook = await _webhook(dev, api, generator, secret, admin)
        finally:
            admin.close()
            await sdk.close()
    sdk_p50 = first["sdk_ms"]["p50"]
    webhook["first_token_model_excluded_ms"] = {
        k: round(v - sdk_p50, 3) if k in ("p50", "p99") else v
        for k, v in webhook["first_token_ms"].items()
    }
    headline = {
        "readers_1000_errors": readers[max(readers)]["errors"],
        "readers_1000_redis_connections": readers[max(readers)]["redis_connections"],
        "readers_1000_delivery_p99_ms": readers[max(readers)]["delivery_ms"]["p99"],
        "turns_200_errors": turns[max(turns)]["errors"],
        "first_token_ours_p50_ms": first["ours_p50_ms"],
        "webhook_first_token_p50_ms": webhook["first_token_model_excluded_ms"]["p50"],
    }
    targets, met = check_targets(TARGETS, headline)
    return {
        "benchmark": "load",
        **headline,
        "targets": targets,
        "targets_met": met,
        "readers": readers,
        "turns": turns,
        "first_token": first,
        "webhook": webhook,
        "table": _table(readers, turns, first, webhook),
    }


async def _new_session(api: httpx.AsyncClient) -> str:
    return (await api.post("/api/chat/sessions")).json()["id"]


async def _readers(
    dev: _Dev, api: httpx.AsyncClient, control: str, admin: redis.Redis, n: int
) -> dict[str, Any]:
    """N readers of one slow turn: the starter streams it, N more follow it by task id.
    Delivery and CPU are measured from the moment every reader has its replay, so they are
    what following a live turn costs, not connecting."""
    session = await _new_session(api)
    words = " ".join(f"w{i}" for i in range(READER_WORDS))
    await api.post(
        f"{control}/_scripted/queue",
        json={"kind": "reply", "text": words, "delay_ms": READER_DELTA_MS, "stream": True},
    )
    task_id: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    starter = asyncio.create_task(
        _sse(
            dev,
            "POST",
            f"/api/chat/sessions/{session}/stream",
            {"message": "count slowly"},
            on_headers=lambda r: task_id.set_result(r.headers.get("x-task-id", "")),
        )
    )
    tid = await asyncio.wait_for(task_id, 30)
    reads = [_Read() for _ in range(n)]
    readers = [
        asyncio.create_task(_sse(dev, "GET", f"/api/chat/tasks/{tid}/stream", read=read))
        for read in reads
    ]
    peak_clients = 0
    joined_by = time.monotonic() + READER_CONNECT_SECONDS
    while time.monotonic() < joined_by and not all(r.chunks or r.errors for r in reads):
        await asyncio.sleep(0.05)
        peak_clients = max(peak_clients, admin.info("clients")["connected_clients"])
    live_from_ms = time.time() * 1000
    cpu_before = _cpu_seconds(dev.pid)
    live_until = time.monotonic() + READER_LIVE_SECONDS
    while time.monotonic() < live_until:
        await asyncio.sleep(0.2)
        peak_clients = max(peak_clients, admin.info("clients")["connected_clients"])
    cpu = _cpu_seconds(dev.pid) - cpu_before
    live_until_ms = time.time() * 1000
    await api.post(f"/api/chat/tasks/{tid}/cancel")  # every reader then gets its finish
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not all(r.done() for r in readers) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    results = [await r for r in readers]
    await starter
    live = [
        latency
        for r in results
        for written, latency in r.samples
        if live_from_ms < written < live_until_ms and written > r.connected_ms
    ]
    return {
        "readers": n,
        "errors": sum(not r.ok for r in results),
        "error_kinds": sorted({e for r in results for e in r.errors})[:5],
        "redis_connections": peak_clients - 1,  # less the benchmark's own
        "delivery_ms": summary_ms(live) if live else {"n": 0, "p50": -1.0, "p99": -1.0},
        "live_deliveries": len(live),
        "server_cpu_s": round(cpu, 3),
        "server_cpu_us_per_chunk_per_reader": round(cpu / len(live) * 1e6, 2) if live else -1,
    }


async def _turns(dev: _Dev, api: httpx.AsyncClient, n: int) -> dict[str, Any]:
    """N turns started at once, each in its own session, each read to the end."""
    sessions = [await _new_session(api) for _ in range(n)]
    started = time.perf_counter()

    async def turn(session: str) -> tuple[_Read, float]:
        began = time.perf_counter()
        read = await _sse(
            dev, "POST", f"/api/chat/sessions/{session}/stream", {"message": "say something"}
        )
        return read, began

    runs = await asyncio.gather(*(turn(s) for s in sessions))
    wall = time.perf_counter() - started
    firsts = [r.first_delta_at - began for r, began in runs if r.first_delta_at is not None]
    return {
        "turns": n,
        "errors": sum(not r.ok for r, _ in runs),
        "error_kinds": sorted({e for r, _ in runs for e in r.errors})[:5],
        "first_token_ms": summary_ms(firsts) if firsts else {"n": 0, "p50": -1.0, "p99": -1.0},
        "wall_seconds": round(wall, 2),
    }


async def _sdk_first_token(sdk: openai.AsyncOpenAI) -> float:
    began = time.perf_counter()
    stream = await sdk.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "say something"}], stream=True
    )
    first = None
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - began
    return first if first is not None else float("nan")


async def _first_token(
    dev: _Dev, api: httpx.AsyncClient, sdk: openai.AsyncOpenAI
) -> dict[str, Any]:
    """One turn at a time, next to the SDK alone against the same model, alternating."""
    ours: list[float] = []
    alone: list[float] = []
    errors = 0
    for _ in range(FIRST_TOKEN_ROUNDS):
        alone.append(await _sdk_first_token(sdk))
        session = await _new_session(api)
        began = time.perf_counter()
        read = await _sse(
            dev, "POST", f"/api/chat/sessions/{session}/stream", {"message": "say something"}
        )
        errors += not read.ok
        if read.first_delta_at is not None:
            ours.append(read.first_delta_at - began)
    e2e, sdk_ms = summary_ms(ours), summary_ms(alone)
    return {
        "rounds": FIRST_TOKEN_ROUNDS,
        "errors": errors,
        "end_to_end_ms": e2e,
        "sdk_ms": sdk_ms,
        "ours_p50_ms": round(e2e["p50"] - sdk_ms["p50"], 3),
    }


def _signed(secret: str, body: bytes) -> dict[str, str]:
    webhook_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, body.decode()),
        "content-type": "application/json",
    }


async def _post(
    dev: _Dev, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes, float]:
    """POST as the external service would, on a connection of its own: (status, body, when
    the request's bytes were written). The clock starts there, not before a client library
    has built the request: its set-up is the sender's, not the backend's."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {dev.host}:{dev.port}\r\n{head}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection(dev.host, dev.port)
    try:
        written = time.perf_counter()
        writer.write(request)
        response = await asyncio.wait_for(reader.read(), DEADLINE_SECONDS)
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2], written


async def _webhook(
    dev: _Dev, api: httpx.AsyncClient, generator: _Generator, secret: str, admin: redis.Redis
) -> dict[str, Any]:
    """Webhook posted → the continuation's first text-delta at a reader of the operation."""
    assert generator.jobs is not None
    samples: list[float] = []
    errors: list[str] = []
    for _ in range(WEBHOOK_ROUNDS):
        session = await _new_session(api)
        # In the background: the turn's stream may stay open while its operation waits.
        turn = asyncio.create_task(
            _sse(
                dev,
                "POST",
                f"/api/chat/sessions/{session}/stream",
                {"message": "Create an agent that sums up the news every morning"},
            )
        )
        try:
            job = await asyncio.wait_for(generator.jobs.get(), 10)
        except TimeoutError:
            errors.append("no create_agent call")
            await turn
            continue
        task = job["task_id"]
        last = admin.xrevrange(f"chat:task:{{{task}}}:stream", count=1)
        cursor = last[0][0].decode() if last else "0-0"
        reader = asyncio.create_task(
            _sse(dev, "GET", f"/api/chat/tasks/{task}/stream?last_message_id={cursor}")
        )
        await asyncio.sleep(0.2)  # the reader follows the operation's task live
        body = json.dumps(
            {
                "operation_id": job["operation_id"],
                "success": True,
                "result": {"agent_id": "a1", "name": "News"},
            }
        ).encode()
        status, answer, posted = await _post(
            dev, job["callback_url"].removeprefix(dev.url), body, _signed(secret, body)
        )
        if status != 202:  # nothing will follow: do not wait out the deadline
            reader.cancel()
            turn.cancel()
            await asyncio.gather(reader, turn, return_exceptions=True)
            errors.append(f"webhook {status}: {answer[:120]!r}")
            continue
        read = await reader
        await turn
        if read.first_delta_at is None or not read.ok:
            errors.append(f"webhook {status}, reader {read.errors}")
            continue
        samples.append(read.first_delta_at - posted)
    return {
        "rounds": WEBHOOK_ROUNDS,
        "errors": len(errors),
        "error_kinds": errors[:3],
        "first_token_ms": summary_ms(samples) if samples else {"n": 0, "p50": -1.0, "p99": -1.0},
    }


# --- Output -------------------------------------------------------------------------------
def _table(
    readers: dict[int, dict[str, Any]],
    turns: dict[int, dict[str, Any]],
    first: dict[str, Any],
    webhook: dict[str, Any],
) -> dict[str, Any]:
    rows: list[list[Any]] = []
    for n, r in readers.items():
        rows.append(
            [
                f"{n} readers of one turn",
                r["errors"],
                r["redis_connections"],
                f"{r['delivery_ms']['p50']:.0f} / {r['delivery_ms']['p99']:.0f} ms",
                f"{r['server_cpu_us_per_chunk_per_reader']} µs",
            ]
        )
    for n, t in turns.items():
        rows.append(
            [
                f"{n} concurrent turns",
                t["errors"],
                "",
                f"first token {t['first_token_ms']['p50']:.1f} / {t['first_token_ms']['p99']:.1f} ms",
                f"all done in {t['wall_seconds']} s",
            ]
        )
    rows.append(
        [
            "first token, one turn",
            first["errors"],
            "",
            f"ours {first['ours_p50_ms']:.2f} ms p50",
            f"e2e {first['end_to_end_ms']['p50']:.2f}, SDK alone {first['sdk_ms']['p50']:.2f} ms",
        ]
    )
    excluded = webhook["first_token_model_excluded_ms"]
    rows.append(
        [
            "webhook → continuation",
            webhook["errors"],
            "",
            f"model excluded {excluded['p50']:.2f} / {excluded['p99']:.2f} ms",
            f"with the model {webhook['first_token_ms']['p50']:.2f} ms p50",
        ]
    )
    return {
        "columns": ["load", "errors", "Redis conns", "p50 / p99", "server CPU / other"],
        "rows": rows,
    }
