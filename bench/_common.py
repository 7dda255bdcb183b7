"""What every benchmark shares: its own Redis, statistics, targets, tables, results.

with embedded_redis() as server:        # CHAT_REDIS_URL points at a fresh redis-server
    result = asyncio.run(measure())
summary_ms([0.0012, 0.0009])            # {'n': 2, 'mean': 1.05, 'p50': ..., 'p99': ...}
print(render_table(["a", "b"], [["1", "2"]]))
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import redis
from chat_core import redis_client
from chat_core.settings import get_settings
from chat_dev.embedded_redis import EmbeddedRedis
from redis.utils import HIREDIS_AVAILABLE

RESULTS_DIR = Path(__file__).parent / "results"


# --- Redis ---------------------------------------------------------------------------------
@contextmanager
def embedded_redis() -> Iterator[EmbeddedRedis]:
    """A throwaway redis-server that chat_core's settings and clients point at."""
    previous_url = os.environ.get("CHAT_REDIS_URL")
    server = EmbeddedRedis().start()
    try:
        os.environ["CHAT_REDIS_URL"] = server.url
        _forget_settings()
        yield server
    finally:
        if previous_url is None:
            os.environ.pop("CHAT_REDIS_URL", None)
        else:
            os.environ["CHAT_REDIS_URL"] = previous_url
        _forget_settings()
        server.stop()


def _forget_settings() -> None:
    get_settings.cache_clear()
    redis_client.reset_clients()


# --- Environment ---------------------------------------------------------------------------
def environment(server: EmbeddedRedis) -> dict[str, Any]:
    """What the numbers depend on: they mean little without it on a shared machine."""
    with redis.Redis.from_url(server.url) as client:
        info = client.info("server")
    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable_cpus = os.cpu_count() or 0
    return {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "redis_server_version": info.get("redis_version"),
        "redis_server_binary": server.binary,
        "redis_py_version": redis.__version__,
        # The pure-Python reply parser costs more than the round trip on large replies.
        "redis_py_hiredis": HIREDIS_AVAILABLE,
    }


# --- Statistics ----------------------------------------------------------------------------
def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return sum(values) / len(values)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """n, mean, min, p50, p99 and max of durations given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "mean": round(mean(ms), 4),
        "min": round(min(ms), 4),
        "p50": round(percentile(ms, 50), 4),
        "p99": round(percentile(ms, 99), 4),
        "max": round(max(ms), 4),
    }


# --- Targets -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    metric: str
    op: Literal[">=", "<"]
    threshold: float

    def met_by(self, actual: float) -> bool:
        return actual >= self.threshold if self.op == ">=" else actual < self.threshold

    def describe(self) -> str:
        return f"{'≥' if self.op == '>=' else '<'} {self.threshold:g}"


def check_targets(
    targets: Sequence[Target], actuals: dict[str, float]
) -> tuple[dict[str, dict[str, Any]], bool]:
    checked = {
        t.metric: {
            "target": t.describe(),
            "actual": actuals[t.metric],
            "met": t.met_by(actuals[t.metric]),
        }
        for t in targets
    }
    return checked, all(c["met"] for c in checked.values())


# --- Output --------------------------------------------------------------------------------
def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in columns], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
        for row in cells
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def render_targets(targets: dict[str, dict[str, Any]]) -> str:
    lines = []
    for metric, t in targets.items():
        verdict = "PASS" if t["met"] else "MISS"
        lines.append(f"  {verdict}  {metric} = {_number(t['actual'])} (target {t['target']})")
    return "\n".join(lines)


def _number(value: Any) -> str:
    return f"{value:,.4g}" if isinstance(value, float) else str(value)


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return path
