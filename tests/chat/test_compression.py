"""chat_core.chat.compression, against the scripted model over real HTTP: the turns that no
longer fit are summarised by the title model, once per compaction, and never split a tool
call from its result; without a model, or when it fails, the offline fit is used."""

from __future__ import annotations

import json

import pytest
from chat_core import background
from chat_core.chat.compression import SUMMARY_INSTRUCTIONS
from chat_core.chat.context import SUMMARY_HEADING, compaction_cut, repair
from chat_core.chat.service import stream_chat_completion
from chat_core.sessions import get_session_store
from chat_core.sessions.models import ChatMessage

from tests.chunk_rules import assert_valid_content

SUMMARISER = "scripted-summariser"
FILLER = " ".join(["detail"] * 40)


@pytest.fixture
def small_window(store_backend, model, settings_env):
    """On either session store (the summary cache is Redis's either way)."""
    # With the tools offered, a model call may use about 1,900 tokens of history.
    settings_env(context_window_tokens=3_200, max_output_tokens=200, title_model=SUMMARISER)
    return model


async def conversation(turns: int, *, with_tools: bool = False, user_id: str = "u1") -> str:
    store = get_session_store()
    session = await store.create(user_id, session_id=None)
    messages = []
    for i in range(turns):
        messages.append(ChatMessage(role="user", content=f"question {i} about topic-{i} {FILLER}"))
        if with_tools and i % 2 == 0:
            call = {
                "id": f"call-{i}",
                "type": "function",
                "function": {"name": "find_agent", "arguments": json.dumps({"query": f"q{i}"})},
            }
            messages.append(ChatMessage(role="assistant", content=None, tool_calls=[call]))
            messages.append(
                ChatMessage(role="tool", tool_call_id=f"call-{i}", content=f"result {i} {FILLER}")
            )
        messages.append(ChatMessage(role="assistant", content=f"answer {i} {FILLER}"))
    await store.append_messages(session.session_id, messages)
    return session.session_id


async def turn(session_id: str, message: str, user_id: str = "u1") -> list[dict]:
    # A failure would raise TurnFailed; the content alone is checked here.
    chunks = [
        json.loads(c.to_json()) async for c in stream_chat_completion(session_id, message, user_id)
    ]
    assert_valid_content(chunks)
    assert "error" not in [c["type"] for c in chunks]
    return chunks


def summary_requests(model) -> list:
    return [r for r in model.chat_requests if r.system_prompt == SUMMARY_INSTRUCTIONS]


def last_turn_request(model):
    return [r for r in model.chat_requests if r.streaming][-1]


def summary_note(request) -> str | None:
    notes = [
        m["content"]
        for m in request.messages[1:]
        if m["role"] == "system" and m["content"].startswith(SUMMARY_HEADING)
    ]
    return notes[0] if notes else None


def assert_dropped_offline(request) -> None:
    """The oldest turns left out with at most a note of what they asked, no model summary."""
    assert summary_note(request) is None
    contents = [m.get("content") or "" for m in request.messages]
    assert not any(c.startswith("question 0 ") for c in contents)
    assert contents[-1] == "latest question" and len(contents) < 41


async def test_dropped_turns_are_summarised_by_the_title_model(small_window):
    model = small_window
    session_id = await conversation(20)
    await turn(session_id, "latest question")

    [asked] = summary_requests(model)
    assert asked.body["model"] == SUMMARISER and not asked.streaming
    assert asked.body["user"] == "u1" and asked.body["session_id"] == session_id
    sent = last_turn_request(model)
    note = summary_note(sent)
    assert note is not None and "question 0 about topic-0" in note  # what was left out
    contents = [m.get("content") or "" for m in sent.messages]
    assert not any(c.startswith("question 0 ") for c in contents)
    assert contents[-1] == "latest question"
    # The turns kept verbatim are the newest, in order, and fill about half the budget.
    kept = [int(c.split()[1]) for c in contents if c.startswith("question ")]
    assert kept == sorted(kept) and kept[-1] == 19 and len(kept) < 20


async def test_the_summary_is_made_once_and_reused_by_the_next_turns(small_window):
    model = small_window
    session_id = await conversation(20)
    await turn(session_id, "latest question")
    first_note = summary_note(last_turn_request(model))
    for follow_up in ("and another thing", "one more"):
        await turn(session_id, follow_up)
        assert summary_note(last_turn_request(model)) == first_note
    assert len(summary_requests(model)) == 1


async def test_a_summary_never_splits_a_tool_call_from_its_result(small_window):
    model = small_window
    session_id = await conversation(16, with_tools=True)
    await turn(session_id, "latest question")
    assert len(summary_requests(model)) == 1
    sent = last_turn_request(model).messages
    calls = {c["id"] for m in sent for c in m.get("tool_calls") or []}
    results = {m["tool_call_id"] for m in sent if m["role"] == "tool"}
    assert calls == results and calls  # whole units kept; none half-summarised
    first_kept = next(m for m in sent if m["role"] != "system")
    assert first_kept["role"] != "tool"


def test_the_cut_is_always_at_a_unit_boundary():
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    history = repair(
        [
            {"role": "user", "content": "u " * 50},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c", "content": "r " * 200},
            {"role": "assistant", "content": "a " * 50},
            {"role": "user", "content": "last"},
        ]
    )
    for keep in range(0, 600, 5):
        cut = compaction_cut(history, keep)
        assert history[cut]["role"] != "tool" if cut < len(history) else True
        assert cut < len(history)  # the newest unit always stays


async def test_without_a_model_key_the_oldest_turns_are_dropped_offline(small_window, settings_env):
    model = small_window
    settings_env(llm_api_key="")
    session_id = await conversation(20)
    await turn(session_id, "latest question")
    assert summary_requests(model) == []
    assert_dropped_offline(last_turn_request(model))


async def test_a_failing_summary_falls_back_to_the_offline_fit(small_window):
    model = small_window
    model.reply_error(500, stream=False)
    session_id = await conversation(20)
    await turn(session_id, "latest question")
    assert len(summary_requests(model)) == 1
    assert_dropped_offline(last_turn_request(model))


async def test_a_conversation_near_the_budget_gets_its_summary_ahead_of_need(small_window):
    model = small_window
    session_id = await conversation(10)  # fits, but is close to the budget
    await turn(session_id, "still fits")
    assert summary_note(last_turn_request(model)) is None  # sent whole
    await background.drain()
    assert len(summary_requests(model)) == 1  # made beside the turn, not before it

    store = get_session_store()
    more = [ChatMessage(role="user", content=f"later {i} {FILLER}") for i in range(6)]
    await store.append_messages(session_id, more)
    await turn(session_id, "now it does not fit")
    assert summary_note(last_turn_request(model)) is not None
    assert len(summary_requests(model)) == 1  # the prepared one was used


async def test_an_edited_history_is_never_given_a_stale_summary(small_window):
    """A summary is keyed by what it covers: a conversation rewritten before its cut gets a
    new one."""
    model = small_window
    session_id = await conversation(20)
    await turn(session_id, "latest question")
    store = get_session_store()
    await store.delete(session_id, "u1")
    edited = await store.create("u1", session_id=session_id)
    await store.append_messages(
        edited.session_id,
        [
            ChatMessage(role="user", content=f"rewritten {i} {FILLER}")
            for i in range(30)  # same session id, other messages
        ],
    )
    await turn(session_id, "after the edit")
    assert len(summary_requests(model)) == 2
    assert "rewritten 0" in summary_note(last_turn_request(model))
