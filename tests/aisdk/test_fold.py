"""The UIMessage fold: what an AI SDK client assembles from our chunks (the Node suite,
tests/e2e/test_ai_sdk_clients.py, compares it with the real clients)."""

from __future__ import annotations

from chat_core.aisdk.fold import UIMessageFold


def fold(*chunks: dict) -> dict:
    message = UIMessageFold("placeholder")
    for chunk in chunks:
        if not message.add(chunk):
            break
    return message.ui()


def test_text_reasoning_and_steps_become_parts_with_their_states():
    ui = fold(
        {"type": "start", "messageId": "m1"},
        {"type": "start-step"},
        {"type": "reasoning-start", "id": "r"},
        {"type": "reasoning-delta", "id": "r", "delta": "hm"},
        {"type": "reasoning-end", "id": "r"},
        {"type": "text-start", "id": "t"},
        {"type": "text-delta", "id": "t", "delta": "Hel"},
        {"type": "text-delta", "id": "t", "delta": "lo"},
        {"type": "finish-step"},
        {"type": "data-usage", "data": {"totalTokens": 3}},
        {"type": "finish"},
    )
    assert ui == {
        "id": "m1",
        "role": "assistant",
        "parts": [
            {"type": "step-start"},
            {"type": "reasoning", "id": "r", "text": "hm", "state": "done"},
            {"type": "text", "text": "Hello", "state": "streaming"},  # no text-end came
            {"type": "data-usage", "data": {"totalTokens": 3}},
        ],
    }


def test_a_tool_part_moves_through_its_states_in_place():
    call = {"toolCallId": "c1"}
    ui = fold(
        {"type": "start-step"},
        {"type": "tool-input-start", **call, "toolName": "create_agent"},
        {"type": "tool-input-available", **call, "toolName": "create_agent", "input": {"a": 1}},
        {"type": "data-operation-started", "id": "c1", "data": {"taskId": "t2"}},
        {"type": "tool-output-available", **call, "output": {"ok": True}},
        {"type": "data-operation-started", "id": "c1", "data": {"taskId": "t3"}},
    )
    assert ui["parts"] == [
        {"type": "step-start"},
        {
            "type": "tool-create_agent",
            "toolCallId": "c1",
            "state": "output-available",
            "input": {"a": 1},
            "output": {"ok": True},
        },
        {
            "type": "data-operation-started",
            "id": "c1",
            "data": {"taskId": "t3"},
        },  # same id: replaced
    ]


def test_reading_stops_at_an_error_as_the_client_does():
    ui = fold(
        {"type": "start", "messageId": "m1"},
        {"type": "tool-input-start", "toolCallId": "c1", "toolName": "x"},
        {"type": "tool-output-error", "toolCallId": "c1", "errorText": "boom"},
        {"type": "error", "errorText": "The turn failed."},
        {"type": "start-step"},
    )
    assert ui["parts"] == [
        {"type": "tool-x", "toolCallId": "c1", "state": "output-error", "errorText": "boom"}
    ]
