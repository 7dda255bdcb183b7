from __future__ import annotations

import pytest


@pytest.fixture
def quiet_dispatch(monkeypatch, settings_env):
    """Webhooks queue but neither process their completion nor wake a worker: the test
    plays the workers."""

    async def no_wake() -> None:
        return None

    settings_env(webhook_process_inline=False)
    monkeypatch.setattr("chat_core.completions.inbox.wake_worker", no_wake)
