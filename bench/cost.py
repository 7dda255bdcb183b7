"""What a million 20-second turns a month cost on AWS with this template, streaming and
buffered reads side by side; every assumption printed.

    .venv/bin/python -m bench cost          # `make bench`

Measured here: turns run on the in-process stack (embedded Redis, the scripted model answering
~200 tokens, the worker's jobs run as dispatched): the Redis commands and bytes a turn takes
(`INFO commandstats`, `INFO stats`), the worker invocations (jobs dispatched) and the model
requests per turn. Taken from template.yaml: each function's memory; from the settings: the
long-poll linger that sets how many buffered windows a turn needs. Assumed (printed): the
turn's length (20 s of model time), how long the other invocations last, DynamoDB requests
per turn. Prices are data (bench/prices.json); the model's own price is not counted.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import redis
from chat_core.settings import Settings
from samtranslator.yaml_helper import yaml_parse

from bench._common import Target, check_targets, embedded_redis

ROOT = Path(__file__).resolve().parents[1]
TURNS_MEASURED = 20
TURN_SECONDS = 20.0
WORKER_EXTRA_SECONDS = 1.0  # claim, session load, saving the answer: around the model's time
RECONNECT_SECONDS = 0.1  # a client's round trip to API Gateway between two windows
MILLION = 1_000_000
TARGETS = [Target("default_stream_usd_per_million_turns", "<", 250)]


def memory_sizes_mb() -> dict[str, int]:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    default = template["Globals"]["Function"]["MemorySize"]
    return {
        k: v["Properties"].get("MemorySize", default)
        for k, v in template["Resources"].items()
        if v["Type"] == "AWS::Serverless::Function"
    }


async def _turns(count: int) -> dict[str, float]:
    """Run `count` turns; what one turn takes beyond Redis: worker invocations (jobs
    dispatched) and model requests (the answer, a first turn's title)."""
    from chat_core import background
    from chat_core.chat.llm import reset_llm_clients
    from chat_core.sessions import get_session_store
    from chat_core.settings import get_settings
    from chat_core.tasks import start_turn
    from chat_core.worker.dispatch import InProcessDispatcher, set_dispatcher
    from chat_core.worker.runner import run_job
    from chat_dev.scripted_model import ScriptedModelServer

    with ScriptedModelServer() as model:
        os.environ.update(CHAT_LLM_BASE_URL=model.base_url, CHAT_LLM_API_KEY="bench")
        get_settings.cache_clear()
        reset_llm_clients()
        jobs: list[str] = []

        async def run_counted(job: Any) -> Any:
            jobs.append(type(job).__name__)
            return await run_job(job)

        set_dispatcher(InProcessDispatcher(run_counted))
        answer = " ".join(f"token{i}" for i in range(200))
        for _ in range(count):
            model.reply_text(answer, stream=True)
            session = await get_session_store().create(None)
            await start_turn(session.session_id, "How do I file my taxes?", None)
            await background.drain(timeout=30)
        return {
            "worker_invocations": len(jobs) / count,
            "model_requests": len(model.chat_requests) / count,
        }


def run() -> dict[str, Any]:
    prices = json.loads((ROOT / "bench" / "prices.json").read_text())
    with embedded_redis() as server:
        with redis.Redis.from_url(server.url) as client:
            client.config_resetstat()
            per_turn = asyncio.run(_turns(TURNS_MEASURED))
            stats = client.info("commandstats")
            traffic = client.info("stats")
    commands = sum(v["calls"] for v in stats.values()) / TURNS_MEASURED
    kilobytes = (
        (traffic["total_net_input_bytes"] + traffic["total_net_output_bytes"])
        / 1024
        / TURNS_MEASURED
    )
    memory = memory_sizes_mb()
    gb = {k: v / 1024 for k, v in memory.items()}
    settings = Settings()
    # A buffered read answers once new entries exist plus the linger, and the client comes
    # straight back: a window lasts about linger + one reconnect round trip.
    window_seconds = settings.long_poll_linger_ms / 1000 + RECONNECT_SECONDS
    windows = max(1, round(TURN_SECONDS / window_seconds))
    invocations = per_turn["worker_invocations"]
    # Assumptions, printed with the table.
    assumptions = {
        "turn length (model streaming), s": TURN_SECONDS,
        "stream start holds the turn (streaming), s": TURN_SECONDS,
        "worker: invocations per turn (measured)": invocations,
        "worker: each lasts the turn plus, s": WORKER_EXTRA_SECONDS,
        "model requests per turn (measured; the model's own price is not counted)": per_turn[
            "model_requests"
        ],
        "buffered: window = long_poll_linger + a reconnect round trip, s": (
            f"{settings.long_poll_linger_ms / 1000} + {RECONNECT_SECONDS}"
        ),
        "buffered: windows per turn": windows,
        "session reads per turn (GET /sessions/{id})": 1,
        "DynamoDB writes per turn (user msg, assistant msg, title, metadata)": 4,
        "DynamoDB reads per turn": 3,
        "sweeper: invocations per month (every minute) x 0.3 s": 43_800,
        "ElastiCache: 1 ECPU per command plus 1 per KB moved": True,
        "ElastiCache storage: the Valkey minimum (100 MB)": prices[
            "elasticache_serverless_valkey_min_gb"
        ],
        "Redis commands per turn (measured)": round(commands, 1),
        "Redis KB per turn (measured)": round(kilobytes, 1),
    }

    def lam(function: str, seconds: float, invocations: float = 1) -> float:
        return invocations * (
            seconds * gb[function] * prices["lambda_arm64_gb_second"] + prices["lambda_request"]
        )

    shared = {
        "worker (Lambda)": lam(
            "WorkerFunction", TURN_SECONDS / invocations + WORKER_EXTRA_SECONDS, invocations
        ),
        "sessions (Lambda + API)": lam("SessionsFunction", 0.1) + prices["apigateway_rest_request"],
        "DynamoDB": 4 * prices["dynamodb_write_request_unit"]
        + 3 * prices["dynamodb_read_request_unit"],
        "ElastiCache ECPU": (commands + kilobytes) * prices["elasticache_serverless_valkey_ecpu"],
    }
    modes = {
        "stream (default)": {
            "stream start (Lambda + API)": lam("StreamStartFunction", TURN_SECONDS)
            + prices["apigateway_rest_request"],
        },
        "buffered": {
            "stream start + reconnect windows (Lambda + API)": lam(
                "StreamStartFunction", window_seconds
            )
            + lam("TaskReconnectFunction", window_seconds, windows - 1)
            + windows * prices["apigateway_rest_request"],
        },
    }
    monthly_fixed = prices["elasticache_serverless_valkey_min_gb"] * prices[
        "elasticache_serverless_valkey_gb_hour"
    ] * prices["hours_per_month"] + 43_800 * (
        0.3 * gb["SweeperFunction"] * prices["lambda_arm64_gb_second"] + prices["lambda_request"]
    )
    rows, totals = [], {}
    for mode, own in modes.items():
        lines = {**shared, **own}
        total = sum(lines.values()) * MILLION + monthly_fixed
        totals[mode] = total
        for name, per_turn in lines.items():
            rows.append([mode, name, f"{per_turn * MILLION:,.2f}"])
        rows.append([mode, "fixed: cache storage minimum + sweeper", f"{monthly_fixed:,.2f}"])
        rows.append([mode, "TOTAL per million turns / month", f"{total:,.2f}"])
    for name, value in assumptions.items():
        print(f"  assumption: {name} = {value}")
    print(f"  memory (MB, template.yaml): {memory}")
    print(f"  prices: {prices['source']}")
    actuals = {"default_stream_usd_per_million_turns": round(totals["stream (default)"], 2)}
    targets, met = check_targets(TARGETS, actuals)
    return {
        "table": {"columns": ["read mode", "line", "USD per million turns"], "rows": rows},
        "targets": targets,
        "all_targets_met": met,
        "assumptions": assumptions,
        "memory_mb": memory,
        "prices": prices,
        "totals": totals,
    }
