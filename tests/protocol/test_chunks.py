"""chat_core.protocol.chunks: chunks serialize exactly as the AI SDK's strict schema wants,
and parse back."""

from __future__ import annotations

import json

import pytest
from chat_core.protocol import chunks as c
from chat_core.protocol.chunks import ChunkParseError, parse_chunk

EXPECTED = [
    (c.Start(message_id="m1"), {"type": "start", "messageId": "m1"}),
    (c.Start(), {"type": "start"}),
    (c.StartStep(), {"type": "start-step"}),
    (c.TextStart(id="t1"), {"type": "text-start", "id": "t1"}),
    (c.TextDelta(id="t1", delta="Hel"), {"type": "text-delta", "id": "t1", "delta": "Hel"}),
    (c.TextEnd(id="t1"), {"type": "text-end", "id": "t1"}),
    (
        c.ToolInputStart(tool_call_id="call_1", tool_name="find_agent"),
        {"type": "tool-input-start", "toolCallId": "call_1", "toolName": "find_agent"},
    ),
    (
        c.ToolInputAvailable(tool_call_id="call_1", tool_name="find_agent", input={"q": "x"}),
        {
            "type": "tool-input-available",
            "toolCallId": "call_1",
            "toolName": "find_agent",
            "input": {"q": "x"},
        },
    ),
    (
        c.ToolOutputAvailable(tool_call_id="call_1", output={"agents": []}),
        {"type": "tool-output-available", "toolCallId": "call_1", "output": {"agents": []}},
    ),
    (
        c.ToolOutputError(tool_call_id="call_1", error_text="boom"),
        {"type": "tool-output-error", "toolCallId": "call_1", "errorText": "boom"},
    ),
    (c.ReasoningStart(id="r1"), {"type": "reasoning-start", "id": "r1"}),
    (c.ReasoningDelta(id="r1", delta="hm"), {"type": "reasoning-delta", "id": "r1", "delta": "hm"}),
    (c.ReasoningEnd(id="r1"), {"type": "reasoning-end", "id": "r1"}),
    (c.FinishStep(), {"type": "finish-step"}),
    (c.Finish(), {"type": "finish"}),
    (c.Error(error_text="Something broke"), {"type": "error", "errorText": "Something broke"}),
    (
        c.Data(type="data-usage", data={"totalTokens": 3}),
        {"type": "data-usage", "data": {"totalTokens": 3}},
    ),
    (
        c.Data(type="data-task", data={"taskId": "t"}, id="x"),
        {"type": "data-task", "data": {"taskId": "t"}, "id": "x"},
    ),
]


@pytest.mark.parametrize(("chunk", "wire"), EXPECTED, ids=lambda v: getattr(v, "type", ""))
def test_every_chunk_serializes_to_exactly_the_strict_schema_fields(chunk, wire):
    assert json.loads(chunk.to_json()) == wire
    assert "null" not in chunk.to_json()


@pytest.mark.parametrize(("chunk", "wire"), EXPECTED, ids=lambda v: getattr(v, "type", ""))
def test_parse_rebuilds_the_same_chunk(chunk, wire):
    assert parse_chunk(json.dumps(wire)) == chunk
    assert parse_chunk(chunk.to_json()).to_json() == chunk.to_json()


def test_the_type_key_comes_first_on_the_wire():
    assert c.TextDelta(id="a", delta="b").to_json().startswith('{"type":"text-delta"')


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"type":"source-url","sourceId":"s","url":"u"}', "unknown chunk type 'source-url'"),
        ('{"type":"text-delta","id":"t"}', "invalid 'text-delta' chunk"),
        ('{"type":"start","messageId":"m","taskId":"t"}', "invalid 'start' chunk"),
        ('{"type":"data-"}', "invalid 'data-' chunk"),
        ("[1,2]", "a chunk is a JSON object"),
        ("{not json", "not JSON"),
    ],
)
def test_bad_stored_json_is_rejected_with_a_clear_error(raw, message):
    with pytest.raises(ChunkParseError, match=message.replace("(", r"\(")):
        parse_chunk(raw)


def test_extra_fields_are_refused_when_building_a_chunk():
    with pytest.raises(ValueError):
        c.Finish(finishReason="stop")  # type: ignore[call-arg]
