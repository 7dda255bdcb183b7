"""The chat page in headless Chromium, against the real dev server.

    .venv/bin/python -m pytest tests/e2e/test_browser.py -q
    UPDATE_README_SCREENSHOT=1 .venv/bin/python -m pytest tests/e2e/test_browser.py -k screenshot

Debian's /usr/bin/chromium driven by Playwright (no browser download), a fresh profile per
test. Answers come from the scripted model; a test slows one down through the model's
control API when it needs to act in the middle of it. Screenshots go to tests/artifacts/;
the README's (docs/screenshot.png) is rewritten only when UPDATE_README_SCREENSHOT=1.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ARTIFACTS, CHROMIUM, REPO, DevServer, require
from .netcut import CuttableProxy

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SLOW = {"kind": "reply", "delay_ms": 120, "stream": True}
"""The next answer at 120 ms a chunk: several seconds to act in the middle of it."""


class ChatPage:
    """The page, as a user sees it; selectors are the ids and classes web/ promises."""

    def __init__(self, page: Any, server: DevServer) -> None:
        self.page = page
        self.server = server
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, fragment: str = "") -> None:
        self.page.goto(f"{self.server.url}/{fragment}")
        self.wait_ready()

    def wait_ready(self) -> None:
        self.page.wait_for_selector("body[data-ready=true]", timeout=15_000)

    def sign_in(self, user_id: str) -> None:
        self.page.fill("#login-user", user_id)
        self.page.click("#login-button")
        self.page.wait_for_selector(f"body[data-ready=true][data-user='{user_id}']")

    def send(self, text: str) -> None:
        self.page.fill("#input", text)
        self.page.press("#input", "Enter")

    def wait_idle(self, timeout: float = 30_000) -> None:
        self.page.wait_for_selector("body[data-busy=false]", timeout=timeout)

    def wait_text(self, at_least: int, timeout: float = 15_000) -> None:
        """Until the last assistant message shows at least this many characters."""
        self.page.wait_for_function(
            """n => { const all = document.querySelectorAll('.message.assistant');
                      const last = all[all.length - 1];
                      return last && last.querySelector('.parts').textContent.length >= n; }""",
            arg=at_least,
            timeout=timeout,
        )

    def answer_text(self) -> str:
        """The text of the last assistant message, as drawn (the caret is an empty span)."""
        return self.page.eval_on_selector_all(
            ".message.assistant",
            "nodes => nodes.length ? [...nodes[nodes.length - 1].querySelectorAll('.part-text')]"
            ".map(n => n.textContent).join('') : ''",
        )

    def all_answers(self) -> str:
        return "".join(
            self.page.eval_on_selector_all(
                ".message.assistant .part-text", "ns => ns.map(n => n.textContent)"
            )
        )

    def session_id(self) -> str:
        return self.page.evaluate("location.hash.slice(1)")

    def task_id(self) -> str:
        return self.page.eval_on_selector_all(
            ".message.assistant", "ns => ns[ns.length - 1].dataset.taskId"
        )

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


def stored_answers(server: DevServer, session_id: str, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    session = httpx.get(f"{server.api}/sessions/{session_id}", headers=headers).json()
    return "".join(m.get("content") or "" for m in session["messages"] if m["role"] == "assistant")


@pytest.fixture(autouse=True)
def _chromium() -> None:
    require(CHROMIUM.exists(), f"{CHROMIUM} not found (as root: apt-get install -y chromium)")


@pytest.fixture
def browser(dev_server: DevServer, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a new empty profile: no state from another test
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def chat(browser: Any, dev_server: DevServer) -> Iterator[ChatPage]:
    page = ChatPage(browser.pages[0] if browser.pages else browser.new_page(), dev_server)
    page.open()
    yield page
    assert page.errors == [], f"the page threw: {page.errors}"


def test_a_message_streams_in(chat: ChatPage, dev_server: DevServer) -> None:
    assert "scripted model" in chat.page.inner_text("#model-banner")
    dev_server.script({"kind": "reply", "delay_ms": 60, "stream": True})
    chat.send("Hello there! How does streaming work?")

    seen = []
    while chat.page.get_attribute("body", "data-busy") == "true" or not seen:
        seen.append(len(chat.answer_text()))
        time.sleep(0.1)
    growing = sorted(set(seen))
    assert len(growing) >= 5, f"the answer did not arrive piece by piece: lengths {seen}"

    session_id = chat.session_id()
    assert chat.answer_text() == stored_answers(dev_server, session_id)
    assert chat.page.inner_text(".message.user .bubble") == "Hello there! How does streaming work?"
    # The title is generated beside the turn and reaches the sidebar through /events.
    item = chat.page.locator(f".session-item[data-session-id='{session_id}'] .session-link")
    item.filter(has_not_text="New chat").wait_for()
    assert chat.page.inner_text("#chat-title") == item.inner_text()
    assert chat.page.locator(".message.assistant .usage").inner_text().endswith("out)")


def test_reload_mid_answer_resumes_without_duplicates(
    chat: ChatPage, dev_server: DevServer, browser: Any
) -> None:
    dev_server.script(SLOW)
    question = "Tell me how a reload keeps the answer"
    chat.send(question)
    chat.wait_text(40)
    chat.screenshot("reload-before")
    before = chat.answer_text()
    chat.requests.clear()
    chat.page.reload()
    chat.wait_ready()
    # Drawn from the saved progress at once, then resumed from the saved cursor.
    assert chat.answer_text().startswith(before)
    # Another tab has no saved progress: it replays the running task from the start.
    other = ChatPage(browser.new_page(), dev_server)
    other.open(f"#{chat.session_id()}")
    chat.wait_idle()
    other.wait_idle()
    chat.screenshot("reload-after")

    final = stored_answers(dev_server, chat.session_id())
    assert chat.answer_text() == final, (
        "the resumed answer differs from the stored one (a token shown twice or lost)"
    )
    assert other.answer_text() == final
    assert chat.page.locator(".message.assistant").count() == 1
    assert chat.page.inner_text(".message.user .bubble") == question
    resumed = [url for url in chat.requests if "/stream?last_message_id=" in url]
    assert resumed and "last_message_id=0-0" not in resumed[0], (
        f"the reload did not resume from its cursor: {resumed}"
    )
    assert any("last_message_id=0-0" in url for url in other.requests)
    assert other.errors == []


def test_a_lost_connection_resumes_from_the_cursor(browser: Any, dev_server: DevServer) -> None:
    """The page reaches the server through a proxy that drops every connection mid-answer
    and refuses new ones for a moment, as a flaky network does."""
    with CuttableProxy(int(dev_server.url.rsplit(":", 1)[1])) as proxy:
        chat = ChatPage(browser.pages[0] if browser.pages else browser.new_page(), dev_server)
        chat.page.goto(f"http://127.0.0.1:{proxy.port}/")
        chat.wait_ready()
        dev_server.script(SLOW)
        chat.send("What happens when the network drops?")
        chat.wait_text(30)
        chat.requests.clear()
        proxy.cut(down_seconds=1.5)
        chat.page.wait_for_selector("#connection-status:not([hidden])", timeout=10_000)
        chat.screenshot("connection-lost")
        chat.wait_idle()
        assert chat.answer_text() == stored_answers(dev_server, chat.session_id())
        resumed = [url for url in chat.requests if "/stream?last_message_id=" in url]
        assert resumed and all("last_message_id=0-0" not in url for url in resumed), resumed
        assert chat.page.is_hidden("#connection-status")
        assert chat.errors == []


def test_an_agent_search_shows_a_tool_card(chat: ChatPage, dev_server: DevServer) -> None:
    chat.send("Find an agent for newsletters")
    card = chat.page.locator(".tool-card[data-tool-name=find_agent]")
    card.wait_for()
    chat.page.wait_for_selector(
        ".tool-card[data-tool-name=find_agent][data-state=output-available]"
    )
    chat.wait_idle()
    assert "Found" in card.locator(".tool-summary").inner_text()
    card.locator(".tool-input summary").click()
    assert "newsletters" in card.locator(".tool-input pre").inner_text()
    card.locator(".tool-output summary").click()
    assert '"agents"' in card.locator(".tool-output pre").inner_text()
    assert "I found" in chat.answer_text()
    chat.screenshot("tool-card")
    # History draws the same card.
    chat.page.reload()
    chat.wait_ready()
    chat.page.wait_for_selector(
        ".tool-card[data-tool-name=find_agent][data-state=output-available]"
    )
    assert chat.page.locator(".tool-card").count() == 1


def test_a_long_operation_is_pending_until_its_webhook(
    chat: ChatPage, dev_server: DevServer
) -> None:
    chat.send("Create an agent that summarizes my newsletters")
    chat.page.wait_for_selector(".tool-card[data-tool-name=create_agent][data-state=pending]")
    assert chat.page.get_attribute("body", "data-busy") == "true"  # following the operation
    chat.screenshot("operation-pending")
    # A reload while it is pending: the card stays pending and the result still arrives.
    chat.page.reload()
    chat.wait_ready()
    chat.page.wait_for_selector(".tool-card[data-tool-name=create_agent][data-state=pending]")
    chat.page.wait_for_selector(
        ".tool-card[data-tool-name=create_agent][data-state=output-available]", timeout=30_000
    )
    chat.wait_idle()
    assert chat.page.locator(".tool-card").count() == 1
    # Built; an anonymous user has no library to save it to.
    assert "Built" in chat.page.inner_text(".tool-card .tool-summary")
    assert "is ready" in chat.answer_text()
    chat.screenshot("operation-done")


def test_stop_cancels_a_pending_operation(chat: ChatPage, dev_server: DevServer) -> None:
    chat.send("Create an agent that writes my weekly report")
    card = chat.page.locator(".tool-card[data-tool-name=create_agent]")
    chat.page.wait_for_selector(".tool-card[data-tool-name=create_agent][data-state=pending]")
    operation_task = chat.task_id()
    chat.page.click("#stop")
    chat.wait_idle(timeout=10_000)
    assert card.get_attribute("data-state") == "output-error"
    assert "Cancelled" in card.locator(".tool-error").inner_text()
    assert httpx.get(f"{dev_server.api}/tasks/{operation_task}").json()["status"] == "cancelled"
    # The late webhook changes nothing, and history says the same after a reload.
    time.sleep(2.5)
    chat.page.reload()
    chat.wait_ready()
    chat.page.wait_for_selector(".tool-card[data-tool-name=create_agent][data-state=output-error]")
    assert chat.page.get_attribute("body", "data-busy") == "false"


def test_stop_cancels_the_turn(chat: ChatPage, dev_server: DevServer) -> None:
    dev_server.script(SLOW)
    chat.send("Please write a long answer I can stop")
    chat.wait_text(30)
    task_id = chat.task_id()
    chat.page.click("#stop")
    chat.wait_idle(timeout=10_000)
    chat.page.wait_for_selector(".message.assistant .badge.stopped")
    assert httpx.get(f"{dev_server.api}/tasks/{task_id}").json()["status"] == "cancelled"
    stopped_at = chat.answer_text()
    time.sleep(1.0)
    assert chat.answer_text() == stopped_at, "text kept arriving after stop"
    # The partial answer was saved, and the next message works.
    chat.send("Hello again")
    chat.wait_idle()
    assert chat.page.locator(".message.assistant").count() == 2


def test_errors_are_readable(chat: ChatPage, dev_server: DevServer) -> None:
    dev_server.script(
        {
            "kind": "http_error",
            "status": 400,
            "message": "This model does not exist.",
            "stream": True,
        }
    )
    chat.send("Hello there")
    chat.wait_idle()
    error = chat.page.locator(".message.assistant .message-error")
    assert "This model does not exist." in error.inner_text()
    chat.page.goto(f"{dev_server.url}/#no-such-session")
    chat.wait_ready()
    banner = chat.page.locator("#error-banner")
    banner.wait_for()
    assert banner.get_attribute("data-code") == "SESSION_NOT_FOUND"
    assert "No such chat session" in banner.inner_text()
    chat.screenshot("error-banner")
    banner.locator(".close").click()
    assert banner.is_hidden()


def test_dev_login_and_a_live_sidebar(chat: ChatPage, dev_server: DevServer) -> None:
    chat.sign_in("alice")
    assert chat.page.inner_text("#whoami") == "alice"
    chat.send("Plan a weekend trip to Rome")
    chat.wait_idle()
    session_id = chat.session_id()
    item = chat.page.locator(f".session-item[data-session-id='{session_id}']")
    item.locator(".session-link").filter(has_not_text="New chat").wait_for()

    # A chat of alice's made elsewhere shows up here live; another user's does not.
    token = httpx.post(f"{dev_server.url}/dev/login", json={"user_id": "alice"}).json()["token"]
    other = httpx.post(
        f"{dev_server.api}/sessions", headers={"Authorization": f"Bearer {token}"}
    ).json()["id"]
    chat.page.wait_for_selector(f".session-item[data-session-id='{other}']")
    bob = httpx.post(f"{dev_server.url}/dev/login", json={"user_id": "bob"}).json()["token"]
    httpx.post(f"{dev_server.api}/sessions", headers={"Authorization": f"Bearer {bob}"})
    chat.screenshot("signed-in")

    item.hover()
    item.locator(".delete-session").click()
    item.wait_for(state="detached")
    listed = httpx.get(
        f"{dev_server.api}/sessions", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert [s["id"] for s in listed["sessions"]] == [other]
    assert chat.page.locator(".session-item").count() == 1

    chat.page.click("#logout-button")
    chat.page.wait_for_selector("body[data-ready=true][data-user='']")
    assert chat.page.is_visible("#signed-out")
    assert chat.page.locator(".session-item").count() == 0


def test_screenshot_mid_stream(chat: ChatPage, dev_server: DevServer) -> None:
    """The README's picture: a signed-in page with earlier chats, a tool card, an answer
    mid-stream."""
    token = httpx.post(f"{dev_server.url}/dev/login", json={"user_id": "ada"}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    for earlier in (
        "Plan a weekend trip to Rome in May",
        "Create an agent that summarizes my email",
    ):
        session_id = httpx.post(f"{dev_server.api}/sessions", headers=headers).json()["id"]
        with httpx.stream(
            "POST",
            f"{dev_server.api}/sessions/{session_id}/stream",
            headers=headers,
            json={"message": earlier},
            timeout=30,
        ) as r:
            r.read()
    chat.sign_in("ada")
    chat.send("Find an agent for 'newsletters'")
    chat.wait_idle()
    dev_server.script(SLOW)
    chat.send("How do you keep an answer going when I reload the page?")
    chat.wait_text(170)
    path = chat.screenshot("mid-stream")
    assert chat.page.get_attribute("body", "data-busy") == "true", (
        "the answer ended before the screenshot"
    )
    if os.environ.get("UPDATE_README_SCREENSHOT") == "1":
        shutil.copyfile(path, REPO / "docs" / "screenshot.png")
    chat.wait_idle()
