"""chat_core.aisdk.history: the session's conversation as AI SDK UIMessages, with the stream's
message ids; a message in progress is left to the resume; reasoning is kept."""

from __future__ import annotations

import pytest
from chat_core.sessions import get_session_store
from chat_core.tasks import start_turn
from chat_dev.scripted_model import ReplyWith

from tests.api.helpers import messages_of, post, user, wait_until_streaming
from tests.conftest import sse_chunks

pytestmark = pytest.mark.both


async def test_messages_are_the_ai_sdk_shape_with_the_stream_ids(api, model):
    model.reply_text("Hi! I can chat.", stream=True)
    chunks = sse_chunks((await post(api, "chat-a", [user("Hello", "u1")])).text)
    assert chunks[0]["type"] == "start" and chunks[-1] == {"type": "finish"}
    history = await messages_of(api, "chat-a")
    assert history[0] == user("Hello", "u1")
    assert history[1]["id"] == chunks[0]["messageId"] and history[1]["role"] == "assistant"
    text = [p for p in history[1]["parts"] if p["type"] == "text"]
    assert text == [{"type": "text", "text": "Hi! I can chat.", "state": "done"}]
    # The model's own history is unchanged by the view records.
    session = (await api.get("/api/chat/sessions/chat-a")).json()
    assert [m["role"] for m in session["messages"]] == ["user", "assistant"]


async def test_a_message_in_progress_is_left_to_the_resume(api, model):
    session = await get_session_store().create(None, session_id="chat-b")
    model.slow_stream(60, text=" ".join(f"w{i}" for i in range(40)))
    task = await start_turn(session, "count", None)
    await wait_until_streaming(task.task_id)
    history = await messages_of(api, "chat-b")
    assert [m["role"] for m in history] == ["user"]
    resumed = sse_chunks((await api.get("/api/chat/chat-b/stream")).text)
    assert resumed[0]["type"] == "start" and resumed[-1] == {"type": "finish"}
    history = await messages_of(api, "chat-b")
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[1]["id"] == resumed[0]["messageId"]


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
async def test_reasoning_streams_and_is_kept(api, model, field):
    model.enqueue(
        ReplyWith(text="Four.", reasoning="Two and two.", reasoning_field=field, stream=True)
    )
    chunks = sse_chunks((await post(api, f"chat-r-{field}", [user("2+2?", "u1")])).text)
    kinds = [c["type"] for c in chunks]
    assert kinds.index("reasoning-start") < kinds.index("reasoning-end") < kinds.index("text-start")
    [answer] = (await messages_of(api, f"chat-r-{field}"))[1:]
    [reasoning] = [p for p in answer["parts"] if p["type"] == "reasoning"]
    assert (reasoning["text"], reasoning["state"]) == ("Two and two.", "done")
