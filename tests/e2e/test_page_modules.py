"""The page's SSE reader and chunk reducer (web/sse.js, web/message.js) under node's test runner.

    .venv/bin/python -m pytest tests/e2e/test_page_modules.py -q      # = node --test tests/js/

Quick and without a browser: events split at every byte, multi-byte characters cut between
reads, an operation's result landing on the card of the turn that started it, history
grouped by task.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .conftest import REPO, require

pytestmark = pytest.mark.node


def test_page_modules() -> None:
    require(
        shutil.which("node") is not None, "node not found: the page's module tests need Node.js 20+"
    )
    result = subprocess.run(
        ["node", "--test", "tests/js/page.test.mjs"],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
