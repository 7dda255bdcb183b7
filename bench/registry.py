"""Stream registry benchmark: our registry and publisher against the naive production
baseline (bench/baseline.py), side by side in one run.

    .venv/bin/python -m bench registry      # `make bench` runs every benchmark

Starts its own redis-server, measures four things, writes bench/results/registry.json:

1. publish: a 2,000-chunk turn until every chunk is durable (ChunkPublisher vs XADD+EXPIRE);
2. delivery: publish → subscriber latency over 100 live streams (subscribe vs XREAD polling);
3. lookup: a session's active task among 100,000 stored tasks (pointer vs SCAN);
4. replay: a finished 10,000-entry stream read from 0-0 (vs production's single XREAD).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import redis.asyncio
from chat_core import keys, redis_client, registry, tasks
from chat_core.protocol.chunks import (
    FINISH_JSON,
    Chunk,
    FinishStep,
    Start,
    StartStep,
    TextDelta,
    TextEnd,
    TextStart,
)
from chat_core.publisher import ChunkPublisher
from chat_core.redis_client import get_redis
from chat_core.settings import get_settings

from bench import baseline
from bench._common import (
    Target,
    check_targets,
    embedded_redis,
    environment,
    mean,
    median,
    summary_ms,
)

TARGETS = (
    Target("publish_speedup", ">=", 4),
    Target("lookup_speedup", ">=", 100),
    Target("lookup_p99_ms", "<", 1),
    Target("delivery_p99_ms", "<", 10),
)

TURN_CHUNKS = 2_000
PUBLISH_ROUNDS = 5

DELIVERY_STREAMS = 100
DELIVERY_INTERVAL_SECONDS = 0.1  # per stream: 100 streams → 1,000 chunks/s in all
DELIVERY_SECONDS = 3.0
DELIVERY_WARMUP_SECONDS = 0.5  # connections are still being opened; not counted
SUBSCRIBE_SETTLE_SECONDS = 0.5

LOOKUP_TASKS = 100_000
LOOKUP_RUNNING_EVERY = 100  # 1% of stored tasks are running, the rest finished
LOOKUP_OURS_ITERATIONS = 4_000
LOAD_BATCH = 1_000

REPLAY_ENTRIES = 10_000
REPLAY_ROUNDS = 5
REPLAY_PUBLISH_BATCH = 500

_TOKENS = ("Hel", "lo", " wor", "ld", ", ", "the", " qu", "ick", " fox", ".")


def run() -> dict[str, Any]:
    with embedded_redis() as server:
        env = environment(server)
        result = asyncio.run(_measure())
    env["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    result["environment"] = env
    return result


async def _measure() -> dict[str, Any]:
    settings = get_settings()
    section_seconds: dict[str, float] = {}

    async def timed(name: str, section: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            return await section
        finally:
            section_seconds[name] = round(time.perf_counter() - started, 1)

    try:
        publish = await timed("publish", _publish_benchmark())
        delivery = await timed("delivery", _delivery_benchmark())
        replay = await timed("replay", _replay_benchmark())
        # Last: it flushes the database between the two layouts.
        lookup = await timed("lookup", _lookup_benchmark())
    finally:
        await redis_client.close_redis()
    headline = {
        "publish_speedup": publish["speedup"],
        "lookup_speedup": lookup["speedup"],
        "lookup_p99_ms": lookup["ours"]["latency_ms"]["p99"],
        "delivery_p99_ms": delivery["ours"]["latency_ms"]["p99"],
        "replay_10k_ms": replay["ours"]["median_ms"],
    }
    targets, targets_met = check_targets(TARGETS, headline)
    return {
        "benchmark": "registry",
        **headline,
        "targets": targets,
        "targets_met": targets_met,
        "publish": publish,
        "delivery": delivery,
        "lookup": lookup,
        "replay": replay,
        "settings": {
            "coalesce_ms": settings.coalesce_ms,
            "replay_page_size": settings.replay_page_size,
            "read_block_ms": settings.read_block_ms,
            "stream_max_length": settings.stream_max_length,
            "subscriber_queue_size": settings.subscriber_queue_size,
        },
        "section_seconds": section_seconds,
        "table": _table(publish, delivery, lookup, replay),
    }


# --- 1. Publish ------------------------------------------------------------------------------
def _turn(tokens: Sequence[str]) -> Iterator[Chunk]:
    """A turn's chunks, built one at a time as a model's stream builds them."""
    yield Start(message_id="bench-message")
    yield StartStep()
    yield TextStart(id="t1")
    for token in tokens:
        yield TextDelta(id="t1", delta=token)
    yield TextEnd(id="t1")
    yield FinishStep()


def _turn_tokens() -> list[str]:
    deltas = TURN_CHUNKS - 5  # start, start-step, text-start, text-end, finish-step
    return [_TOKENS[i % len(_TOKENS)] for i in range(deltas)]


async def _stored_text(stream_key: str) -> str:
    entries = await get_redis().xrange(stream_key)
    chunks = (json.loads(fields["data"]) for _, fields in entries)
    return "".join(c["delta"] for c in chunks if c["type"] == "text-delta")


class _PublishRun(NamedTuple):
    seconds: float
    entries: int


async def _publish_ours(tokens: list[str], *, yielding: bool = False) -> _PublishRun:
    """ChunkPublisher into a real task (default settings). `yielding`: the producer gives the
    loop a turn after every chunk, as one reading tokens off a socket does, so the writer
    behind it runs between chunks."""
    task = await tasks.create_turn(f"publish-{uuid.uuid4()}", "bench")
    started = time.perf_counter()
    publisher = ChunkPublisher(task.task_id)
    for chunk in _turn(tokens):
        await publisher.send(chunk)
        if yielding:
            await asyncio.sleep(0)
    await publisher.aclose()
    elapsed = time.perf_counter() - started
    if await _stored_text(keys.task_stream(task.task_id)) != "".join(tokens):
        raise RuntimeError("our publisher lost or reordered text")
    await tasks.finish(task, "completed")
    return _PublishRun(elapsed, len(publisher.entry_ids))


async def _publish_one_by_one(tokens: list[str]) -> _PublishRun:
    """Our write (one Lua script: XADD + both TTLs) once per chunk, awaited, nothing merged:
    what the script alone gains over XADD then EXPIRE."""
    task = await tasks.create_turn(f"publish-{uuid.uuid4()}", "bench")
    started = time.perf_counter()
    for chunk in _turn(tokens):
        await registry.publish_chunks(task.task_id, [chunk])
    elapsed = time.perf_counter() - started
    if await _stored_text(keys.task_stream(task.task_id)) != "".join(tokens):
        raise RuntimeError("publishing one by one lost or reordered text")
    await tasks.finish(task, "completed")
    return _PublishRun(elapsed, TURN_CHUNKS)


async def _publish_baseline(tokens: list[str]) -> _PublishRun:
    r = get_redis()
    task_id = str(uuid.uuid4())
    await baseline.create_task(
        r, task_id=task_id, session_id=f"publish-{task_id}", user_id="bench",
        operation_id=str(uuid.uuid4()),
    )  # fmt: skip
    started = time.perf_counter()
    for chunk in _turn(tokens):
        await baseline.publish_chunk(r, task_id, chunk.to_json())
    elapsed = time.perf_counter() - started
    if await _stored_text(baseline.task_stream(task_id)) != "".join(tokens):
        raise RuntimeError("the baseline lost or reordered text")
    return _PublishRun(elapsed, TURN_CHUNKS)


# The headline is `ours`: default settings and a producer that never waits. The other two
# show where the gain comes from: merging behind the producer, or one script call per chunk
# instead of two round trips.
_PUBLISH_VARIANTS: dict[str, Callable[[list[str]], Awaitable[_PublishRun]]] = {
    "baseline": _publish_baseline,
    "ours": _publish_ours,
    "ours_yielding_producer": lambda tokens: _publish_ours(tokens, yielding=True),
    "ours_one_write_per_chunk": _publish_one_by_one,
}


async def _publish_benchmark() -> dict[str, Any]:
    tokens = _turn_tokens()
    for variant in _PUBLISH_VARIANTS.values():  # unmeasured: scripts loaded, connections open
        await variant(tokens)
    runs: dict[str, list[_PublishRun]] = {name: [] for name in _PUBLISH_VARIANTS}
    names = list(_PUBLISH_VARIANTS)
    for round_no in range(PUBLISH_ROUNDS):
        # Rotate who goes first, so a burst of noise does not always hit the same side.
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(await _PUBLISH_VARIANTS[name](tokens))
    baseline_s = median([run.seconds for run in runs["baseline"]])
    report: dict[str, Any] = {
        "chunks": TURN_CHUNKS,
        "rounds": PUBLISH_ROUNDS,
        "coalesce_ms": get_settings().coalesce_ms,
    }
    for name, variant_runs in runs.items():
        seconds = median([run.seconds for run in variant_runs])
        report[name] = {
            "median_ms": round(seconds * 1000, 3),
            "runs_ms": [round(run.seconds * 1000, 3) for run in variant_runs],
            "chunks_per_s": round(TURN_CHUNKS / seconds),
            "stream_entries_written": round(median([run.entries for run in variant_runs])),
            "speedup": round(baseline_s / seconds, 2),
        }
    report["speedup"] = report["ours"]["speedup"]
    return report


# --- 2. Delivery -----------------------------------------------------------------------------
class _LatencyLog:
    """Send times by (stream, sequence) and the latency of each delta that arrived."""

    def __init__(self) -> None:
        self.sent: dict[tuple[int, int], float] = {}
        self.arrivals: list[tuple[float, float]] = []  # (sent at, latency), seconds

    def received(self, stream_index: int, data: str, at: float) -> None:
        chunk = json.loads(data)
        if chunk["type"] != "text-delta":
            return
        sent_at = self.sent[(stream_index, int(chunk["delta"]))]
        self.arrivals.append((sent_at, at - sent_at))


async def _consume_ours(log: _LatencyLog, index: int, task_id: str) -> None:
    async with registry.subscribe(task_id, "0-0") as subscription:
        async for entry in subscription:
            log.received(index, entry.data, time.perf_counter())


async def _consume_baseline(
    log: _LatencyLog, index: int, task_id: str, client: redis.asyncio.Redis
) -> None:
    subscriber = baseline.PollingSubscriber(client, task_id, "0-0").start()
    try:
        while (item := await subscriber.next()) is not None:
            log.received(index, item[1], time.perf_counter())
    finally:
        await subscriber.close()


async def _produce(
    log: _LatencyLog,
    index: int,
    publish: Callable[[str], Awaitable[Any]],
    begin: float,
    end: float,
) -> int:
    """Publish one delta per interval on an absolute schedule, streams evenly staggered."""
    first = begin + index * DELIVERY_INTERVAL_SECONDS / DELIVERY_STREAMS
    seq = 0
    while (due := first + seq * DELIVERY_INTERVAL_SECONDS) < end:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        data = TextDelta(id="t1", delta=str(seq)).to_json()
        log.sent[(index, seq)] = time.perf_counter()
        await publish(data)
        seq += 1
    return seq


async def _deliver(ours: bool) -> dict[str, Any]:
    r = get_redis()
    log = _LatencyLog()
    task_ids: list[str] = []
    ours_tasks: list[registry.TaskRecord] = []
    for _ in range(DELIVERY_STREAMS):
        if ours:
            task = await tasks.create_turn(f"delivery-{uuid.uuid4()}", None)
            ours_tasks.append(task)
            task_ids.append(task.task_id)
        else:
            task_id = str(uuid.uuid4())
            await baseline.create_task(
                r, task_id=task_id, session_id=f"delivery-{task_id}", user_id=None,
                operation_id=str(uuid.uuid4()),
            )  # fmt: skip
            task_ids.append(task_id)

    # The baseline's blocking readers get production's pool (256, raising when full) on a
    # client of their own: our writers' pool is bounded and waits, which would make the
    # baseline slower than what production did.
    polling = redis.asyncio.Redis.from_url(
        get_settings().redis_url or "", decode_responses=True, max_connections=256
    )
    if ours:
        consumers = [asyncio.create_task(_consume_ours(log, i, t)) for i, t in enumerate(task_ids)]
    else:
        consumers = [
            asyncio.create_task(_consume_baseline(log, i, t, polling))
            for i, t in enumerate(task_ids)
        ]
    await asyncio.sleep(SUBSCRIBE_SETTLE_SECONDS)  # every subscriber reaches its blocking read

    def publisher(task_id: str) -> Callable[[str], Awaitable[Any]]:
        if ours:
            return lambda data: registry.publish_chunk(task_id, data)
        return lambda data: baseline.publish_chunk(r, task_id, data)

    begin = time.perf_counter()
    end = begin + DELIVERY_SECONDS
    sent_counts = await asyncio.gather(
        *(_produce(log, i, publisher(t), begin, end) for i, t in enumerate(task_ids))
    )
    if ours:
        await asyncio.gather(*(tasks.finish(t, "completed") for t in ours_tasks))
    else:
        for task_id in task_ids:
            await baseline.publish_chunk(r, task_id, FINISH_JSON)
            await r.hset(baseline.task_meta(task_id), "status", "completed")
    await asyncio.wait_for(asyncio.gather(*consumers), timeout=30)
    await polling.aclose()

    counted_from = begin + DELIVERY_WARMUP_SECONDS
    latencies = [latency for sent_at, latency in log.arrivals if sent_at >= counted_from]
    sent = sum(sent_counts)
    return {
        "chunks_sent": sent,
        "chunks_received": len(log.arrivals),
        "chunks_lost": sent - len(log.arrivals),
        "rate_chunks_per_s": round(sent / DELIVERY_SECONDS),
        "latency_ms": summary_ms(latencies),
    }


async def _delivery_benchmark() -> dict[str, Any]:
    ours = await _deliver(ours=True)
    naive = await _deliver(ours=False)
    return {
        "streams": DELIVERY_STREAMS,
        "seconds": DELIVERY_SECONDS,
        "warmup_seconds": DELIVERY_WARMUP_SECONDS,
        "interval_per_stream_ms": DELIVERY_INTERVAL_SECONDS * 1000,
        "ours": ours,
        "baseline": naive,
    }


# --- 3. Active-task lookup -------------------------------------------------------------------
class _StoredTask:
    __slots__ = ("task_id", "session_id", "user_id", "operation_id", "running")

    def __init__(self, index: int, rng: random.Random) -> None:
        self.task_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.operation_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.user_id = f"user-{index % 5_000}"
        self.running = index % LOOKUP_RUNNING_EVERY == 0


_START_JSON = Start(message_id="m").to_json()
_START_STEP_JSON = StartStep().to_json()


def _stored_tasks() -> list[_StoredTask]:
    rng = random.Random(20_240_601)
    return [_StoredTask(i, rng) for i in range(LOOKUP_TASKS)]


async def _load_ours(tasks: Sequence[_StoredTask]) -> float:
    """What create_task, a few chunks and (for finished ones) completion leave behind."""
    r = get_redis()
    started = time.perf_counter()
    now_ms = int(time.time() * 1000)
    ttl_ms = get_settings().stream_ttl_seconds * 1000
    created_at = datetime.now(UTC).isoformat()
    for offset in range(0, len(tasks), LOAD_BATCH):
        pipe = r.pipeline(transaction=False)
        for t in tasks[offset : offset + LOAD_BATCH]:
            meta_key, stream_key = keys.task_meta(t.task_id), keys.task_stream(t.task_id)
            lease_until = now_ms + 30_000 if t.running else 0
            meta = {
                "task_id": t.task_id, "session_id": t.session_id, "user_id": t.user_id,
                "tool_call_id": "chat_stream", "tool_name": "chat",
                "operation_id": t.operation_id,
                "status": "running" if t.running else "completed",
                "phase": "working", "created_at": created_at,
                "lease_until": str(lease_until), "worker": "bench-worker",
            }  # fmt: skip
            if not t.running:
                meta["finished_at"] = str(now_ms)
            pipe.hset(meta_key, mapping=meta)
            pipe.xadd(stream_key, {"data": _START_JSON})
            pipe.xadd(stream_key, {"data": _START_STEP_JSON if t.running else FINISH_JSON})
            pipe.pexpire(meta_key, ttl_ms)
            pipe.pexpire(stream_key, ttl_ms)
            pipe.set(keys.operation(t.operation_id), t.task_id, px=ttl_ms)
            if t.running:
                pipe.set(keys.session_turn(t.session_id), t.task_id, px=ttl_ms)
                pipe.zadd(keys.RUNNING_TASKS, {t.task_id: lease_until})
        await pipe.execute()
    return time.perf_counter() - started


async def _load_baseline(tasks: Sequence[_StoredTask]) -> float:
    r = get_redis()
    started = time.perf_counter()
    ttl = baseline.STREAM_TTL_SECONDS
    created_at = datetime.now(UTC).isoformat()
    for offset in range(0, len(tasks), LOAD_BATCH):
        pipe = r.pipeline(transaction=False)
        for t in tasks[offset : offset + LOAD_BATCH]:
            meta_key, stream_key = baseline.task_meta(t.task_id), baseline.task_stream(t.task_id)
            meta = baseline.meta_fields(
                task_id=t.task_id, session_id=t.session_id, user_id=t.user_id,
                operation_id=t.operation_id, status="running" if t.running else "completed",
                created_at=created_at,
            )  # fmt: skip
            pipe.hset(meta_key, mapping=meta)
            pipe.expire(meta_key, ttl)
            pipe.xadd(stream_key, {"data": _START_JSON})
            pipe.xadd(stream_key, {"data": _START_STEP_JSON if t.running else FINISH_JSON})
            pipe.expire(stream_key, ttl)
            pipe.set(baseline.operation(t.operation_id), t.task_id, ex=ttl)
        await pipe.execute()
    return time.perf_counter() - started


def _queries(tasks: Sequence[_StoredTask], count: int) -> list[tuple[_StoredTask, bool]]:
    """Alternating hits (a session with a running task) and misses (an idle session,
    the common case when a session page loads), in a fixed random order."""
    rng = random.Random(7)
    hits = rng.sample([t for t in tasks if t.running], k=min(count, 500))
    misses = rng.sample([t for t in tasks if not t.running], k=min(count, 500))
    return [
        (hits[i // 2 % len(hits)], True) if i % 2 == 0 else (misses[i // 2 % len(misses)], False)
        for i in range(count)
    ]


async def _lookup_ours(stored: Sequence[_StoredTask]) -> dict[str, Any]:
    """Our lookup, each followed by a PING: the bare round trip measured through the same
    noise, which tells a slow lookup from a busy machine (a hit is two round trips)."""
    r = get_redis()
    timings: dict[bool, list[float]] = {True: [], False: []}
    pings: list[float] = []
    for task, hit in _queries(stored, LOOKUP_OURS_ITERATIONS):
        started = time.perf_counter()
        found, last_id = await tasks.active_task(task.session_id, task.user_id)
        timings[hit].append(time.perf_counter() - started)
        started = time.perf_counter()
        await r.ping()
        pings.append(time.perf_counter() - started)
        if (found.task_id if found else None) != (task.task_id if hit else None):
            raise RuntimeError(f"our lookup answered {found} for {task.session_id}")
        if hit and last_id == "0-0":
            raise RuntimeError("our lookup found the task but not its last entry id")
    every = timings[True] + timings[False]
    return {
        "iterations": len(every),
        "latency_ms": summary_ms(every),
        "hit_latency_ms": summary_ms(timings[True]),
        "miss_latency_ms": summary_ms(timings[False]),
        "control_ping_latency_ms": summary_ms(pings),
    }


async def _typical_baseline_hit(tasks: Sequence[_StoredTask]) -> tuple[_StoredTask, float]:
    """The running task halfway along the baseline's SCAN order, and the share of meta
    keys scanned before reaching it.

    A hit costs the baseline the part of the keyspace it walks first, so a randomly chosen
    hit can cost anything from nothing to a full scan; the median position is the typical
    hit, which keeps a mean of a few slow queries steady from run to run.
    """
    r = get_redis()
    running = {baseline.task_meta(t.task_id): t for t in tasks if t.running}
    hits: list[tuple[int, _StoredTask]] = []
    scanned, cursor = 0, 0
    while True:
        cursor, meta_keys = await r.scan(
            cursor, match=f"{baseline.META_PREFIX}*", count=baseline.SCAN_COUNT
        )
        for key in meta_keys:
            scanned += 1
            if key in running:
                hits.append((scanned, running[key]))
        if cursor == 0:
            break
    position, task = hits[len(hits) // 2]
    return task, position / scanned


async def _lookup_baseline(tasks: Sequence[_StoredTask]) -> dict[str, Any]:
    """One typical hit and one miss: the same half-and-half mix as ours, each a long walk."""
    r = get_redis()
    hit, scanned_share = await _typical_baseline_hit(tasks)
    miss = next(task for task, is_hit in _queries(tasks, 2) if not is_hit)
    runs: list[dict[str, Any]] = []
    for task, is_hit in ((hit, True), (miss, False)):
        started = time.perf_counter()
        meta, _ = await baseline.get_active_task_for_session(r, task.session_id, task.user_id)
        elapsed = time.perf_counter() - started
        if (meta["task_id"] if meta else None) != (task.task_id if is_hit else None):
            raise RuntimeError(f"the baseline lookup answered {meta} for {task.session_id}")
        runs.append({"hit": is_hit, "ms": round(elapsed * 1000, 1)})
    return {
        "iterations": len(runs),
        "runs": runs,
        "hit_found_after_scanning_share": round(scanned_share, 3),
        "mean_ms": round(mean([run["ms"] for run in runs]), 1),
    }


async def _lookup_benchmark() -> dict[str, Any]:
    r = get_redis()
    tasks = _stored_tasks()
    # One layout at a time: with both stored, the baseline's SCAN would also walk our keys
    # and look twice as slow as production was.
    await r.flushdb()
    load_baseline_s = await _load_baseline(tasks)
    baseline_keys = await r.dbsize()
    naive = await _lookup_baseline(tasks)
    await r.flushdb()
    load_ours_s = await _load_ours(tasks)
    ours_keys = await r.dbsize()
    ours = await _lookup_ours(tasks)
    memory = (await r.info("memory"))["used_memory_human"]
    await r.flushdb()
    return {
        "tasks": LOOKUP_TASKS,
        "running_tasks": sum(t.running for t in tasks),
        "query_mix": "half sessions with a running task, half idle sessions",
        "ours": {**ours, "keys_in_db": ours_keys, "load_seconds": round(load_ours_s, 2),
                 "used_memory": memory},
        "baseline": {**naive, "keys_in_db": baseline_keys,
                     "load_seconds": round(load_baseline_s, 2)},
        "speedup": round(naive["mean_ms"] / ours["latency_ms"]["mean"]),
    }  # fmt: skip


# --- 4. Replay -------------------------------------------------------------------------------
def _replay_chunks() -> list[str]:
    """REPLAY_ENTRIES - 1 chunks; completing the task appends the last one, `finish`."""
    deltas = REPLAY_ENTRIES - 4  # start, text-start, ..., text-end, finish
    return [
        Start(message_id="replay").to_json(),
        TextStart(id="t1").to_json(),
        *(TextDelta(id="t1", delta=_TOKENS[i % len(_TOKENS)]).to_json() for i in range(deltas)),
        TextEnd(id="t1").to_json(),
    ]


async def _replay_ours(task_id: str) -> tuple[float, int]:
    received = 0
    started = time.perf_counter()
    async with registry.subscribe(task_id, "0-0") as subscription:
        async for _ in subscription:
            received += 1
    return time.perf_counter() - started, received


async def _replay_benchmark() -> dict[str, Any]:
    r = get_redis()
    chunks = _replay_chunks()
    task = await tasks.create_turn(f"replay-{uuid.uuid4()}", None)  # it writes its `start`
    ours = chunks[1:]
    for offset in range(0, len(ours), REPLAY_PUBLISH_BATCH):
        await registry.publish_chunks(task.task_id, ours[offset : offset + REPLAY_PUBLISH_BATCH])
    await tasks.finish(task, "completed")
    naive_id = str(uuid.uuid4())
    pipe = r.pipeline(transaction=False)
    for data in [*chunks, FINISH_JSON]:
        pipe.xadd(baseline.task_stream(naive_id), {"data": data})
    await pipe.execute()
    stored = await r.xlen(keys.task_stream(task.task_id))
    if stored != REPLAY_ENTRIES:
        raise RuntimeError(f"the replay stream holds {stored} entries, not {REPLAY_ENTRIES}")

    await _replay_ours(task.task_id)  # unmeasured warm-up
    ours: list[float] = []
    naive: list[float] = []
    received: list[int] = []
    naive_received = 0
    for _ in range(REPLAY_ROUNDS):
        elapsed, count = await _replay_ours(task.task_id)
        ours.append(elapsed)
        received.append(count)
        started = time.perf_counter()
        naive_received = len(await baseline.replay(r, naive_id))
        naive.append(time.perf_counter() - started)
    if any(count != REPLAY_ENTRIES for count in received):
        raise RuntimeError(f"our replay delivered {received} entries, not {REPLAY_ENTRIES}")
    return {
        "entries": REPLAY_ENTRIES,
        "rounds": REPLAY_ROUNDS,
        "ours": {
            "median_ms": round(median(ours) * 1000, 2),
            "runs_ms": [round(s * 1000, 2) for s in ours],
            "entries_received": received[0],
            "entries_per_s": round(REPLAY_ENTRIES / median(ours)),
        },
        "baseline_single_xread": {
            "median_ms": round(median(naive) * 1000, 2),
            "entries_received": naive_received,
            "entries_lost": REPLAY_ENTRIES - naive_received,
        },
    }


# --- Table -----------------------------------------------------------------------------------
def _ms(value: float) -> str:
    return f"{value:,.3f} ms" if value < 10 else f"{value:,.1f} ms"


def _table(
    publish: dict[str, Any],
    delivery: dict[str, Any],
    lookup: dict[str, Any],
    replay: dict[str, Any],
) -> dict[str, Any]:
    p_naive = publish["baseline"]
    d_ours, d_naive = delivery["ours"], delivery["baseline"]
    l_ours, l_naive = lookup["ours"], lookup["baseline"]
    r_ours, r_naive = replay["ours"], replay["baseline_single_xread"]

    def published(variant: dict[str, Any]) -> str:
        return (
            f"{_ms(variant['median_ms'])}, {variant['chunks_per_s']:,} chunks/s, "
            f"{variant['stream_entries_written']:,} entries"
        )

    rows = [
        [
            f"publish {publish['chunks']:,}-chunk turn (median of {publish['rounds']})",
            published(publish["ours"]),
            published(p_naive),
            f"{publish['ours']['speedup']:g}x faster",
        ],
        [
            "  same, producer yields after each chunk",
            published(publish["ours_yielding_producer"]),
            "(same baseline)",
            f"{publish['ours_yielding_producer']['speedup']:g}x faster",
        ],
        [
            "  same, one script write per chunk, awaited (no merging)",
            published(publish["ours_one_write_per_chunk"]),
            "(same baseline)",
            f"{publish['ours_one_write_per_chunk']['speedup']:g}x faster",
        ],
        [
            f"delivery p50 / p99, {delivery['streams']} streams, "
            f"{d_ours['rate_chunks_per_s']:,} chunks/s",
            f"{_ms(d_ours['latency_ms']['p50'])} / {_ms(d_ours['latency_ms']['p99'])}"
            f" ({d_ours['chunks_lost']} lost)",
            f"{_ms(d_naive['latency_ms']['p50'])} / {_ms(d_naive['latency_ms']['p99'])}"
            f" ({d_naive['chunks_lost']} lost)",
            "both block on XREAD",
        ],
        [
            f"active-task lookup, {lookup['tasks']:,} tasks, mean",
            f"{_ms(l_ours['latency_ms']['mean'])} (n={l_ours['iterations']:,})",
            f"{_ms(l_naive['mean_ms'])} (n={l_naive['iterations']})",
            f"{lookup['speedup']:,}x faster",
        ],
        [
            "active-task lookup p50 / p99",
            f"{_ms(l_ours['latency_ms']['p50'])} / {_ms(l_ours['latency_ms']['p99'])} "
            f"(PING: {_ms(l_ours['control_ping_latency_ms']['p50'])} / "
            f"{_ms(l_ours['control_ping_latency_ms']['p99'])})",
            f"hit {_ms(l_naive['runs'][0]['ms'])} (found "
            f"{l_naive['hit_found_after_scanning_share']:.0%} into the SCAN), "
            f"miss {_ms(l_naive['runs'][1]['ms'])} (full SCAN)",
            "O(1) pointer vs SCAN",
        ],
        [
            f"replay {replay['entries']:,}-entry finished stream from 0-0",
            f"{_ms(r_ours['median_ms'])}, {r_ours['entries_received']:,} entries",
            f"{_ms(r_naive['median_ms'])}, {r_naive['entries_received']:,} entries",
            f"baseline LOSES {r_naive['entries_lost']:,} entries",
        ],
    ]
    return {"columns": ["measure", "ours", "naive baseline", "comparison"], "rows": rows}
