"""A React page on `@ai-sdk/react` `useChat({ resume: true })`, served from another origin.

    .venv/bin/python -m pytest tests/e2e/test_ai_sdk_page.py -q

tests/js/page/app.jsx is bundled with esbuild, served by a static server on its own port
(another origin, as a Vite or Next.js dev server would be) and driven in headless Chromium
against the dev server with `CHAT_CORS_ORIGINS` naming that origin. The page is the plain
`useChat` of the README: the history from `GET /sessions/{id}/messages`, `resume: true`.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import (
    ARTIFACTS,
    NODE_MODULES,
    REPO,
    DevServer,
    chromium,
    free_port,
    have_node,
    require,
    start_dev_server,
)

pytestmark = [pytest.mark.browser, pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def page_origin(tmp_path: Path) -> Iterator[str]:
    require(
        have_node() and (NODE_MODULES / "@ai-sdk" / "react" / "package.json").is_file(),
        "node or tests/js/node_modules missing: run `make test-deps` (npm ci in tests/js)",
    )
    out = tmp_path / "page"
    subprocess.run(["node", "page/build.mjs", str(out)], cwd=REPO / "tests" / "js", check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api_server(redis_target, page_origin: str) -> Iterator[DevServer]:
    server = start_dev_server(
        REPO,
        ARTIFACTS / "logs" / "ai-sdk-page.log",
        {
            "CHAT_REDIS_URL": redis_target.url,
            "CHAT_REDIS_MODE": redis_target.mode,
            "CHAT_CORS_ORIGINS": page_origin,
        },
    )
    try:
        yield server
    finally:
        server.stop()
        assert "Traceback" not in server.log(), server.log()[-4000:]


class Page:
    def __init__(self, context: Any, origin: str, api: DevServer) -> None:
        self.page = context.new_page()
        self.api = api
        self.chat = str(uuid.uuid4())
        self.url = f"{origin}/?api={api.api}&chat={self.chat}"
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self) -> None:
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready=true]")

    def send(self, text: str) -> None:
        self.page.fill("#input", text)
        self.page.click("#send")

    def wait_ready(self, timeout: float = 30_000) -> None:
        self.page.wait_for_function(
            "() => document.body.dataset.status === 'ready' && "
            "document.querySelectorAll('.message.assistant').length > 0",
            timeout=timeout,
        )

    def messages(self) -> list[dict[str, Any]]:
        return self.page.eval_on_selector_all(
            ".message",
            """nodes => nodes.map(n => ({
                role: n.classList.contains('user') ? 'user' : 'assistant',
                id: n.dataset.id,
                texts: [...n.querySelectorAll('.text')].map(t => t.textContent),
                tools: [...n.querySelectorAll('.tool')].map(t => t.dataset.state),
            }))""",
        )

    def server_messages(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.api.api}/sessions/{self.chat}/messages").json()["messages"]

    def shows_what_the_server_has(self) -> None:
        """Every message and part once, as the server's history has them."""
        shown = self.messages()
        stored = self.server_messages()
        assert [(m["role"], m["id"]) for m in shown] == [(m["role"], m["id"]) for m in stored]
        for seen, kept in zip(shown, stored, strict=True):
            assert seen["texts"] == [p["text"] for p in kept["parts"] if p["type"] == "text"]
            assert seen["tools"] == [
                p["state"] for p in kept["parts"] if p["type"].startswith("tool-")
            ]


@pytest.fixture
def context(api_server: DevServer, tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile", width=1000) as browser:
        yield browser


def test_use_chat_on_another_origin_sends_resumes_delegates_and_regenerates(
    context: Any, api_server: DevServer, page_origin: str
) -> None:
    # Send: the answer streams in, the question shows once.
    page = Page(context, page_origin, api_server)
    page.open()
    page.send("Hello there!")
    page.wait_ready()
    [question, answer] = page.messages()
    assert question["texts"] == ["Hello there!"]
    assert answer["texts"][0].startswith("Hello, nice to meet you!")
    page.shows_what_the_server_has()

    # Regenerate: the answer is replaced, on the page and on the server.
    api_server.script({"kind": "reply", "text": "Another answer, regenerated.", "stream": True})
    page.page.click("#regenerate")
    page.page.wait_for_function(
        "() => [...document.querySelectorAll('.message.assistant .text')]"
        ".some(t => t.textContent === 'Another answer, regenerated.')"
    )
    page.wait_ready()
    assert [m["role"] for m in page.messages()] == ["user", "assistant"]
    page.shows_what_the_server_has()

    # Reload mid-answer: the question is still there, the answer resumes, all once.
    page = Page(context, page_origin, api_server)
    page.open()
    words = " ".join(f"w{i}" for i in range(60))
    api_server.script({"kind": "reply", "text": words, "delay_ms": 60, "stream": True})
    page.send("Count slowly")
    page.page.wait_for_function(
        "() => (document.querySelector('.message.assistant .text')?.textContent || '').length > 10"
    )
    page.page.reload()
    page.page.wait_for_selector("body[data-ready=true]")
    assert page.messages()[0]["texts"] == ["Count slowly"]
    page.page.wait_for_function(
        "w => document.querySelector('.message.assistant .text')?.textContent === w", arg=words
    )
    page.wait_ready()
    assert [(m["role"], m["texts"]) for m in page.messages()] == [
        ("user", ["Count slowly"]),
        ("assistant", [words]),
    ]
    page.shows_what_the_server_has()

    # A delegated operation: the tool card goes from pending to done, once, then the answer.
    page = Page(context, page_origin, api_server)
    page.open()
    page.send("Create an agent that chases unpaid invoices")
    page.page.wait_for_selector(".tool[data-state=input-available]")
    page.page.wait_for_selector(".tool[data-state=output-available]", timeout=30_000)
    page.wait_ready()
    [_, answer] = page.messages()
    assert answer["tools"] == ["output-available"] and answer["texts"]
    page.shows_what_the_server_has()
    page.page.screenshot(path=str(ARTIFACTS / "ai-sdk-page.png"), full_page=True)
    assert page.errors == []
