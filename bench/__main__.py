"""Run the benchmarks, print their tables and write bench/results/<name>.json.

    .venv/bin/python -m bench               # every module in bench/ with a run() (make bench)
    .venv/bin/python -m bench registry      # only these

A missed target is printed as MISS and recorded in the JSON; the exit status stays 0,
because a shared, noisy machine is no place to fail a build on timings.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from collections.abc import Callable
from typing import Any

import bench
from bench._common import render_table, render_targets, write_result

Benchmark = Callable[[], dict[str, Any]]


def discover() -> dict[str, Benchmark]:
    """Every public module of this package that exposes `run()`, by name."""
    found: dict[str, Benchmark] = {}
    for module_info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{module_info.name}")
        run = getattr(module, "run", None)
        if callable(run):
            found[module_info.name] = run
    return found


def main(argv: list[str]) -> int:
    available = discover()
    unknown = [name for name in argv if name not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
        return 2
    for name in argv or list(available):
        print(f"\n=== bench: {name} ===", flush=True)
        started = time.perf_counter()
        result = available[name]()
        result.setdefault("benchmark", name)
        result.setdefault("duration_seconds", round(time.perf_counter() - started, 1))
        table = result.get("table")
        if table:
            print(render_table(table["columns"], table["rows"]))
        if result.get("targets"):
            print("\ntargets:")
            print(render_targets(result["targets"]))
        path = write_result(name, result)
        print(f"\n{name}: {result['duration_seconds']} s; results written to {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
