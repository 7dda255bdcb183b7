"""The OpenAI wire format the scripted model speaks (chat_dev.scripted_wire): text cut
into pieces that join back exactly, chunks in the order a streaming client expects."""

from __future__ import annotations

import json
import random

import httpx
import pytest
from chat_dev.scripted_wire import text_pieces

from tests.dev.sdk import USER_HI


async def test_usage_chunk_comes_last_with_empty_choices(model):
    model.reply_text("Hello there.")
    payload = {
        "model": "m",
        "messages": USER_HI,
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    async with httpx.AsyncClient() as http:
        response = await http.post(f"{model.base_url}/chat/completions", json=payload)

    data_lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert data_lines[-1] == "[DONE]"
    last = json.loads(data_lines[-2])
    assert last["choices"] == [] and last["usage"]["total_tokens"] > 0
    assert all(json.loads(line)["usage"] is None for line in data_lines[:-2])


@pytest.mark.parametrize("seed", range(20))
def test_text_pieces_join_back_exactly(seed):
    rng = random.Random(seed)
    alphabet = ["a", "b", "longwordwithoutspaces", " ", "  ", "\n", "é", "🚀", "\t"]
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))

    assert "".join(text_pieces(text, random.Random(seed))) == text
