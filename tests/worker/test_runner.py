"""chat_core.worker.runner: the worker runs a job into its task stream, once, to the end, or
until cancelled."""

from __future__ import annotations

import asyncio

import pytest
from chat_core import background, registry, tasks
from chat_core.chat.service import INTERRUPTED_MARK
from chat_core.sessions import get_session_store
from chat_core.sessions.models import ChatMessage
from chat_core.users import BusinessUnderstanding, get_user_store
from chat_core.worker.dispatch import set_dispatcher
from chat_core.worker.jobs import RunTurn, SessionRef
from chat_core.worker.runner import run_job
from chat_dev.scripted_model import ToolCall

from tests.chunk_rules import assert_valid_turn, stored_chunks, text_of

pytestmark = pytest.mark.both


async def new_turn(message: str = "Hello there") -> tuple:
    store = get_session_store()
    session = await store.create("u1")
    task = await tasks.start_turn(session.session_id, message, "u1")
    return session, task


async def test_a_turn_is_written_to_its_task_stream_with_one_finish(dispatched):
    session, task = await new_turn()
    [job] = dispatched.jobs
    assert isinstance(job, RunTurn) and job.task_id == task.task_id and job.message_id
    assert await run_job(dispatched.jobs[0]) == "completed"
    chunks = await stored_chunks(task.task_id)
    assert_valid_turn(chunks)
    assert text_of(chunks).strip()
    assert (await registry.get_task(task.task_id)).status == "completed"
    assert (await tasks.active_task(session.session_id, "u1"))[0] is None
    stored = await get_session_store().get(session.session_id, "u1")
    said = [m for m in stored.messages if not m.is_view]
    assert [m.role for m in said] == ["user", "assistant"]
    assert all(m.task_id == task.task_id for m in stored.messages)


async def test_a_job_delivered_twice_runs_the_turn_once(dispatched):
    _, task = await new_turn()
    first, second = await asyncio.gather(run_job(dispatched.jobs[0]), run_job(dispatched.jobs[0]))
    assert sorted([first, second]) == ["completed", "taken"]
    chunks = await stored_chunks(task.task_id)
    assert [c["type"] for c in chunks].count("start") == 1
    assert [c["type"] for c in chunks].count("finish") == 1
    assert await run_job(dispatched.jobs[0]) == "not-running"


async def test_a_failed_turn_ends_failed_with_its_error_before_the_one_finish(dispatched, model):
    model.reply_error(401, stream=True)
    _, task = await new_turn()
    assert await run_job(dispatched.jobs[0]) == "failed"
    chunks = await stored_chunks(task.task_id)
    assert [c["type"] for c in chunks][-2:] == ["error", "finish"]
    assert [c["type"] for c in chunks].count("error") == 1
    assert "credentials" in chunks[-2]["errorText"]
    assert (await registry.get_task(task.task_id)).status == "failed"


async def test_cancel_ends_the_turn_cancelled_with_its_partial_answer_and_nothing_after(
    dispatched, model, settings_env
):
    settings_env(cancel_grace_seconds=60)  # so the worker itself stops, not the grace's end
    model.slow_stream(200, text=" ".join(f"word{i}" for i in range(60)))
    session, task = await new_turn()
    worker = asyncio.create_task(run_job(dispatched.jobs[0]))
    while "text-delta" not in [c["type"] for c in await stored_chunks(task.task_id)]:
        await asyncio.sleep(0.05)
    assert await tasks.cancel(task) == "cancelled"
    at_cancel = await stored_chunks(task.task_id)
    assert await worker == "cancelled"  # the worker itself stopped ("lost" had cancel ended it)
    chunks = await stored_chunks(task.task_id)
    assert chunks == at_cancel  # nothing written after the cancel answered
    assert chunks[-1] == {"type": "finish"} and [c["type"] for c in chunks].count("finish") == 1
    assert "word59" not in text_of(chunks)
    assert (await registry.get_task(task.task_id)).status == "cancelled"
    stored = await get_session_store().get(session.session_id, "u1")
    said = [m for m in stored.messages if not m.is_view]
    assert said[-1].content.endswith(INTERRUPTED_MARK)
    assert said[-1].content.startswith(text_of(chunks).strip()[:10])


async def test_cancelling_a_queued_turn_ends_it_at_once(dispatched):
    _, task = await new_turn()
    assert await tasks.cancel(task) == "cancelled"
    assert await tasks.cancel(task) == "cancelled"  # idempotent
    assert await run_job(dispatched.jobs[0]) == "not-running"
    assert [c["type"] for c in await stored_chunks(task.task_id)] == ["start", "finish"]


async def test_a_worker_whose_task_was_ended_elsewhere_stops_writing(dispatched, model):
    model.slow_stream(100, text=" ".join(f"w{i}" for i in range(50)))
    _, task = await new_turn()
    worker = asyncio.create_task(run_job(dispatched.jobs[0]))
    while "text-delta" not in [c["type"] for c in await stored_chunks(task.task_id)]:
        await asyncio.sleep(0.05)
    await tasks.finish(task, "failed", "The sweeper gave up on it.")
    assert await asyncio.wait_for(worker, 5) == "lost"
    chunks = await stored_chunks(task.task_id)
    assert [c["type"] for c in chunks][-2:] == ["error", "finish"]  # nothing after the finish


