from __future__ import annotations

import pytest


@pytest.fixture
def quiet_dispatch(monkeypatch):
    """Webhooks queue but nothing wakes a worker: the test plays the workers."""

    async def no_wake() -> None:
        return None

    monkeypatch.setattr("chat_core.completions.inbox.wake_worker", no_wake)
