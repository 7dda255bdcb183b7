"""Cold-start imports of each built function against a bare FastAPI + Mangum handler, side
by side in one run, and the size of the built layer.

    .venv/bin/python -m bench coldstart     # `make bench`; needs .venv-sam (make test-deps)

Runs `sam build` (bench/_sam.py) for this machine, and builds the layer for arm64 as it
deploys (its size is the target's), then, for every function, a fresh Python 3.12 process that
sees only the build output (`-S`; the function's code, the layer, the runtime's boto3)
imports what Lambda imports at cold start: `app` for the Mangum and plain functions; uvicorn
and `app` for the streaming ones (what run.sh starts). Each is timed 7 times in rotation with
the baseline `from fastapi import FastAPI; from mangum import Mangum; Mangum(FastAPI())`; the
minimum of 7 counts. Time is the process's CPU time for the imports (compiling and running
module code is CPU work; on a shared 2-core machine wall time mostly measures the neighbours). Also recorded: whether
openai / FastAPI / Mangum were imported. The model client is imported on the first model
call, which the worker pays in its first turn, not in this number.

Then the built worker runs one whole turn (a 2,000-word streamed answer from the scripted
model, into an embedded Redis) and reports its peak RSS: what the template's MemorySize is
set from.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench._common import Target, check_targets
from bench._sam import MACHINE, RUNTIME_BOTO3, Build, build_layer, missing, sam_build
from bench.cost import memory_sizes_mb

RUNS = 7
FUNCTIONS = {
    "StreamStartFunction": "stream",
    "TaskReconnectFunction": "stream",
    "SessionsFunction": "mangum",
    "WebhookFunction": "mangum",
    "WorkerFunction": "plain",
    "SweeperFunction": "plain",
}
BASELINE = "from fastapi import FastAPI\nfrom mangum import Mangum\nhandler = Mangum(FastAPI())\n"
PROBE = (
    "import sys, time, json\n"
    "started = time.process_time()\n"
    "{imports}"
    "elapsed = time.process_time() - started\n"
    "import resource\n"
    "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
    "print(json.dumps({{'seconds': elapsed, 'rss_mb': rss, 'modules': sorted(m for m in "
    "('openai', 'fastapi', 'mangum') if m in sys.modules)}}))\n"
)
TARGETS = [
    Target("worker_vs_baseline", "<", 2.0001),  # ≤ 2.0x
    Target("stream_start_vs_baseline", "<", 1.6001),  # ≤ 1.6x
    Target("sweeper_heavy_imports", "<", 1),  # none of openai / FastAPI / Mangum
    Target("layer_mb", "<", 60.0001),  # ≤ 60 MB unzipped, as deployed (arm64)
    # The worker's peak in a turn leaves a third of the template's MemorySize free.
    Target("worker_turn_peak_rss_share_of_memory", "<", 0.6667),
]


def _probe(build: Build, logical_id: str | None, imports: str) -> dict[str, Any]:
    environment = _environment(build, logical_id)
    result = subprocess.run(
        [str(build.python), "-S", "-c", PROBE.format(imports=imports)],
        env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


WORKER_TURN = (
    "import json, resource, sys, types\nimport app\n"
    "context = types.SimpleNamespace(function_name='chat-worker', memory_limit_in_mb=256,"
    " invoked_function_arn='arn:aws:lambda:us-east-1:123456789012:function:w',"
    " aws_request_id='bench', get_remaining_time_in_millis=lambda: 900000)\n"
    "outcome = app.handler(json.loads(sys.argv[1]), context)\n"
    "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
    "print(json.dumps({'outcome': outcome, 'peak_rss_mb': rss}))\n"
)
TURN_WORDS = 2000  # a long answer: the turn's own memory (history, chunks, usage) shows


def _environment(build: Build, logical_id: str | None, **extra: str) -> dict[str, str]:
    paths = [build.layer, RUNTIME_BOTO3]
    if logical_id:
        paths.insert(0, build.function(logical_id))
    return {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join(map(str, paths)),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "coldstart",
        "POWERTOOLS_TRACE_DISABLED": "true",  # the template's default (EnableTracing=false)
        "POWERTOOLS_SERVICE_NAME": "chat",
        # As on Lambda, where /opt is read-only: every import compiles what the layer ships.
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }


def _worker_turn_peak_rss(build: Build) -> float:
    """The built worker's peak RSS over one whole streamed turn (the model client loaded, a
    2,000-word answer written chunk by chunk), against an embedded Redis and the scripted
    model: the number the template's MemorySize is set from."""
    import asyncio

    from chat_core.redis_client import close_redis, reset_clients
    from chat_core.sessions import ChatMessage, get_session_store
    from chat_core.settings import get_settings
    from chat_core.tasks import create_turn
    from chat_dev.embedded_redis import EmbeddedRedis
    from chat_dev.scripted_model import ScriptedModelServer

    with EmbeddedRedis() as redis_server:
        model = ScriptedModelServer().start()
        chat = {
            "CHAT_REDIS_URL": redis_server.url,
            "CHAT_SESSION_STORE": "redis",
            "CHAT_LLM_BASE_URL": model.base_url,
            "CHAT_LLM_API_KEY": "bench",
        }
        saved = {name: os.environ.get(name) for name in chat}
        os.environ.update(chat)
        get_settings.cache_clear()
        reset_clients()

        async def seed() -> str:
            store = get_session_store()
            session = await store.create(None)
            task = await create_turn(session.session_id, None)
            question = ChatMessage(
                role="user", content="Tell me a long story", task_id=task.task_id
            )
            await store.append_messages(session.session_id, [question])
            await close_redis()
            return task.task_id

        try:
            task_id = asyncio.run(seed())
            model.reply_text(" ".join(f"word{i}" for i in range(TURN_WORDS)), stream=True)
            result = subprocess.run(
                [str(build.python), "-S", "-c", WORKER_TURN,
                 json.dumps({"kind": "run_turn", "task_id": task_id})],
                env=_environment(build, "WorkerFunction", **chat),
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
        finally:
            model.stop()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            get_settings.cache_clear()
    if result.returncode != 0:
        raise RuntimeError(result.stderr or result.stdout)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    if measured["outcome"]["outcome"] != "completed":
        raise RuntimeError(f"the worker's turn did not complete: {measured}")
    return float(measured["peak_rss_mb"])


def _imports(kind: str) -> str:
    return "import uvicorn\nimport app\n" if kind == "stream" else "import app\n"


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1_000_000


def run() -> dict[str, Any]:
    if reason := missing():
        print(f"skipped: {reason}")
        return {"skipped": reason}
    with tempfile.TemporaryDirectory(prefix="coldstart-") as out:
        build = sam_build(Path(out))
        local_layer_mb = _size_mb(build.layer)  # before anything ran from it
        layer_mb = _size_mb(build_layer(Path(out) / "arm64"))  # what deploys (arm64)
        samples: dict[str, list[float]] = {"baseline": [], **{f: [] for f in FUNCTIONS}}
        modules: dict[str, list[str]] = {}
        rss: dict[str, float] = {}
        for _ in range(RUNS):  # rotation: every candidate sees the same machine state
            samples["baseline"].append(_probe(build, None, BASELINE)["seconds"])
            for logical_id, kind in FUNCTIONS.items():
                probe = _probe(build, logical_id, _imports(kind))
                samples[logical_id].append(probe["seconds"])
                modules[logical_id] = probe["modules"]
                rss[logical_id] = probe["rss_mb"]
        worker_peak_mb = _worker_turn_peak_rss(build)
    memory_mb = memory_sizes_mb()["WorkerFunction"]
    best = {name: min(values) for name, values in samples.items()}
    ratio = {name: best[name] / best["baseline"] for name in FUNCTIONS}
    actuals = {
        "worker_vs_baseline": round(ratio["WorkerFunction"], 3),
        "stream_start_vs_baseline": round(ratio["StreamStartFunction"], 3),
        "sweeper_heavy_imports": len(modules["SweeperFunction"]),
        "layer_mb": round(layer_mb, 2),
        "worker_turn_peak_rss_share_of_memory": round(worker_peak_mb / memory_mb, 3),
    }
    targets, met = check_targets(TARGETS, actuals)
    rows = [
        ["bare FastAPI + Mangum", f"{best['baseline'] * 1000:.0f}", "1.00", "", "fastapi, mangum"]
    ]
    for logical_id in FUNCTIONS:
        rows.append(
            [
                f"{logical_id} ({FUNCTIONS[logical_id]})",
                f"{best[logical_id] * 1000:.0f}",
                f"{ratio[logical_id]:.2f}",
                f"{rss[logical_id]:.0f}",
                ", ".join(modules[logical_id]) or "-",
            ]
        )
    rows.append(
        [
            f"WorkerFunction, one {TURN_WORDS}-word turn (peak)",
            "",
            "",
            f"{worker_peak_mb:.0f} of {memory_mb}",
            "openai",
        ]
    )
    rows.append(["built layer, arm64 (deployed), unzipped", f"{layer_mb:.1f} MB", "", "", ""])
    rows.append([f"built layer, {MACHINE} (here)", f"{local_layer_mb:.1f} MB", "", "", ""])
    return {
        "table": {
            "columns": [
                "import at cold start",
                "min of 7 (CPU ms)",
                "x baseline",
                "RSS (MB)",
                "heavy modules",
            ],
            "rows": rows,
        },
        "targets": targets,
        "all_targets_met": met,
        "samples_seconds": samples,
        "modules": modules,
        "rss_mb_after_import": rss,
        "worker_turn_peak_rss_mb": worker_peak_mb,
        "memory_size_mb": memory_mb,
        "layer_mb": layer_mb,
        "layer_mb_this_machine": local_layer_mb,
    }
