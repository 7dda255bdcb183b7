"""The Makefile: `make help` lists the targets, `make dev RELOAD=1` asks for reloading."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def make(*args: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_help_lists_every_target_and_is_the_default() -> None:
    phony = re.search(r"^\.PHONY:(.*)$", (REPO / "Makefile").read_text(), re.M)[1].split()
    listed = re.findall(r"^  make (\S+) +\S", make("help"), re.M)
    assert sorted(listed) == sorted(phony)
    assert make() == make("help")


def test_dev_reloads_only_when_asked() -> None:
    # -n prints the commands without running them (the venv exists, so nothing is built).
    assert make("-n", "dev").strip().endswith("-m chat_dev.devserver")
    assert make("-n", "dev", "RELOAD=1").strip().endswith("-m chat_dev.devserver --reload")
