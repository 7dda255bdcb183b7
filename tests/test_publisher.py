"""chat_core.publisher: the publisher coalesces text deltas but never reorders or loses a
chunk."""

import asyncio
import json

import pytest
from chat_core import keys, registry, tasks
from chat_core.protocol import chunks as c
from chat_core.publisher import ChunkPublisher
from chat_core.redis_client import get_redis

pytestmark = pytest.mark.both


async def stored(task_id: str) -> list[dict]:
    return [json.loads(f["data"]) for _, f in await get_redis().xrange(keys.task_stream(task_id))]


async def test_deltas_are_merged_and_everything_else_keeps_its_place(redis_target):
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    async with ChunkPublisher(task.task_id) as out:
        await out.send(c.TextStart(id="a"))
        for word in ["Hel", "lo", ", ", "wor", "ld"]:
            await out.send(c.TextDelta(id="a", delta=word))
        await out.send(c.TextEnd(id="a"))
        await out.send(c.TextStart(id="b"))
        await out.send(c.TextDelta(id="b", delta="Bye"))
    chunks = await stored(task.task_id)
    text = "".join(ch["delta"] for ch in chunks if ch["type"] == "text-delta" and ch["id"] == "a")
    assert text == "Hello, world"
    assert [ch["type"] for ch in chunks][:2] == ["start", "text-start"]
    assert len([ch for ch in chunks if ch["type"] == "text-delta"]) < 6  # merged
    end_a = next(i for i, ch in enumerate(chunks) if ch == {"type": "text-end", "id": "a"})
    assert all(ch.get("id") != "a" for ch in chunks[end_a + 1 :])
    assert chunks[-1] == {"type": "text-delta", "id": "b", "delta": "Bye"}


async def written(task_id: str, timeout: float = 2.0) -> list[dict]:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        chunks = await stored(task_id)
        if chunks and chunks[-1]["type"] == "text-delta":
            return chunks
        await asyncio.sleep(0.005)
    return await stored(task_id)


async def written_delta(task_id: str, delta: str, timeout: float) -> list[dict]:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        chunks = await stored(task_id)
        if chunks[-1].get("delta") == delta:
            return chunks
        await asyncio.sleep(0.02)
    return await stored(task_id)


async def test_a_delta_goes_out_at_once_without_waiting_for_more(redis_target):
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    out = ChunkPublisher(task.task_id)
    await out.send(c.TextStart(id="a"))
    await out.send(c.TextDelta(id="a", delta="first"))
    assert (await written(task.task_id))[-1]["delta"] == "first"  # nobody sent a second one
    await out.aclose()


async def test_deltas_arriving_during_a_write_join_the_next_one(redis_target):
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    out = ChunkPublisher(task.task_id)
    await out.send(c.TextStart(id="a"))
    for word in ["one ", "two ", "three ", "four"]:
        # The writer starts on `text-start`; the deltas arrive while it writes.
        await out.send(c.TextDelta(id="a", delta=word))
    await out.aclose()
    chunks = await stored(task.task_id)
    deltas = [ch for ch in chunks if ch["type"] == "text-delta"]
    assert [ch["type"] for ch in chunks][:2] == ["start", "text-start"]
    assert "".join(d["delta"] for d in deltas) == "one two three four"
    assert len(deltas) < 4


async def test_a_coalescing_window_spaces_delta_writes(redis_target):
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    # A window far longer than a loaded machine's scheduling delay: the test checks the
    # order of events (y held back, then written by the window alone), not how long it took.
    out = ChunkPublisher(task.task_id, coalesce_ms=1000)
    await out.send(c.TextDelta(id="a", delta="x"))
    await written(task.task_id)
    await out.send(c.TextDelta(id="a", delta="y"))
    assert (await stored(task.task_id))[-1]["delta"] == "x"  # y waits for the window
    assert (await written_delta(task.task_id, "y", timeout=10))[-1]["delta"] == "y"
    await out.aclose()


async def test_a_closing_chunk_returns_once_it_and_all_before_it_are_in_the_stream(
    redis_target,
):
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    out = ChunkPublisher(task.task_id)
    await out.send(c.StartStep())  # these three are not waited for
    await out.send(c.TextStart(id="a"))
    await out.send(c.TextDelta(id="a", delta="Hello"))
    await out.send(c.TextEnd(id="a"))  # what the turn does next may rely on all of it
    assert (await stored(task.task_id))[1:] == [
        {"type": "start-step"},
        {"type": "text-start", "id": "a"},
        {"type": "text-delta", "id": "a", "delta": "Hello"},
        {"type": "text-end", "id": "a"},
    ]
    await out.aclose()


