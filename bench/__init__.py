"""Benchmarks: each measures our code and a naive baseline side by side, in one run.

    make bench                              # every benchmark (runs `python -m bench`)
    .venv/bin/python -m bench registry      # only the named ones

A benchmark is any module `bench/<name>.py` (name not starting with `_`) with a
`run() -> dict`. The dict is written to `bench/results/<name>.json` and must hold:

- `table`: `{"columns": [...], "rows": [[...], ...]}`, printed as it is;
- `targets`: `{metric: {"target": "≥ 4", "actual": 5.1, "met": true}}` (see `_common.Target`);
- `targets_met`: true when every target is met;
- `environment`: what ran it (see `_common.environment`).

Results are ratios against the baseline measured in the same run, because the machine is
shared and noisy. Benchmarks are never timed assertions in tests.
"""
