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
]


def _probe(build: Build, logical_id: str | None, imports: str) -> dict[str, Any]:
    paths = [build.layer, RUNTIME_BOTO3]
    if logical_id:
        paths.insert(0, build.function(logical_id))
    environment = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join(map(str, paths)),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "coldstart",
        "POWERTOOLS_TRACE_DISABLED": "true",  # the template's default (EnableTracing=false)
        "POWERTOOLS_SERVICE_NAME": "chat",
        # As on Lambda, where /opt is read-only: every import compiles what the layer ships.
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        [str(build.python), "-S", "-c", PROBE.format(imports=imports)],
        env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


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
    best = {name: min(values) for name, values in samples.items()}
    ratio = {name: best[name] / best["baseline"] for name in FUNCTIONS}
    actuals = {
        "worker_vs_baseline": round(ratio["WorkerFunction"], 3),
        "stream_start_vs_baseline": round(ratio["StreamStartFunction"], 3),
        "sweeper_heavy_imports": len(modules["SweeperFunction"]),
        "layer_mb": round(layer_mb, 2),
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
        "layer_mb": layer_mb,
        "layer_mb_this_machine": local_layer_mb,
    }
