"""chat_core.api.limits: a body over the limit is refused with 413 before anything reads it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.both


async def test_a_chunked_body_over_the_limit_is_413(api, settings_env):
    settings_env(max_body_bytes=1000)
    session = (await api.post("/api/chat/sessions")).json()["id"]

    async def chunked():
        yield b'{"message": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    response = await api.post(
        f"/api/chat/sessions/{session}/stream",
        content=chunked(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["detail"]["code"] == "BODY_TOO_LARGE"
    assert (await api.get(f"/api/chat/sessions/{session}")).json()["messages"] == []
