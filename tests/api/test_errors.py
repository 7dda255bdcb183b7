"""chat_core.api.errors: every error answer is `{"detail": {"code", "message"}}`."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.both


@pytest.mark.parametrize(
    "body",
    [b'{"message": "caf\xc3"}', b'{"message": "\xff\xfe"}', b"[" * 10_000 + b"]" * 10_000],
    ids=["truncated utf-8", "not utf-8", "10,000 deep"],
)
async def test_a_body_that_is_not_json_text_is_422(api, body):
    session = (await api.post("/api/chat/sessions")).json()["id"]
    response = await api.post(
        f"/api/chat/sessions/{session}/stream",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "INVALID_JSON"
    assert (await api.get(f"/api/chat/sessions/{session}")).json()["messages"] == []
