"""chat_core.aisdk.chain: one assistant message per turn, read across the turn's task and the
operation task it started, as an AI SDK client sees it (live, or folded now)."""

from __future__ import annotations

import json

import pytest
from chat_core import tasks
from chat_core.aisdk.chain import (
    OPERATION_STARTED,
    MessageChain,
    fold_message,
    message_events,
    running_tasks_of,
)
from chat_core.protocol import chunks as c
from chat_core.registry import publish_chunks
from chat_core.sessions import get_session_store

from tests.chunk_rules import text_step

pytestmark = pytest.mark.both

INPUT = {"description": "Chase unpaid invoices"}


def admitted(chain: MessageChain, streams: dict[str, list[dict]]) -> list[dict]:
    """What a reader of the chain passes on, reading each task's stream in the chain's order."""
    out = []
    while (task_id := chain.next_task()) is not None:
        out += [chunk for chunk in streams[task_id] if chain.admit(chunk)]
    return out


def test_the_operations_opening_and_the_turns_finish_are_left_out():
    opening = [
        {"type": "start", "messageId": "op-msg"},
        {"type": "start-step"},
        {"type": "tool-input-start", "toolCallId": "c1", "toolName": "create_agent"},
        {
            "type": "tool-input-available",
            "toolCallId": "c1",
            "toolName": "create_agent",
            "input": INPUT,
        },
    ]
    streams = {
        "turn": [
            {"type": "start", "messageId": "m1"},
            *opening[1:],
            {"type": OPERATION_STARTED, "data": {"taskId": "op"}},
            {"type": "finish-step"},
            {"type": "finish"},
        ],
        "op": [
            *opening,
            {"type": "tool-output-available", "toolCallId": "c1", "output": {"ok": True}},
            {"type": "text-delta", "id": "t", "delta": "Done."},
            {"type": "finish"},
        ],
    }
    chain = MessageChain("turn")
    read = admitted(chain, streams)
    kinds = [chunk["type"] for chunk in read]
    assert kinds.count("start") == 1 and read[0] == {"type": "start", "messageId": "m1"}
    assert kinds.count("tool-input-available") == 1  # the tool call shows once
    assert kinds.count("finish") == 1 and kinds[-1] == "finish"
    assert chain.visited == ["turn", "op"] and chain.ended


def test_a_turn_without_operations_is_read_as_it_is():
    turn = [{"type": "start"}, {"type": "text-delta", "id": "t", "delta": "Hi"}, {"type": "finish"}]
    chain = MessageChain("turn")
    assert admitted(chain, {"turn": turn}) == turn and chain.ended


@pytest.fixture
async def turn_with_operation(redis_target):
    """A finished turn that started an operation, which is still running: (turn, operation)."""
    session = await get_session_store().create(None)
    turn = await tasks.create_turn(session.session_id, None, message_id="m1")
    operation = await tasks.create_operation(
        session_id=session.session_id,
        user_id=None,
        tool_call_id="c1",
        tool_name="create_agent",
        tool_input=INPUT,
    )
    await publish_chunks(
        turn.task_id,
        [
            c.StartStep(),
            c.ToolInputStart(tool_call_id="c1", tool_name="create_agent"),
            c.ToolInputAvailable(tool_call_id="c1", tool_name="create_agent", input=INPUT),
            c.Data(type=OPERATION_STARTED, data={"taskId": operation.task_id}),
            c.FinishStep(),
        ],
    )
    await tasks.finish(turn, "completed")
    return turn, operation


async def finish_operation(operation) -> None:
    """The operation's result comes, the model continues, the operation ends."""
    assert await tasks.apply_result(operation, True, {"agent": "Invoice Chaser"}, None) == "applied"
    await publish_chunks(
        operation.task_id,
        text_step("Your agent is ready."),
    )
    await tasks.finish(operation, "completed")


async def test_while_the_operation_runs_the_message_is_live_with_its_tool_pending(
    turn_with_operation,
):
    turn, operation = turn_with_operation
    folded = await fold_message(turn.task_id, "m1")
    assert (folded.found, folded.live, folded.complete) == (True, True, False)
    [tool] = [p for p in folded.ui["parts"] if p["type"] == "tool-create_agent"]
    assert tool["state"] == "input-available" and tool["input"] == INPUT
    assert await running_tasks_of(turn.task_id) == [operation.task_id]


async def test_once_the_operation_ends_the_message_is_whole_with_one_tool_part(
    turn_with_operation,
):
    turn, operation = turn_with_operation
    await finish_operation(operation)
    folded = await fold_message(turn.task_id, "m1")
    assert (folded.found, folded.live, folded.complete) == (True, False, True)
    parts = folded.ui["parts"]
    [tool] = [p for p in parts if p["type"] == "tool-create_agent"]
    assert tool["state"] == "output-available" and tool["output"] == {"agent": "Invoice Chaser"}
    assert [p["text"] for p in parts if p["type"] == "text"] == ["Your agent is ready."]
    assert folded.ui["id"] == "m1"
    assert await running_tasks_of(turn.task_id) == []


async def test_the_live_reader_follows_into_the_operation_as_one_message(turn_with_operation):
    turn, operation = turn_with_operation
    await finish_operation(operation)
    events = [event async for event in message_events(turn.task_id)]
    assert events[-1].data == "[DONE]"
    read = [json.loads(e.data) for e in events[:-1] if e.data]
    kinds = [chunk["type"] for chunk in read]
    assert kinds[0] == "start" and kinds[-1] == "finish"
    assert kinds.count("start") == kinds.count("finish") == 1
    assert kinds.count("tool-input-available") == 1
    assert all(e.id for e in events[:-1] if e.data)  # each carries its entry id


async def test_a_turn_whose_stream_is_gone_is_not_found(redis_target):
    folded = await fold_message("no-such-task", "m1")
    assert (folded.found, folded.live, folded.complete) == (False, False, False)
    assert folded.ui == {"id": "m1", "role": "assistant", "parts": []}
