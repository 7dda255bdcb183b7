"""The AI SDK's own clients of ai 5, 6 and 7 against the real dev server.

    .venv/bin/python -m pytest tests/e2e/test_ai_sdk_clients.py -q

tests/js/clients.test.mjs drives `AbstractChat` + `DefaultChatTransport` of each major
version (npm aliases ai5, ai6, ai7 in tests/js/package.json) through what a `useChat` front
end does: a message, stop-as-disconnect then `resumeStream()`, a tool turn, a delegated
operation live and after a reload (`/messages` + resume), `regenerate()`, an edit via
`sendMessage({ text, messageId })`, resume on a new chat id, `POST /{id}/stop`, reasoning;
after each, the server's `GET /sessions/{id}/messages` must equal the client's `messages`.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from .conftest import NODE_MODULES, REPO, DevServer, have_node, require

pytestmark = [pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(600)]


def test_ai_sdk_5_6_and_7_clients_see_the_whole_product(dev_server: DevServer) -> None:
    require(
        have_node()
        and all((NODE_MODULES / v / "package.json").is_file() for v in ("ai5", "ai6", "ai7")),
        "node or tests/js/node_modules missing: run `make test-deps` (npm ci in tests/js)",
    )
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", "clients.test.mjs"],
        cwd=REPO / "tests" / "js",
        env={
            **os.environ,
            "CHAT_API": dev_server.api,
            "SCRIPTED_URL": dev_server.info["scripted_url"],
        },
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-8000:]
    assert "# fail 0" in report or "ℹ fail 0" in report, report[-4000:]
    for version in ("ai 5", "ai 6", "ai 7"):
        assert f"✔ {version}" in report, f"{version} did not run:\n{report[-4000:]}"