async def test_a_finished_task_stops_its_publisher_at_its_next_write(redis_target):
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    out = ChunkPublisher(task.task_id)
    await out.send(c.StartStep())
    await out.flush()
    await tasks.finish(task, "cancelled")
    with pytest.raises(registry.TaskNotRunning):  # a chunk that closes a part is waited for
        await out.send(c.TextEnd(id="a"))
    with pytest.raises(registry.TaskNotRunning):
        await out.aclose()
    assert [e["type"] for e in await stored(task.task_id)] == ["start", "start-step", "finish"]


async def test_a_failed_write_behind_surfaces_on_the_next_send_and_on_close(redis_target):
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    # The window holds y behind the producer, who comes back (after the finish) slower
    # than a write would take: without it, y would be written before send returned.
    out = ChunkPublisher(task.task_id, coalesce_ms=300)
    await out.send(c.TextDelta(id="a", delta="x"))  # a part's first words: waited for
    await tasks.finish(task, "cancelled")
    await out.send(c.TextDelta(id="a", delta="y"))  # written behind: fails in the background
    await asyncio.sleep(0.6)
    with pytest.raises(registry.TaskNotRunning):
        await out.send(c.TextDelta(id="a", delta="z"))
    with pytest.raises(registry.TaskNotRunning):
        await out.aclose()


async def test_a_parts_first_words_are_in_the_stream_when_send_returns(redis_target):
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    out = ChunkPublisher(task.task_id)
    await out.send(c.StartStep())
    await out.send(c.ReasoningStart(id="r"))
    await out.send(c.ReasoningDelta(id="r", delta="Hmm"))
    assert [e["type"] for e in await stored(task.task_id)] == [
        "start",
        "start-step",
        "reasoning-start",
        "reasoning-delta",
    ]
    await out.send(c.TextStart(id="a"))
    await out.send(c.TextDelta(id="a", delta="Hi"))
    assert (await stored(task.task_id))[-1] == {"type": "text-delta", "id": "a", "delta": "Hi"}
    await out.aclose()


async def test_a_producer_faster_than_the_writes_leaves_its_deltas_behind(redis_target):
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    out = ChunkPublisher(task.task_id)
    await out.send(c.TextDelta(id="a", delta="one"))  # first words: waited for
    written = len(out.entry_ids)
    await out.send(c.TextDelta(id="a", delta=" two"))  # at once: not waited for
    await out.send(c.TextDelta(id="a", delta=" three"))
    assert len(out.entry_ids) == written
    await out.aclose()
    deltas = [ch["delta"] for ch in await stored(task.task_id) if ch["type"] == "text-delta"]
    assert deltas == ["one", " two three"]  # and merged


async def test_a_delta_slower_than_the_writes_is_in_the_stream_when_send_returns(redis_target):
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    out = ChunkPublisher(task.task_id)
    await out.send(c.TextDelta(id="a", delta="one"))
    await asyncio.sleep(0.2)  # a paced model: many writes' time
    written = len(out.entry_ids)
    await out.send(c.TextDelta(id="a", delta=" two"))
    assert len(out.entry_ids) == written + 1  # its write has returned; nothing ran between
    assert (await stored(task.task_id))[-1] == {"type": "text-delta", "id": "a", "delta": " two"}
    await out.aclose()


async def test_a_step_opening_goes_out_with_what_the_step_says_first(redis_target):
    task = await tasks.create_turn("s", None)  # its stream opens with `start`
    out = ChunkPublisher(task.task_id)
    await out.send(c.StartStep())
    await asyncio.sleep(0.05)  # time enough for a write, were one started
    assert [e["type"] for e in await stored(task.task_id)] == ["start"]
    await out.send(c.TextStart(id="a"))
    await out.send(c.TextDelta(id="a", delta="Hi"))
    entries = await written_delta(task.task_id, "Hi", timeout=10)
    assert [e["type"] for e in entries] == ["start", "start-step", "text-start", "text-delta"]
    await out.aclose()


async def test_a_step_opening_left_alone_is_written_at_close(redis_target):
    task = await tasks.create_turn("s", None)
    out = ChunkPublisher(task.task_id)
    await out.send(c.StartStep())
    await out.aclose()
    assert [e["type"] for e in await stored(task.task_id)] == ["start", "start-step"]
