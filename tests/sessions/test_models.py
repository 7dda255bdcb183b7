"""chat_core.sessions.models: what the model is sent of a session, and who may see it."""

from __future__ import annotations

from chat_core.sessions.models import ChatMessage, ChatSession

CALL = {"id": "call_1", "type": "function", "function": {"name": "find_agent", "arguments": "{}"}}


def test_messages_go_to_the_model_in_openai_shape_without_our_own_fields():
    session = ChatSession.new(user_id="u1")
    session.messages += [
        ChatMessage(role="user", content="Hi", task_id="t1", message_id="m1", sequence=0),
        ChatMessage(role="assistant", content=None, tool_calls=[CALL], task_id="t1"),
        ChatMessage(role="tool", content="[]", tool_call_id="call_1", name="find_agent"),
    ]
    assert session.to_openai_messages() == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "content": "[]", "name": "find_agent", "tool_call_id": "call_1"},
    ]


def test_view_records_are_for_readers_and_never_reach_the_model():
    ui = {"id": "a1", "role": "assistant", "parts": [{"type": "text", "text": "Hello"}]}
    view = ChatMessage(role="assistant", message_id="a1", task_id="t1", ui=ui, complete=True)
    user_ui = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}
    question = ChatMessage(role="user", content="Hi", message_id="u1", ui=user_ui)
    answer = ChatMessage(role="assistant", content="Hello", message_id="a1")
    session = ChatSession(session_id="s1", messages=[question, view, answer])
    assert view.is_view and not question.is_view and not answer.is_view
    assert session.to_openai_messages() == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ]


def test_an_owned_session_is_its_owners_and_an_anonymous_one_whoever_has_its_id():
    owned = ChatSession.new(user_id="u1")
    anonymous = ChatSession.new()
    assert owned.visible_to("u1") and not owned.visible_to("u2") and not owned.visible_to(None)
    assert all(anonymous.visible_to(caller) for caller in ("u1", "u2", None))


def test_new_sessions_get_unique_ids_unless_one_is_given():
    assert ChatSession.new().session_id != ChatSession.new().session_id
    assert ChatSession.new(session_id="chat-1").session_id == "chat-1"


def test_the_summary_is_the_session_without_its_messages():
    session = ChatSession.new(user_id="u1")
    session.title = "Trip"
    session.messages.append(ChatMessage(role="user", content="Paris?"))
    summary = session.summary()
    assert (summary.session_id, summary.user_id, summary.title) == (
        session.session_id,
        "u1",
        "Trip",
    )
    assert (summary.created_at, summary.updated_at) == (session.created_at, session.updated_at)
    assert not hasattr(summary, "messages")
