"""Turn benchmark: what the whole turn pipeline adds to a model's stream, against reading the
same scripted model directly with the `openai` SDK, side by side in one run.

    .venv/bin/python -m bench turn          # `make bench` runs every benchmark

Starts its own redis-server, a scripted OpenAI-compatible model and a stream reader (each in
its own process), takes about 40 s, and writes bench/results/turn.json. Four ways of reading
the same scripted answer, in rotating order, round after round:

- `sdk`: a plain AsyncOpenAI client streaming the answer; the baseline.
- `ours`: the real turn. A session, `start_turn` (task created, user message saved, job handed
  to a dispatcher that only records it), then `run_job(RunTurn)`: lease, stream_chat_completion,
  ChunkPublisher, Lua publish into the task stream. Timed twice: when Redis acknowledged the
  write that put a piece in the task stream (in the worker), and where a reader sees it, in
  another process through `registry.subscribe(task_id, "0-0")`. Default settings
  (write-behind, no window).
- `ours, 10 ms window`: the same with coalesce_ms=10, so a window's cost is on record.
- `bare XADD`: the SDK plus one plain XADD per delta into a task stream, read the same way.
  Not a design anyone ships: it is the Redis hop alone, the floor under any design in which a
  reader follows a Redis stream, so what is ours and what is the hop can be told apart.

Method. The model process notes, with CLOCK_MONOTONIC (time.perf_counter, the same clock in
every process on Linux; checked at start), when it hands each streamed event to its socket;
the SDK client notes when each piece of text reaches it, the worker when the write holding
it was acknowledged, and the reader when it sees it. A piece's latency is (that time) −
(time the model sent it), so request start-up, which differs between the sides, drops out.
Text the publisher merged into one entry counts from the entry holding its last character.

- first_chunk_overhead_ms: median first-piece latency of `ours` (model sends the first
  token → the first text-delta is in the task stream) − the same median for `sdk` (→ the
  SDK yields it). Samples: every paced run at default settings plus short answers.
- per_chunk_overhead_p50_ms (the target, < 1 ms): the p50 latency of every later piece until
  it is in the task stream, `ours` − `sdk`, pooled over the rounds, for two paced models:
  ~300 small deltas 5 ms apart (a fast model) and ~120 deltas 15 ms apart (a typical one;
  every process idles between deltas). The larger of the two, so neither workload can hide a
  regression. per_chunk_overhead_p99_ms likewise at p99.
- reader_*: the same measures where a reader in another process sees the piece. They add the
  reader's hop (XREAD wake-up and delivery), which `bare XADD` puts on record alone.
- per_chunk_overhead_burst_ms: the answer sent at once (no delay): (median time from the
  first piece sent to the last text visible, `ours` − `sdk`) / pieces. Throughput, not
  latency. per_chunk_cpu_overhead_burst_ms: the same from the worker process's CPU time
  (which includes the turn's fixed work, a few ms, spread over the pieces).
- coalescing_window_p50_ms / _p99_ms: `ours, 10 ms window` − `ours`, fast model.
- redis_hop_p50_ms: `bare XADD` − `sdk`, fast model: the part no code of ours can remove.
- pre_model_overhead_ms: median (job start → the model's first event) − median (SDK
  create() → first event): what the turn does before it asks the model (lease, session,
  prompt, tool schemas). Not per chunk, but the user waits for it too.

Why processes: in one process the model's thread and the pipeline would share the GIL
(5 ms switch interval) and the reader would wait for the worker's loop; in production the
model is remote and the reader is another Lambda.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate
from multiprocessing.connection import Connection
from typing import Any

import openai
from chat_core import keys, redis_client, registry, tasks
from chat_core.chat.llm import get_llm_client, reset_llm_clients
from chat_core.protocol.chunks import FINISH_JSON
from chat_core.sessions import get_session_store
from chat_core.settings import Settings, get_settings
from chat_core.worker.dispatch import set_dispatcher
from chat_core.worker.jobs import Job
from chat_core.worker.runner import run_job
from chat_dev.scripted_model import ReplyWith, ScriptedModelServer

from bench._common import (
    Target,
    check_targets,
    embedded_redis,
    environment,
    median,
    percentile,
    summary_ms,
)

TARGETS = (Target("per_chunk_overhead_p50_ms", "<", 1),)


@dataclass(frozen=True)
class _Pace:
    name: str
    delay_ms: int
    words: int  # the scripted server streams 1–3 words a piece: about words / 2 pieces


FAST = _Pace("fast", delay_ms=5, words=600)
TYPICAL = _Pace("typical", delay_ms=15, words=240)
BURST = _Pace("burst", delay_ms=0, words=800)
SHORT = _Pace("short", delay_ms=5, words=20)  # more first-chunk samples, cheaply

PACED_ROUNDS = 2
BURST_ROUNDS = 4
SHORT_ROUNDS = 8
COALESCE_MS: int = Settings.model_fields["coalesce_ms"].default  # what ships

USER_ID = "bench-user"
USER_MESSAGE = "Tell me a long story about a fox."
_VOCABULARY = "the a fox ran over hill and then it saw sun sky red blue to of in on by we".split()

SDK, OURS, OURS_WINDOW, BARE_XADD = "sdk", "ours", "ours_window", "bare_xadd"
VARIANTS = (SDK, OURS, OURS_WINDOW, BARE_XADD)
WINDOW_MS = 10

Emitted = list[tuple[str | None, float]]  # (text of the event, or None; when it was sent)
Seen = list[tuple[float, str]]  # (when the reader got it, the entry's data)


# --- The model and the reader, each in its own process --------------------------------------
class _TimedModelServer(ScriptedModelServer):
    """The scripted server, noting when it hands each streamed event to the socket."""

    def __init__(self) -> None:
        super().__init__()
        self.streams: list[Emitted] = []

    def start(self, timeout: float = 10.0) -> _TimedModelServer:
        super().start(timeout)
        # The parent binds a socket with proto 0, and asyncio sets TCP_NODELAY only on
        # sockets whose proto is IPPROTO_TCP: its connections keep Nagle on, and a stream's
        # first bytes then wait ~40 ms for the client's delayed ACK, now and then. No real
        # provider does that. Accepted sockets inherit the option from the listener.
        assert self._server is not None
        for listener in self._server.servers:
            for sock in listener.sockets:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    async def _paced(self, events: list[str], behaviour: Any) -> AsyncIterator[str]:
        texts = [_text_of(event) for event in events]  # parsed before, not while, timing
        emitted: Emitted = []
        self.streams.append(emitted)
        async for event in super()._paced(events, behaviour):
            emitted.append((texts[len(emitted)], time.perf_counter()))
            yield event


def _text_of(event: str) -> str | None:
    payload = event.removeprefix("data: ").strip()
    if payload == "[DONE]":
        return None
    choices = json.loads(payload).get("choices") or []
    return (choices[0].get("delta") or {}).get("content") if choices else None


def _serve_model(conn: Connection) -> None:
    server = _TimedModelServer().start()
    conn.send(server.base_url)
    try:
        while True:
            command, *args = conn.recv()
            if command == "reply":
                text, delay_ms = args
                server.enqueue(ReplyWith(text=text, delay_ms=delay_ms, stream=True))
                conn.send(None)
            elif command == "take":
                streams, server.streams = server.streams, []
                bodies = [request.body for request in server.chat_requests]
                server.clear()
                conn.send((streams, bodies))
            else:
                return
    finally:
        server.stop()


def _serve_reader(conn: Connection) -> None:
    asyncio.run(_read_tasks(conn))


async def _read_tasks(conn: Connection) -> None:
    try:
        while True:
            command, *args = await asyncio.to_thread(conn.recv)
            if command != "read":
                return
            seen: Seen = []
            async with registry.subscribe(args[0], "0-0") as subscription:
                await asyncio.sleep(0.03)  # the listener reaches its blocking XREAD
                conn.send("ready")
                async for entry in subscription:
                    seen.append((time.perf_counter(), entry.data))
            conn.send(seen)
    finally:
        await redis_client.close_redis()


class _Child:
    """A helper process, driven by messages over a pipe."""

    def __init__(self, target: Callable[[Connection], None], name: str) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        self._conn, child_end = ctx.Pipe()
        self._process = ctx.Process(target=target, args=(child_end,), name=name, daemon=True)

    def __enter__(self) -> _Child:
        self._process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._conn.send(("stop",))
        except OSError:
            pass
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def ask(self, *command: Any) -> Any:
        self._conn.send(command)
        return self.answer()

    def answer(self, timeout: float = 60) -> Any:
        if not self._conn.poll(timeout):
            raise RuntimeError(f"{self._process.name} did not answer within {timeout} s")
        return self._conn.recv()


# --- One run ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Run:
    pieces: list[str]
    emitted: list[float]  # when the model sent each piece of text
    visible: list[float]  # when each piece reached the SDK client, or the reader
    started: float  # create() called, or the job started
    first_event: float  # the model's first event (the role, before any text)
    last_event: float  # the model's [DONE]
    ended: float  # the SDK stream closed, or the reader saw `finish`
    cpu_seconds: float  # this process, during the run
    entries: int  # text-delta entries in the task stream (SDK: pieces read)
    written: list[float] | None = None  # when the write holding each piece was acknowledged

    @property
    def latencies(self) -> list[float]:
        return [v - e for v, e in zip(self.visible, self.emitted, strict=False)]

    @property
    def in_stream(self) -> list[float]:
        """Latency until the piece is in the task stream (the SDK's: until it has it)."""
        return [w - e for w, e in zip(self.written or self.visible, self.emitted, strict=False)]

    @property
    def text_seconds(self) -> float:
        return self.visible[-1] - self.emitted[0]


def _text_pieces(stream: Emitted) -> tuple[list[str], list[float]]:
    texts = [(text, at) for text, at in stream if text]
    return [text for text, _ in texts], [at for _, at in texts]


def _cover(pieces: list[str], deltas: list[tuple[float, str]]) -> list[float]:
    """When each piece arrived: the time of the delta holding its last character."""
    if "".join(delta for _, delta in deltas) != "".join(pieces):
        raise RuntimeError("the task stream's text differs from what the model sent")
    times: list[float] = []
    covered, next_entry, at = 0, 0, 0.0
    for end in accumulate(len(piece) for piece in pieces):
        while covered < end:
            at, delta = deltas[next_entry]
            covered += len(delta)
            next_entry += 1
        times.append(at)
    return times


def _text_deltas(timed_chunks: list[tuple[float, str]]) -> list[tuple[float, str]]:
    chunks = [(at, json.loads(data)) for at, data in timed_chunks]
    return [(at, chunk["delta"]) for at, chunk in chunks if chunk["type"] == "text-delta"]


def _read_by_reader(
    stream: Emitted, seen: Seen, started: float, cpu: float, writes: list[tuple[float, str]]
) -> _Run:
    pieces, emitted = _text_pieces(stream)
    deltas = _text_deltas(seen)
    if not seen or seen[-1][1] != FINISH_JSON:
        raise RuntimeError("the reader did not see the task finish")
    return _Run(
        pieces, emitted, _cover(pieces, deltas), started, stream[0][1], stream[-1][1], seen[-1][0],
        cpu, len(deltas), _cover(pieces, _text_deltas(writes)),
    )  # fmt: skip


@contextmanager
def _timed_writes() -> Iterator[list[tuple[float, str]]]:
    """Note when Redis acknowledged each write the publisher made (the chunk is in the task
    stream from then on): the same function, timed where it returns."""
    writes: list[tuple[float, str]] = []
    original = registry.publish_chunks

    async def timed(task_id: str, chunks: Sequence[Any], **options: Any) -> list[str]:
        ids = await original(task_id, chunks, **options)
        at = time.perf_counter()
        writes.extend((at, c if isinstance(c, str) else c.to_json()) for c in chunks)
        return ids

    registry.publish_chunks = timed  # type: ignore[assignment]
    try:
        yield writes
    finally:
        registry.publish_chunks = original  # type: ignore[assignment]


def _answer_text(words: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(_VOCABULARY) for _ in range(words))


class _Readers:
    """The four ways of reading one scripted answer. Each run is one model call."""

    def __init__(self, model: _Child, reader: _Child) -> None:
        self.model = model
        self.reader = reader
        self.request: dict[str, Any] | None = None  # what the turn sends; the SDK sends it too
        self._sdk: openai.AsyncOpenAI | None = None

    def _model_stream(self) -> tuple[Emitted, list[Any]]:
        streams, bodies = self.model.ask("take")
        if len(streams) != 1:
            raise RuntimeError(f"expected one streamed model call, got {len(streams)}")
        return streams[0], bodies

    def _subscribe(self, task_id: str) -> None:
        if self.reader.ask("read", task_id) != "ready":
            raise RuntimeError("the reader did not subscribe")

    async def ours(self, text: str, delay_ms: int) -> _Run:
        store = get_session_store()
        session = await store.create(USER_ID)
        # Titled already: no title request to the model beside the turn.
        await store.update_title(session.session_id, "Bench")
        jobs: list[Job] = []

        class Recorder:
            async def dispatch(self, job: Job) -> None:
                jobs.append(job)

        set_dispatcher(Recorder())
        try:
            task = await tasks.start_turn(session.session_id, USER_MESSAGE, USER_ID)
        finally:
            set_dispatcher(None)
        self.model.ask("reply", text, delay_ms)
        self._subscribe(task.task_id)
        cpu = time.process_time()
        started = time.perf_counter()
        with _timed_writes() as writes:
            status = await run_job(jobs[0])
        cpu = time.process_time() - cpu
        seen = await asyncio.to_thread(self.reader.answer)
        if status != "completed":
            raise RuntimeError(f"the turn ended {status}")
        stream, bodies = self._model_stream()
        self.request = bodies[-1]
        return _read_by_reader(stream, seen, started, cpu, writes)

    def _client(self) -> openai.AsyncOpenAI:
        if self._sdk is None:
            settings = get_settings()
            self._sdk = openai.AsyncOpenAI(
                base_url=settings.llm_base_url,
                api_key=settings.secret("llm_api_key"),
                max_retries=0,
            )
        return self._sdk

    async def sdk(self, text: str, delay_ms: int) -> _Run:
        assert self.request is not None, "run the turn once first: the SDK sends its request"
        self.model.ask("reply", text, delay_ms)
        arrivals: list[tuple[float, str]] = []
        cpu = time.process_time()
        started = time.perf_counter()
        # The body as the turn sent it; a provider field the SDK has no argument for (an
        # OpenRouter `session_id`) travels the way the turn sent it, in extra_body.
        request = dict(self.request)
        extra = {name: request.pop(name) for name in ("session_id",) if name in request}
        stream = await self._client().chat.completions.create(**request, extra_body=extra or None)
        async with stream:
            async for event in stream:
                now = time.perf_counter()
                if event.choices and (content := event.choices[0].delta.content):
                    arrivals.append((now, content))
        ended = time.perf_counter()
        cpu = time.process_time() - cpu
        record, _ = self._model_stream()
        pieces, emitted = _text_pieces(record)
        if [content for _, content in arrivals] != pieces:
            raise RuntimeError("the SDK read other text than the model sent")
        return _Run(
            pieces, emitted, [at for at, _ in arrivals], started, record[0][1], record[-1][1],
            ended, cpu, len(arrivals),
        )  # fmt: skip

    async def bare_xadd(self, text: str, delay_ms: int) -> _Run:
        assert self.request is not None
        r = redis_client.get_redis()
        task = await tasks.create_turn(f"bare-{uuid.uuid4()}", None)
        stream_key = keys.task_stream(task.task_id)
        self.model.ask("reply", text, delay_ms)
        self._subscribe(task.task_id)
        cpu = time.process_time()
        started = time.perf_counter()
        writes: list[tuple[float, str]] = []
        # The body as the turn sent it; a provider field the SDK has no argument for (an
        # OpenRouter `session_id`) travels the way the turn sent it, in extra_body.
        request = dict(self.request)
        extra = {name: request.pop(name) for name in ("session_id",) if name in request}
        stream = await self._client().chat.completions.create(**request, extra_body=extra or None)
        async with stream:
            async for event in stream:
                if event.choices and (content := event.choices[0].delta.content):
                    data = json.dumps({"type": "text-delta", "id": "t1", "delta": content})
                    await r.xadd(stream_key, {"data": data})
                    writes.append((time.perf_counter(), data))
        await tasks.finish(task, "completed")  # the reader stops at `finish`
        cpu = time.process_time() - cpu
        seen = await asyncio.to_thread(self.reader.answer)
        record, _ = self._model_stream()
        return _read_by_reader(record, seen, started, cpu, writes)

    def variant(self, name: str) -> Callable[[str, int], Awaitable[_Run]]:
        if name in (OURS, OURS_WINDOW):
            coalesce_ms = COALESCE_MS if name == OURS else WINDOW_MS

            async def turn(text: str, delay_ms: int) -> _Run:
                _set_coalesce_ms(coalesce_ms)  # ChunkPublisher reads it when the turn starts
                return await self.ours(text, delay_ms)

            return turn
        return {SDK: self.sdk, BARE_XADD: self.bare_xadd}[name]

    async def close(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
        await get_llm_client().close()


def _set_coalesce_ms(ms: int) -> None:
    os.environ["CHAT_COALESCE_MS"] = str(ms)
    get_settings.cache_clear()


# --- Running it ------------------------------------------------------------------------------
@contextmanager
def _chat_env(**values: str) -> Iterator[None]:
    """CHAT_* settings for this run, restored after."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    get_settings.cache_clear()
    reset_llm_clients()
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
        reset_llm_clients()


def _check_clock() -> None:
    # Latencies subtract timestamps taken in different processes.
    clock = time.get_clock_info("perf_counter").implementation
    if "CLOCK_MONOTONIC" not in clock:
        raise RuntimeError(f"perf_counter is {clock}, not shared between processes")


def run() -> dict[str, Any]:
    _check_clock()
    # Redis first: the reader process inherits CHAT_REDIS_URL when it starts.
    with (
        embedded_redis() as server,
        _Child(_serve_model, "scripted-model") as model,
        _Child(_serve_reader, "stream-reader") as reader,
    ):
        base_url = model.answer()
        with _chat_env(
            CHAT_LLM_BASE_URL=base_url,
            CHAT_LLM_API_KEY="bench-key",
            CHAT_COALESCE_MS=str(COALESCE_MS),
            CHAT_LANGFUSE_PUBLIC_KEY="",  # the built-in prompt: no network beside the model
            CHAT_LANGFUSE_SECRET_KEY="",
        ):
            env = environment(server)
            result = asyncio.run(_measure(_Readers(model, reader)))
    env["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    result["environment"] = env
    return result


async def _measure(readers: _Readers) -> dict[str, Any]:
    section_seconds: dict[str, float] = {}
    runs: dict[str, dict[str, list[_Run]]] = {}
    try:
        warm_up = _answer_text(40, seed=0)
        await readers.ours(warm_up, 0)  # first: it records the request the SDK then sends
        for name in VARIANTS:  # unmeasured: connections, Lua scripts, imports
            await readers.variant(name)(warm_up, 0)
        for pace, rounds in ((FAST, PACED_ROUNDS), (TYPICAL, PACED_ROUNDS), (BURST, BURST_ROUNDS)):
            started = time.perf_counter()
            runs[pace.name] = await _rounds(readers, pace, VARIANTS, rounds)
            section_seconds[pace.name] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        runs[SHORT.name] = await _rounds(readers, SHORT, (SDK, OURS), SHORT_ROUNDS)
        section_seconds[SHORT.name] = round(time.perf_counter() - started, 1)
    finally:
        _set_coalesce_ms(COALESCE_MS)
        await readers.close()
        await redis_client.close_redis()
    return _report(runs, section_seconds)


async def _rounds(
    readers: _Readers, pace: _Pace, names: Sequence[str], rounds: int
) -> dict[str, list[_Run]]:
    text = _answer_text(pace.words, seed=pace.delay_ms + 1)
    runs: dict[str, list[_Run]] = {name: [] for name in names}
    for round_no in range(rounds):
        # Rotate who goes first, so a burst of noise does not always hit the same side.
        shift = round_no % len(names)
        for name in [*names[shift:], *names[:shift]]:
            runs[name].append(await readers.variant(name)(text, pace.delay_ms))
    return runs


# --- Report ----------------------------------------------------------------------------------
def _r(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _paced_report(pace: _Pace, runs: dict[str, list[_Run]]) -> dict[str, Any]:
    """Latency of every piece but the first (that one is the first-chunk measure)."""
    report: dict[str, Any] = {
        "delay_ms": pace.delay_ms,
        "chunks": len(runs[SDK][0].pieces),
        "rounds": len(runs[SDK]),
    }
    for name, variant_runs in runs.items():
        in_stream = [lat for run in variant_runs for lat in run.in_stream[1:]]
        at_reader = [lat for run in variant_runs for lat in run.latencies[1:]]
        report[name] = {
            "latency_ms": summary_ms(in_stream),
            "reader_latency_ms": summary_ms(at_reader),
            "p50_per_round_ms": [_r(percentile(run.in_stream[1:], 50)) for run in variant_runs],
            "entries_per_run": [run.entries for run in variant_runs],
        }
    sdk = report[SDK]["latency_ms"]
    for name in runs:
        if name != SDK:
            for measure, prefix in (
                ("latency_ms", "overhead"),
                ("reader_latency_ms", "reader_overhead"),
            ):
                mine = report[name][measure]
                report[name][f"{prefix}_p50_ms"] = round(mine["p50"] - sdk["p50"], 3)
                report[name][f"{prefix}_p99_ms"] = round(mine["p99"] - sdk["p99"], 3)
    return report


def _burst_report(runs: dict[str, list[_Run]]) -> dict[str, Any]:
    chunks = len(runs[SDK][0].pieces)
    report: dict[str, Any] = {"chunks": chunks, "rounds": len(runs[SDK])}
    for name, variant_runs in runs.items():
        report[name] = {
            "text_ms": _r(median([run.text_seconds for run in variant_runs])),
            "text_runs_ms": [_r(run.text_seconds) for run in variant_runs],
            "cpu_ms": _r(median([run.cpu_seconds for run in variant_runs])),
            "entries": round(median([run.entries for run in variant_runs])),
            "model_send_ms": _r(median([run.emitted[-1] - run.emitted[0] for run in variant_runs])),
        }
    sdk = report[SDK]
    for name in runs:
        if name != SDK:
            report[name]["overhead_per_chunk_ms"] = round(
                (report[name]["text_ms"] - sdk["text_ms"]) / chunks, 4
            )
            report[name]["cpu_overhead_per_chunk_ms"] = round(
                (report[name]["cpu_ms"] - sdk["cpu_ms"]) / chunks, 4
            )
    return report


def _edges_report(runs: dict[str, dict[str, list[_Run]]]) -> dict[str, Any]:
    """The ends of the turn, over every paced and short run at default settings."""
    sides: dict[str, list[_Run]] = {SDK: [], OURS: []}
    for pace in (FAST, TYPICAL, SHORT):
        for name in sides:
            sides[name] += runs[pace.name][name]
    first = {name: [run.in_stream[0] for run in side] for name, side in sides.items()}
    first_at_reader = [run.latencies[0] for run in sides[OURS]]
    setup = {name: [run.first_event - run.started for run in side] for name, side in sides.items()}
    tail = {name: [run.ended - run.last_event for run in side] for name, side in sides.items()}
    # The floor under the first chunk: one XADD, no text-start before it (paced runs only).
    bare = [run.latencies[0] for pace in (FAST, TYPICAL) for run in runs[pace.name][BARE_XADD]]
    return {
        "runs_per_side": len(sides[SDK]),
        "first_chunk_ms": {name: summary_ms(values) for name, values in first.items()},
        "first_chunk_overhead_ms": _r(median(first[OURS]) - median(first[SDK])),
        "reader_first_chunk_overhead_ms": _r(median(first_at_reader) - median(first[SDK])),
        "first_chunk_bare_xadd_ms": summary_ms(bare),
        "pre_model_ms": {name: summary_ms(values) for name, values in setup.items()},
        "pre_model_overhead_ms": _r(median(setup[OURS]) - median(setup[SDK])),
        "after_model_done_ms": {name: summary_ms(values) for name, values in tail.items()},
        "after_model_done_overhead_ms": _r(median(tail[OURS]) - median(tail[SDK])),
    }


def _report(
    runs: dict[str, dict[str, list[_Run]]], section_seconds: dict[str, float]
) -> dict[str, Any]:
    fast = _paced_report(FAST, runs[FAST.name])
    typical = _paced_report(TYPICAL, runs[TYPICAL.name])
    burst = _burst_report(runs[BURST.name])
    edges = _edges_report(runs)
    window = {
        q: round(fast[OURS_WINDOW]["latency_ms"][q] - fast[OURS]["latency_ms"][q], 3)
        for q in ("p50", "p99")
    }
    by_model = {
        f"{pace.name}_{pace.delay_ms}ms": {
            q: report[OURS][f"overhead_{q}_ms"] for q in ("p50", "p99")
        }
        for pace, report in ((FAST, fast), (TYPICAL, typical))
    }
    reader_by_model = {
        f"{pace.name}_{pace.delay_ms}ms": {
            q: report[OURS][f"reader_overhead_{q}_ms"] for q in ("p50", "p99")
        }
        for pace, report in ((FAST, fast), (TYPICAL, typical))
    }
    headline = {
        "first_chunk_overhead_ms": edges["first_chunk_overhead_ms"],
        "per_chunk_overhead_p50_ms": max(m["p50"] for m in by_model.values()),
        "per_chunk_overhead_p99_ms": max(m["p99"] for m in by_model.values()),
        "per_chunk_overhead_by_model_ms": by_model,
        "reader_first_chunk_overhead_ms": edges["reader_first_chunk_overhead_ms"],
        "reader_per_chunk_overhead_p50_ms": max(m["p50"] for m in reader_by_model.values()),
        "reader_per_chunk_overhead_by_model_ms": reader_by_model,
        "per_chunk_overhead_burst_ms": burst[OURS]["overhead_per_chunk_ms"],
        "per_chunk_cpu_overhead_burst_ms": burst[OURS]["cpu_overhead_per_chunk_ms"],
        "coalescing_window_p50_ms": window["p50"],
        "coalescing_window_p99_ms": window["p99"],
        "redis_hop_p50_ms": fast[BARE_XADD]["overhead_p50_ms"],
        "pre_model_overhead_ms": edges["pre_model_overhead_ms"],
    }
    targets, targets_met = check_targets(TARGETS, headline)
    return {
        "benchmark": "turn",
        **headline,
        "targets": targets,
        "targets_met": targets_met,
        "definitions": {
            "latency": "time a piece of text is in the task stream (Redis acknowledged the "
            "write; for `sdk`: the client has it) − time the model process sent it; same clock",
            "reader_latency": "time a reader of the task stream in another process sees the "
            "piece − time the model process sent it",
            "per_chunk_overhead_p50_ms": "p50 latency of `ours` − p50 of `sdk` over every piece "
            "but the first, pooled over rounds, default settings; the larger of the fast "
            f"({FAST.delay_ms} ms/chunk) and typical ({TYPICAL.delay_ms} ms/chunk) model",
            "reader_per_chunk_overhead_p50_ms": "the same, where a reader sees the piece",
            "per_chunk_overhead_burst_ms": "(median first piece sent → last text visible, "
            "`ours` − `sdk`) / pieces, answer sent with no delay",
            "per_chunk_cpu_overhead_burst_ms": "(median CPU time of this process during the "
            "run, `ours` − `sdk`) / pieces, burst; includes the turn's fixed work",
            "first_chunk_overhead_ms": "median first-piece latency, `ours` − `sdk`",
            "coalescing_window_ms": "`ours_window` (coalesce_ms=10) − `ours`, fast model",
            "redis_hop_p50_ms": "`bare_xadd` − `sdk` at p50, fast model",
            "pre_model_overhead_ms": "median (job start → model's first event) − median "
            "(SDK create() → model's first event)",
        },
        "paced_fast": fast,
        "paced_typical": typical,
        "burst": burst,
        "edges": edges,
        "settings": {"coalesce_ms": COALESCE_MS},
        "workloads": {
            pace.name: {"delay_ms": pace.delay_ms, "words": pace.words}
            for pace in (FAST, TYPICAL, BURST, SHORT)
        },
        "section_seconds": section_seconds,
        "table": _table(fast, typical, burst, edges),
    }


# --- Table -----------------------------------------------------------------------------------
def _ms(value: float) -> str:
    return f"{value:,.3f} ms" if abs(value) < 10 else f"{value:,.1f} ms"


def _plus(value: float) -> str:
    return f"{'+' if value >= 0 else '−'}{_ms(abs(value))}"


def _table(
    fast: dict[str, Any], typical: dict[str, Any], burst: dict[str, Any], edges: dict[str, Any]
) -> dict[str, Any]:
    sdk_first, ours_first = edges["first_chunk_ms"][SDK], edges["first_chunk_ms"][OURS]
    rows = [
        [
            f"first text chunk: model sends → in the task stream (median of {edges['runs_per_side']})",
            _ms(ours_first["p50"]),
            _ms(sdk_first["p50"]),
            _plus(edges["first_chunk_overhead_ms"]),
        ],
        [
            "  ours, seen by a reader in another process",
            "",
            "(same)",
            _plus(edges["reader_first_chunk_overhead_ms"]),
        ],
        [
            f"  bare XADD → reader (median of {edges['first_chunk_bare_xadd_ms']['n']})",
            _ms(edges["first_chunk_bare_xadd_ms"]["p50"]),
            "(same)",
            _plus(edges["first_chunk_bare_xadd_ms"]["p50"] - sdk_first["p50"]),
        ],
    ]
    labels = {
        OURS: f"ours (coalesce_ms={COALESCE_MS})",
        f"{OURS} reader": "  ours, seen by a reader in another process",
        OURS_WINDOW: f"  ours, coalesce_ms={WINDOW_MS}",
        BARE_XADD: "  bare XADD, write acknowledged",
        f"{BARE_XADD} reader": "  bare XADD, seen by a reader (the Redis hop alone)",
    }
    for report, title in ((fast, "fast model"), (typical, "typical model")):
        sdk = report[SDK]["latency_ms"]
        for key, label in labels.items():
            name, _, reader = key.partition(" ")
            measure, prefix = (
                ("reader_latency_ms", "reader_overhead") if reader else ("latency_ms", "overhead")
            )
            mine = report[name][measure]
            head = (
                f"per chunk into the task stream, p50 / p99, {title}: {report['chunks']} × "
                f"{report['delay_ms']} ms, ×{report['rounds']} — {label}"
                if key == OURS
                else label
            )
            rows.append(
                [
                    head,
                    f"{_ms(mine['p50'])} / {_ms(mine['p99'])}",
                    f"{_ms(sdk['p50'])} / {_ms(sdk['p99'])}" if key == OURS else "(same)",
                    f"{_plus(report[name][f'{prefix}_p50_ms'])} / "
                    f"{_plus(report[name][f'{prefix}_p99_ms'])}",
                ]
            )
    for name, label in {
        OURS: labels[OURS],
        OURS_WINDOW: labels[OURS_WINDOW],
        BARE_XADD: "  bare XADD → reader",
    }.items():
        head = (
            f"burst: {burst['chunks']} chunks at once, first sent → last visible "
            f"(median of {burst['rounds']}) — {label}"
            if name == OURS
            else label
        )
        rows.append(
            [
                head,
                f"{_ms(burst[name]['text_ms'])}, {burst[name]['entries']} entries",
                _ms(burst[SDK]["text_ms"]) if name == OURS else "(same)",
                f"{_plus(burst[name]['overhead_per_chunk_ms'])} per chunk",
            ]
        )
    rows.append(
        [
            f"  worker CPU per burst (ours, coalesce_ms={COALESCE_MS})",
            _ms(burst[OURS]["cpu_ms"]),
            _ms(burst[SDK]["cpu_ms"]),
            f"{_plus(burst[OURS]['cpu_overhead_per_chunk_ms'])} per chunk",
        ]
    )
    pre = edges["pre_model_ms"]
    rows.append(
        [
            "before the model: job start (SDK: create()) → model's first event",
            _ms(pre[OURS]["p50"]),
            _ms(pre[SDK]["p50"]),
            _plus(edges["pre_model_overhead_ms"]),
        ]
    )
    tail = edges["after_model_done_ms"]
    rows.append(
        [
            "after the model: its [DONE] → `finish` at the reader (SDK: stream closed)",
            _ms(tail[OURS]["p50"]),
            _ms(tail[SDK]["p50"]),
            _plus(edges["after_model_done_overhead_ms"]),
        ]
    )
    return {"columns": ["measure", "ours", "openai SDK alone", "overhead"], "rows": rows}
