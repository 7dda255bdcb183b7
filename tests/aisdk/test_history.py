"""chat_core.aisdk.history: the session's conversation as AI SDK UIMessages, with the stream's
message ids; a message in progress is left to the resume, one that ended unread is folded
and stored; reasoning is kept; records from before messages had ids still show."""

from __future__ import annotations

import pytest
from chat_core import tasks
from chat_core.aisdk import history
from chat_core.registry import publish_chunks
from chat_core.sessions import get_session_store
from chat_core.sessions.models import ChatMessage, ChatSession
from chat_core.tasks import start_turn
from chat_dev.scripted_model import ReplyWith

from tests.api.helpers import messages_of, post, user, wait_until_streaming
from tests.chunk_rules import text_step
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
    task = await start_turn(session.session_id, "count", None)
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


def ui_of(message_id: str, role: str, text: str) -> dict:
    return {"id": message_id, "role": role, "parts": [{"type": "text", "text": text}]}


def test_records_saved_before_messages_had_ids_are_listed_with_made_up_ones():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    session = ChatSession(
        session_id="s1",
        messages=[
            ChatMessage(role="user", content="Hi", sequence=0),
            ChatMessage(role="assistant", tool_calls=[call], sequence=1),
            ChatMessage(role="tool", content="{}", tool_call_id="c1", sequence=2),
            ChatMessage(role="assistant", content="Hello!", sequence=3),
        ],
    )
    listed = history.entries(session)
    assert [(e.message_id, e.role, e.first_sequence) for e in listed] == [
        ("legacy-0", "user", 0),
        ("legacy-3", "assistant", 3),
    ]
    assert listed[1].ui["parts"] == [{"type": "text", "text": "Hello!", "state": "done"}]


def test_a_messages_latest_view_wins_and_its_first_record_is_where_a_rewind_cuts():
    session = ChatSession(
        session_id="s1",
        messages=[
            ChatMessage(
                role="user", content="Hi", message_id="u1", ui=ui_of("u1", "user", "Hi"), sequence=0
            ),
            ChatMessage(
                role="assistant",
                message_id="a1",
                task_id="t1",
                ui=ui_of("a1", "assistant", "He"),
                complete=False,
                sequence=1,
            ),
            ChatMessage(
                role="assistant", content="Hello", message_id="a1", task_id="t1", sequence=2
            ),
            ChatMessage(
                role="assistant",
                message_id="a1",
                task_id="t1",
                ui=ui_of("a1", "assistant", "Hello"),
                complete=True,
                sequence=3,
            ),
        ],
    )
    question, answer = history.entries(session)
    assert (question.ui, question.streamed, question.first_sequence) == (
        ui_of("u1", "user", "Hi"),
        False,
        0,
    )
    assert (answer.ui, answer.complete, answer.first_sequence) == (
        ui_of("a1", "assistant", "Hello"),
        True,
        1,
    )
    assert answer.task_id == "t1" and answer.streamed


def test_the_message_of_a_turn_or_of_an_operation_by_its_tool_call():
    session = ChatSession(
        session_id="s1",
        messages=[
            ChatMessage(
                role="assistant", message_id="a1", task_id="turn", ui=ui_of("a1", "assistant", "")
            ),
            ChatMessage(
                role="tool", content="pending", tool_call_id="c1", message_id="a1", task_id="turn"
            ),
        ],
    )
    assert history.message_of_task(session, "turn", None) == ("a1", "turn")
    assert history.message_of_task(session, "operation", "c1") == ("a1", "turn")
    assert history.message_of_task(session, "other", None) is None
    assert history.message_of_task(session, "operation", "c2") is None


async def test_a_message_that_ended_unread_is_listed_whole_and_stored_so(redis_target):
    store = get_session_store()
    await store.create(None, session_id="chat-z")
    turn = await tasks.create_turn("chat-z", None, message_id="a1")
    await store.append_messages(
        "chat-z",
        [
            ChatMessage(
                role="user",
                content="Hi",
                message_id="u1",
                ui=ui_of("u1", "user", "Hi"),
                task_id=turn.task_id,
            ),
            ChatMessage(
                role="assistant",
                message_id="a1",
                task_id=turn.task_id,
                ui=ui_of("a1", "assistant", ""),
                complete=False,
            ),
        ],
    )
    await publish_chunks(
        turn.task_id,
        text_step("Hello"),
    )
    await tasks.finish(turn, "completed")  # no worker here, so nobody stored the answer

    session = await store.get("chat-z", None)
    messages, resumable = await history.conversation(session)
    assert resumable is None
    assert [m["id"] for m in messages] == ["u1", "a1"]
    assert [p.get("text") for p in messages[1]["parts"] if p["type"] == "text"] == ["Hello"]
    stored = history.entries(await store.get("chat-z", None))[-1]
    assert stored.complete and stored.ui == messages[1]