async def test_tools_run_inside_the_worker_turn(dispatched, model):
    model.reply_tool_calls(ToolCall("find_agent", {"query": "invoices"}), stream=True)
    _, task = await new_turn("find an invoice agent")
    assert await run_job(dispatched.jobs[0]) == "completed"
    chunks = await stored_chunks(task.task_id)
    assert_valid_turn(chunks)
    output = next(c for c in chunks if c["type"] == "tool-output-available")
    assert output["output"]["count"] > 0


async def test_a_turn_reports_its_time_to_first_chunk_and_chunk_count(dispatched):
    from chat_core.observability import metrics

    metrics.clear_metrics()
    _, task = await new_turn()
    await run_job(dispatched.jobs[0])
    recorded = metrics.metric_set
    assert (
        recorded["TimeToFirstChunk"]["Unit"] == "Milliseconds"
        and recorded["TimeToFirstChunk"]["Value"][0] > 0
    )
    chunk_count = recorded["ChunksPerTask"]["Value"][0]
    entries = len(await stored_chunks(task.task_id))
    # Every chunk produced (merged deltas count one by one); `start` and `finish` frame them.
    assert chunk_count >= entries - 2
    metrics.clear_metrics()


async def test_a_turn_finishing_never_waits_for_or_cancels_another_job(model, settings_env):
    """Two turns in one process (the dev server, any long-lived worker): the short one ends
    while the long one is still writing, and the long one runs to its last word."""
    order: list[str] = []

    class Spawning:
        async def dispatch(self, job) -> None:
            async def run() -> None:
                order.append(f"{await run_job(job)}:{job.task_id}")

            background.spawn(run(), name=f"job:{job.task_id}")

    set_dispatcher(Spawning())
    long_words = " ".join(f"w{i}" for i in range(40))
    model.slow_stream(60, text=long_words)
    _, long_turn = await new_turn("count slowly")
    await asyncio.sleep(0.3)
    model.reply_text("Short and done.", stream=True)
    _, short_turn = await new_turn("say something short")
    for _ in range(400):
        if len(order) == 2:
            break
        await asyncio.sleep(0.05)
    assert order == [f"completed:{short_turn.task_id}", f"completed:{long_turn.task_id}"]
    assert text_of(await stored_chunks(long_turn.task_id)) == long_words


async def test_a_turn_runs_from_the_session_read_beside_its_claim(dispatched, model):
    session, task = await new_turn("Say hello")
    [job] = dispatched.jobs
    assert job.session == SessionRef(session_id=session.session_id, user_id="u1")
    model.reply_text("Hello!", stream=True)
    assert await run_job(job) == "completed"
    assert text_of(await stored_chunks(task.task_id)) == "Hello!"
    assert model.chat_requests[-1].messages[-1] == {"role": "user", "content": "Say hello"}


async def test_a_session_read_ahead_is_used_only_when_it_is_the_claimed_tasks(dispatched, model):
    session, task = await new_turn("Which session am I in?")
    other = await get_session_store().create(None)  # anonymous: anyone may read it
    await get_session_store().append_messages(
        other.session_id, [ChatMessage(role="user", content="A question of someone else's")]
    )
    [job] = dispatched.jobs
    # A job naming another session (or owner) cannot make the turn answer from it.
    misled = job.model_copy(
        update={"session": SessionRef(session_id=other.session_id, user_id=None)}
    )
    model.reply_text("In yours.", stream=True)
    assert await run_job(misled) == "completed"
    sent = model.chat_requests[-1].messages
    assert sent[-1] == {"role": "user", "content": "Which session am I in?"}
    assert all("someone else" not in str(m.get("content")) for m in sent)
    stored = await get_session_store().get(session.session_id, "u1")
    assert [m.content for m in stored.messages if not m.is_view][-1] == "In yours."


async def test_what_the_assistant_knows_of_the_user_is_read_beside_the_claim(
    dispatched, model, monkeypatch
):
    store = get_user_store()
    await store.put_understanding("u1", BusinessUnderstanding(business_name="Acme Bakery"))
    await store.put_understanding("u2", BusinessUnderstanding(business_name="Secret Labs"))
    session, task = await new_turn("What do you know about me?")
    [job] = dispatched.jobs
    order: list[str] = []
    real_claim, real_read = tasks.claim, type(store).get_understanding

    async def claim(*args, **kwargs):
        claimed = await real_claim(*args, **kwargs)
        order.append("claimed")
        return claimed

    async def read(self, user_id):
        order.append(f"understanding of {user_id} asked")
        return await real_read(self, user_id)

    monkeypatch.setattr(tasks, "claim", claim)
    monkeypatch.setattr(type(store), "get_understanding", read)
    model.reply_text("You run Acme Bakery.", stream=True)
    assert await run_job(job) == "completed"
    assert order == ["understanding of u1 asked", "claimed"]  # one round trip, not two
    assert "Acme Bakery" in model.chat_requests[-1].messages[0]["content"]

    # A job naming another user cannot put that user's facts in this turn's prompt.
    order.clear()
    await tasks.start_turn(session.session_id, "And now?", "u1")
    misled = dispatched.jobs[-1].model_copy(
        update={"session": SessionRef(session_id=session.session_id, user_id="u2")}
    )
    model.reply_text("Still Acme.", stream=True)
    assert await run_job(misled) == "completed"
    prompt = model.chat_requests[-1].messages[0]["content"]
    assert "Acme Bakery" in prompt and "Secret Labs" not in prompt
