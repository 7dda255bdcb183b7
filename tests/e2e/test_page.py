"""The chat page (web/, a `useChat` client) in headless Chromium, against the real dev server.

    .venv/bin/python -m pytest tests/e2e/test_page.py -q
    UPDATE_README_SCREENSHOT=1 .venv/bin/python -m pytest tests/e2e/test_page.py -k markdown

Debian's /usr/bin/chromium driven by Playwright, a fresh profile per test. Answers come from
the scripted model; a test slows one down or makes it fail through the model's control API.
Screenshots go to tests/artifacts/page/; the README's (docs/screenshot.png) is rewritten
only when UPDATE_README_SCREENSHOT=1.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ARTIFACTS, REPO, DevServer, chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

SHOTS = ARTIFACTS / "page"


def slow(text: str, delay_ms: int = 60) -> dict[str, Any]:
    return {"kind": "reply", "text": text, "delay_ms": delay_ms, "stream": True}


WORDS = " ".join(f"w{i}" for i in range(60))


class ChatPage:
    """The page as a user sees it; selectors are the ids and classes web/src promises."""

    def __init__(self, page: Any, server: DevServer) -> None:
        self.page = page
        self.server = server
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, fragment: str = "") -> None:
        self.page.goto(f"{self.server.url}/{fragment}")
        self.wait_ready()

    def wait_ready(self) -> None:
        self.page.wait_for_selector("body[data-ready=true]", timeout=15_000)

    def send(self, text: str) -> None:
        self.page.fill("#input", text)
        self.page.press("#input", "Enter")

    def wait_idle(self, timeout: float = 30_000) -> None:
        self.page.wait_for_function(
            "() => document.body.dataset.status === 'ready' || document.body.dataset.status === 'error'",
            timeout=timeout,
        )

    def wait_answer(self, timeout: float = 30_000) -> None:
        self.page.wait_for_selector(".message.assistant", timeout=timeout)
        self.wait_idle(timeout)

    def chat_id(self) -> str:
        return self.page.evaluate("decodeURIComponent(location.hash.slice(1))")

    def shown(self) -> list[dict[str, Any]]:
        return self.page.eval_on_selector_all(
            ".message",
            """ns => ns.map(n => ({
                role: n.classList.contains('user') ? 'user' : 'assistant',
                id: n.dataset.id,
                text: n.classList.contains('user')
                    ? n.querySelector('.bubble')?.textContent
                    : [...n.querySelectorAll('.text')].map(t => t.textContent).join('|'),
                tools: [...n.querySelectorAll('.tool')].map(t => t.dataset.state),
            }))""",
        )

    def stored(self, token: str | None = None) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"{self.server.api}/sessions/{self.chat_id()}/messages"
        return httpx.get(url, headers=headers).json()["messages"]

    def shows_what_is_stored(self, token: str | None = None) -> None:
        """Every message and part exactly once: what the page shows is the server's history."""
        shown, stored = self.shown(), self.stored(token)
        assert [(m["role"], m["id"]) for m in shown] == [(m["role"], m["id"]) for m in stored]
        for seen, kept in zip(shown, stored, strict=True):
            tools = [p["state"] for p in kept["parts"] if p["type"].startswith("tool-")]
            assert seen["tools"] == tools

    def sidebar_titles(self) -> list[str]:
        return self.page.eval_on_selector_all(
            "#sessions .session-link", "ns => ns.map(n => n.textContent)"
        )

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def browser(dev_server: DevServer, tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile") as context:
        yield context


@pytest.fixture
def chat(browser: Any, dev_server: DevServer) -> ChatPage:
    page = ChatPage(browser.new_page(), dev_server)
    page.open()
    return page


def test_an_answer_renders_markdown_as_elements(chat: ChatPage) -> None:
    chat.send("Show me some Markdown, please")
    chat.wait_answer()
    answer = chat.page.locator(".message.assistant .markdown")
    assert answer.locator("strong").first.inner_text() == "Markdown"
    assert answer.locator("code").first.inner_text() == "inline code"
    assert answer.locator("table th").all_inner_texts() == ["tool", "runs"]
    link = answer.locator("a").first
    assert link.get_attribute("href") == "https://ai-sdk.dev"
    assert "def greet" in answer.locator(".code-block pre").inner_text()
    assert chat.page.locator(".code-block .copy").count() == 1
    assert [m["text"] for m in chat.shown()][0] == "Show me some Markdown, please"
    chat.shows_what_is_stored()
    chat.shot("markdown")
    if os.environ.get("UPDATE_README_SCREENSHOT") == "1":
        shutil.copy(SHOTS / "markdown.png", REPO / "docs" / "screenshot.png")
    assert chat.errors == []


def test_reload_mid_answer_shows_every_message_and_part_once(chat: ChatPage) -> None:
    chat.server.script(slow(WORDS))
    chat.send("Count slowly for me")
    chat.page.wait_for_function(
        "() => (document.querySelector('.message.assistant .text')?.textContent || '').length > 12"
    )
    chat.page.reload()
    chat.wait_ready()
    chat.page.wait_for_function(
        "w => document.querySelector('.message.assistant .text')?.textContent.trim() === w",
        arg=WORDS,
    )
    chat.wait_idle()
    shown = chat.shown()
    assert [(m["role"], m["text"].strip()) for m in shown] == [
        ("user", "Count slowly for me"),
        ("assistant", WORDS),
    ]
    chat.shows_what_is_stored()
    assert chat.errors == []


def test_a_delegated_operation_goes_from_pending_to_done_with_reasoning_collapsed(
    chat: ChatPage,
) -> None:
    chat.send("Create an agent that chases unpaid invoices")
    chat.page.wait_for_selector(".tool[data-state=input-available]")
    chat.shot("operation-pending")
    chat.page.wait_for_selector(".tool[data-state=output-available]", timeout=30_000)
    chat.wait_idle()
    [_, answer] = chat.shown()
    assert answer["tools"] == ["output-available"] and answer["text"]
    chat.shows_what_is_stored()

    chat.send("Think it through: what are you?")
    chat.page.wait_for_selector(".message.assistant >> nth=1")
    chat.wait_idle()
    reasoning = chat.page.locator("details.reasoning")
    assert reasoning.count() == 1
    assert reasoning.get_attribute("open") is None  # collapsed
    reasoning.locator("summary").click()
    assert "The user wrote" in reasoning.locator(".reasoning-text").inner_text()
    chat.shows_what_is_stored()
    assert chat.errors == []


def test_edit_a_message_and_regenerate_an_answer(chat: ChatPage) -> None:
    chat.send("First question")
    chat.wait_answer()
    chat.server.script({"kind": "reply", "text": "A regenerated answer.", "stream": True})
    chat.page.click(".message.assistant .regenerate")
    chat.page.wait_for_function(
        "() => document.querySelector('.message.assistant .text')?.textContent === 'A regenerated answer.'"
    )
    chat.wait_idle()
    chat.shows_what_is_stored()

    chat.server.script({"kind": "reply", "text": "An answer to the edit.", "stream": True})
    chat.page.click(".message.user .edit")
    chat.page.fill(".edit-input", "First question, edited")
    chat.page.click(".edit-box .save")
    chat.page.wait_for_function(
        "() => document.querySelector('.message.assistant .text')?.textContent === 'An answer to the edit.'"
    )
    chat.wait_idle()
    assert [(m["role"], m["text"]) for m in chat.shown()] == [
        ("user", "First question, edited"),
        ("assistant", "An answer to the edit."),
    ]
    chat.shows_what_is_stored()
    assert chat.errors == []


def test_a_failed_answer_has_a_retry_and_stop_ends_an_answer(chat: ChatPage) -> None:
    chat.server.script(
        {"kind": "http_error", "status": 400, "message": "bad request", "stream": True}
    )
    chat.send("This one fails")
    chat.page.wait_for_selector("#error #retry")
    chat.shot("error")
    chat.server.script({"kind": "reply", "text": "It worked this time.", "stream": True})
    chat.page.click("#retry")
    chat.page.wait_for_function(
        "() => [...document.querySelectorAll('.message.assistant .text')]"
        ".some(t => t.textContent === 'It worked this time.')"
    )
    chat.wait_idle()
    assert chat.page.locator("#error").count() == 0
    chat.shows_what_is_stored()

    chat.server.script(slow(" ".join(f"s{i}" for i in range(300)), delay_ms=40))
    chat.send("Talk for a long time")
    chat.page.wait_for_selector("#stop")
    chat.page.wait_for_function(
        "() => [...document.querySelectorAll('.message.assistant .text')].pop()?.textContent.length > 5"
    )
    chat.page.click("#stop")
    chat.wait_idle()
    chat.page.wait_for_selector("#send")
    chat.page.wait_for_timeout(500)  # the server has ended the answer: nothing more arrives
    stopped = chat.shown()[-1]["text"]
    assert "s299" not in stopped
    chat.page.reload()
    chat.wait_ready()
    chat.wait_idle()
    assert "s299" not in chat.shown()[-1]["text"]
    chat.shows_what_is_stored()
    assert chat.errors == []


def test_sessions_live_titles_rename_delete_and_sign_in_keeps_anonymous_chats(
    chat: ChatPage,
) -> None:
    chat.send("Plan a picnic in the park")
    chat.wait_answer()
    chat.page.wait_for_function(
        "() => [...document.querySelectorAll('#sessions .session-link')]"
        ".some(a => a.textContent !== 'New chat')"
    )  # the generated title arrives as an event
    first = chat.chat_id()
    [title] = chat.sidebar_titles()
    assert "Picnic" in title

    chat.page.click("#new-chat")
    chat.wait_ready()
    chat.send("Hello there!")
    chat.wait_answer()
    second = chat.chat_id()
    assert second != first and len(chat.sidebar_titles()) == 2

    # Sign in: both anonymous chats become the user's and stay listed.
    chat.page.fill("#login-user", "alice")
    chat.page.click("#login-button")
    chat.page.wait_for_selector("#whoami")
    chat.page.wait_for_function(
        "() => document.querySelectorAll('#sessions .session-item').length === 2"
    )
    token = chat.page.evaluate("localStorage.getItem('chat.token')")
    listed = httpx.get(
        f"{chat.server.api}/sessions", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert {s["id"] for s in listed["sessions"]} == {first, second}

    # Rename, then delete.
    item = chat.page.locator(f"#sessions .session-item[data-id='{first}']")
    item.hover()
    item.locator(".rename").click()
    chat.page.fill(".rename-input", "Picnic plans")
    chat.page.press(".rename-input", "Enter")
    chat.page.wait_for_function(
        "() => [...document.querySelectorAll('#sessions .session-link')]"
        ".some(a => a.textContent === 'Picnic plans')"
    )
    chat.page.reload()
    chat.wait_ready()
    assert "Picnic plans" in chat.sidebar_titles()
    chat.page.locator(f"#sessions .session-item[data-id='{second}'] .delete").click()
    chat.page.wait_for_function(
        "() => document.querySelectorAll('#sessions .session-item').length === 1"
    )
    gone = httpx.get(
        f"{chat.server.api}/sessions/{second}", headers={"Authorization": f"Bearer {token}"}
    )
    assert gone.status_code == 404
    assert chat.errors == []


def test_a_phone_wide_screen_has_a_sidebar_toggle(browser: Any, dev_server: DevServer) -> None:
    page = browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    chat = ChatPage(page, dev_server)
    chat.open()
    chat.send("Hello there!")
    chat.wait_answer()
    on_screen = "() => document.querySelector('#sidebar').getBoundingClientRect().right > 0"
    assert not page.evaluate(on_screen)  # the sidebar is off screen
    chat.shot("phone")
    page.click("#toggle-sidebar")
    page.wait_for_function(
        "() => document.querySelector('#sidebar').getBoundingClientRect().left >= 0"
    )
    page.wait_for_timeout(300)  # the slide-in transition
    chat.shot("phone-sidebar")
    page.click("#close-sidebar")
    page.wait_for_function(
        "() => document.querySelector('#sidebar').getBoundingClientRect().right <= 0"
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the screen
    assert chat.errors == []
