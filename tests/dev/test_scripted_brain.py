"""chat_dev.scripted_brain: what the scripted model answers when nothing is scripted, through
the real `openai` SDK over real HTTP and called directly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chat_dev.scripted_brain import agent_intent, answer, search_query, title_for

from tests.dev.sdk import MONEY_REQUEST, TITLE_SYSTEM, complete, stream, tool


async def test_a_request_for_a_summary_gets_one_of_the_users_requests(model, client):
    transcript = (
        "user: Find me an agent for tax returns\n"
        "assistant: I found two.\n"
        "user: Which one is cheaper?"
    )
    summary_system = {"role": "system", "content": "Summarise this conversation briefly."}
    reply = await complete(client, [summary_system, {"role": "user", "content": transcript}])
    text = reply.choices[0].message.content
    assert text.startswith("Summary:")
    assert "agent for tax returns" in text and "Which one is cheaper?" in text
    assert "I found two" not in text


async def test_brain_calls_find_agent_with_the_quoted_query(model, client):
    seen = await stream(
        client,
        [{"role": "user", "content": MONEY_REQUEST}],
        tools=[tool("find_agent"), tool("create_agent")],
    )

    assert [call.name for call in seen.calls.values()] == ["find_agent"]
    assert json.loads(seen.calls[0].arguments) == {"query": "moneny printing agent"}
    assert seen.finish_reasons == ["tool_calls"]


async def test_brain_never_calls_a_tool_that_is_not_offered(model, client):
    seen = await stream(client, [{"role": "user", "content": MONEY_REQUEST}], tools=[tool("other")])

    assert seen.calls == {}
    assert seen.finish_reasons == ["stop"]
    assert "search for an agent, but that tool is not available" in seen.text


async def test_brain_calls_create_agent_with_the_request(model, client):
    request = "Create an agent that searches the web for cheap flights every morning"

    seen = await stream(
        client,
        [{"role": "user", "content": request}],
        tools=[tool("find_agent"), tool("create_agent")],
    )

    assert seen.calls[0].name == "create_agent"
    assert json.loads(seen.calls[0].arguments) == {"description": request}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MONEY_REQUEST, "moneny printing agent"),
        ('Search for an agent "weekly newsletter writer"', "weekly newsletter writer"),
        ("Can you find me an agent that writes blog posts?", "writes blog posts"),
        ("I'm looking for agents to summarise meetings", "summarise meetings"),
    ],
)
def test_search_query_extraction(text, expected):
    assert agent_intent(text) == "find"
    assert search_query(text) == expected


def test_the_verb_said_first_decides_the_intent():
    assert agent_intent("Create an agent that searches the web") == "create"
    assert agent_intent("Find an agent that makes invoices") == "find"
    assert agent_intent("Find me a good restaurant") is None


async def test_brain_answers_small_talk_with_a_streamed_paragraph(model, client):
    seen = await stream(client, [{"role": "user", "content": "What is the capital of Portugal?"}])

    assert "What is the capital of Portugal?" in seen.text
    assert seen.text.count(". ") >= 2
    assert len(seen.text_deltas) >= 10
    assert seen.calls == {}


async def test_brain_answer_is_the_same_for_the_same_message(model, client):
    first = await stream(client, [{"role": "user", "content": "Tell me a story"}])
    second = await stream(client, [{"role": "user", "content": "Tell me a story"}])

    assert first.text == second.text
    assert first.text_deltas == second.text_deltas


async def test_title_request_gets_a_short_title(model, client):
    result = await complete(
        client,
        [{"role": "system", "content": TITLE_SYSTEM}, {"role": "user", "content": MONEY_REQUEST}],
    )

    assert result.choices[0].message.content == "Find Moneny Printing Agent"


@pytest.mark.parametrize(
    "message",
    [
        "hi",
        "What's the weather like in Lisbon today?",
        "Explain AWS Lambda response streaming and how Redis streams make resumable SSE work "
        "across reconnects with cursors",
        "Supercalifragilisticexpialidocious antidisestablishmentarianism "
        "pneumonoultramicroscopicsilicovolcanoconiosis",
    ],
)
def test_titles_are_three_to_six_words_in_title_case_within_50_chars(message):
    title = title_for(message)

    assert 3 <= len(title.split()) <= 6
    assert len(title) <= 50
    assert all(word[0].isupper() for word in title.split())


def test_title_only_for_non_streaming_requests():
    messages = [{"role": "system", "content": TITLE_SYSTEM}, {"role": "user", "content": "hi"}]

    assert answer({"messages": messages}).text == title_for("hi")
    assert answer({"messages": messages, "stream": True}).text != title_for("hi")


def tool_turn(name: str, arguments: dict, output: Any, *, call_id: str = "call_1") -> list[dict]:
    return [
        {"role": "user", "content": "please"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": call_id,
            "content": output if isinstance(output, str) else json.dumps(output),
        },
    ]


async def test_brain_names_the_agents_find_agent_found(model, client):
    agents = {
        "agents": [
            {"name": "Money Printer", "description": "Turns invoices into cash flow.", "id": "a1"},
            {"name": "Ledger Bot", "description": "Keeps your books.", "id": "a2"},
        ]
    }

    seen = await stream(
        client,
        tool_turn("find_agent", {"query": "moneny printing agent"}, agents),
        tools=[tool("find_agent")],
    )

    assert seen.calls == {}  # a tool result is answered, never followed by another call
    assert "Money Printer" in seen.text and "Ledger Bot" in seen.text
    assert "moneny printing agent" in seen.text


@pytest.mark.parametrize(
    "output",
    [
        {"agents": []},
        {"type": "no_results", "query": "unicorns", "suggestions": ["finance", "writing"]},
    ],
)
async def test_brain_says_when_find_agent_found_nothing(model, client, output):
    seen = await stream(client, tool_turn("find_agent", {"query": "unicorns"}, output))

    assert "couldn't find any agents" in seen.text
    assert "unicorns" in seen.text
    assert "no_results" not in seen.text


async def test_brain_says_a_long_operation_has_started(model, client):
    started = {"type": "operation_started", "operation_id": "op1", "tool_name": "create_agent"}

    seen = await stream(client, tool_turn("create_agent", {"description": "x"}, started))

    assert "started" in seen.text
    assert "when it finishes" in seen.text or "as soon as it finishes" in seen.text


@pytest.mark.parametrize(
    "output",
    [
        {"error": "The marketplace is unreachable"},
        {"error": {"message": "The marketplace is unreachable"}},
        "Error: The marketplace is unreachable",
    ],
)
async def test_brain_explains_a_failed_tool(model, client, output):
    seen = await stream(client, tool_turn("find_agent", {"query": "x"}, output))

    assert "did not work" in seen.text
    assert "The marketplace is unreachable" in seen.text


async def test_brain_summarises_other_json_results(model, client):
    seen = await stream(client, tool_turn("get_weather", {}, {"city": "Lisbon", "celsius": 21}))

    assert "get_weather" in seen.text
    assert "Lisbon" in seen.text and "21" in seen.text


def call(call_id: str, name: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def test_brain_answers_every_result_of_the_latest_tool_calls():
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "tool_calls": [
                call("c1", "find_agent"),
                call("c2", "get_weather"),
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"agents": [{"name": "Scout"}]}'},
        {"role": "tool", "tool_call_id": "c2", "content": json.dumps({"city": "Porto"})},
    ]

    text = answer({"messages": messages}).text

    assert "Scout" in text and "Porto" in text
