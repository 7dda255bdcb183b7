"""The session-store contract: every implementation must pass every case here.

Each implementation's mirror module runs it, naming the store (see conftest.py):

    @pytest.mark.parametrize("store_kind", ["redis"], indirect=True)
    class TestSessionStoreContract(SessionStoreContract): ...

"redis" (test_redis_store.py, standalone and cluster), "dynamodb" (test_dynamodb_store.py,
moto) and "dynamodb+cache" (test_cache.py, moto behind the Redis read cache).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from chat_core.sessions import (
    ChatMessage,
    ChatSession,
    SessionNotFound,
    SessionStore,
    Usage,
)
from chat_core.sessions.models import OPERATION_PENDING


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def contents(session: ChatSession) -> list[str | None]:
    return [m.content for m in session.messages]


async def tick() -> None:
    """Let the clock move past the stores' timestamp resolution (ms in Redis scores)."""
    await asyncio.sleep(0.003)


class SessionStoreContract:
    """The cases; a `Test…` subclass in a mirror module runs them."""

    # --- create / get -----------------------------------------------------------------------------
    async def test_created_session_is_found_by_its_owner_only(self, store: SessionStore):
        created = await store.create(user_id="u1")
        found = await store.get(created.session_id, user_id="u1")
        assert found is not None
        assert (found.session_id, found.user_id, found.title) == (created.session_id, "u1", None)
        assert (found.messages, found.usage) == ([], [])
        assert (found.created_at, found.updated_at) == (created.created_at, created.updated_at)
        # Another user, and nobody, get exactly what a missing session gives.
        assert await store.get(created.session_id, user_id="u2") is None
        assert await store.get(created.session_id, user_id=None) is None
        assert await store.get("no-such-session", user_id="u1") is None

    async def test_an_anonymous_session_is_visible_to_whoever_has_its_id(self, store: SessionStore):
        created = await store.create(user_id=None, session_id="anon-1")
        assert created.session_id == "anon-1"
        for caller in (None, "u1", "u2"):
            found = await store.get("anon-1", user_id=caller)
            assert found is not None and found.user_id is None

    async def test_creating_an_existing_id_is_refused_and_keeps_the_session(
        self, store: SessionStore
    ):
        await store.create(user_id="u1", session_id="s1")
        await store.append_messages("s1", [user("keep me")])
        with pytest.raises(ValueError):
            await store.create(user_id="u2", session_id="s1")
        kept = await store.get("s1", user_id="u1")
        assert kept is not None and contents(kept) == ["keep me"]

    # --- messages ---------------------------------------------------------------------------------
    async def test_appended_messages_round_trip_in_order_with_their_sequences(
        self, store: SessionStore
    ):
        session = await store.create(user_id="u1")
        written_at = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
        first = await store.append_messages(
            session.session_id,
            [
                ChatMessage(role="system", content="Be brief."),
                ChatMessage(
                    role="user", content="Weather in Paris?", task_id="t1", created_at=written_at
                ),
            ],
        )
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
        }
        second = await store.append_messages(
            session.session_id,
            [
                ChatMessage(role="assistant", content=None, tool_calls=[call], task_id="t1"),
                ChatMessage(
                    role="tool", content="18°C, sunny", tool_call_id="call_1", name="weather"
                ),
            ],
        )
        assert [m.sequence for m in first + second] == [0, 1, 2, 3]
        assert [m.content for m in first + second] == [
            "Be brief.",
            "Weather in Paris?",
            None,
            "18°C, sunny",
        ]

        found = await store.get(session.session_id, user_id="u1")
        assert found is not None
        assert found.messages == first + second  # every field, task_id and created_at included
        assert found.messages[1].created_at == written_at
        assert found.to_openai_messages()[2] == {
            "role": "assistant",
            "content": None,
            "tool_calls": [call],
        }

    async def test_appending_nothing_changes_nothing(self, store: SessionStore):
        session = await store.create(user_id="u1")
        assert await store.append_messages(session.session_id, []) == []
        found = await store.get(session.session_id, user_id="u1")
        assert found is not None and found.messages == []

    async def test_appending_to_a_missing_session_raises(self, store: SessionStore):
        with pytest.raises(SessionNotFound):
            await store.append_messages("no-such-session", [user("hello?")])
        assert await store.get("no-such-session", user_id=None) is None

    async def test_two_writers_appending_at_once_lose_nothing(self, store: SessionStore):
        session = await store.create(user_id="u1")

        async def writer(name: str) -> list[ChatMessage]:
            saved: list[ChatMessage] = []
            for i in range(50):
                saved += await store.append_messages(session.session_id, [user(f"{name}-{i}")])
            return saved

        a, b = await asyncio.gather(writer("a"), writer("b"))

        found = await store.get(session.session_id, user_id="u1")
        assert found is not None
        assert [m.sequence for m in found.messages] == list(range(100))
        assert sorted(m.sequence for m in a + b) == list(range(100))  # what each writer was told
        by_sequence = {m.sequence: m.content for m in found.messages}
        assert all(by_sequence[m.sequence] == m.content for m in a + b)
        for name in ("a", "b"):  # each writer's messages keep its own order
            assert [c for c in contents(found) if c.startswith(name)] == [
                f"{name}-{i}" for i in range(50)
            ]

    async def test_a_session_larger_than_an_item_and_a_query_page_is_stored_whole(
        self, store: SessionStore
    ):
        # DynamoDB: items hold 400 KB and a Query page 1 MB; this session is over both.
        session = await store.create(user_id="u1")
        await store.append_messages(
            session.session_id, [ChatMessage(role="tool", content="pending", tool_call_id="c0")]
        )
        chunk = "x" * 100_000
        for i in range(12):
            await store.append_messages(
                session.session_id,
                [ChatMessage(role="assistant", content=f"{i}:{chunk}"), user(f"next {i}")],
            )
        # The pending result sits at the far end from where the search starts.
        assert await store.update_tool_message(session.session_id, "c0", "done") is True

        found = await store.get(session.session_id, user_id="u1")
        assert found is not None
        assert sum(len(c or "") for c in contents(found)) > 1_200_000
        assert [m.sequence for m in found.messages] == list(range(25))
        assert contents(found)[0] == "done"
        assert contents(found)[1::2] == [f"{i}:{chunk}" for i in range(12)]
        assert contents(found)[2::2] == [f"next {i}" for i in range(12)]

    async def test_one_append_of_over_400_kb(self, store: SessionStore):
        session = await store.create(user_id="u1")
        saved = await store.append_messages(
            session.session_id, [user(str(i) * 100_000) for i in range(5)]
        )
        assert [m.sequence for m in saved] == [0, 1, 2, 3, 4]
        found = await store.get(session.session_id, user_id="u1")
        assert found is not None and contents(found) == [str(i) * 100_000 for i in range(5)]

    async def test_one_append_of_many_messages(self, store: SessionStore):
        session = await store.create(user_id="u1")
        await store.append_messages(session.session_id, [user("first")])
        saved = await store.append_messages(session.session_id, [user(f"m{i}") for i in range(150)])
        assert [m.sequence for m in saved] == list(range(1, 151))
        found = await store.get(session.session_id, user_id="u1")
        assert found is not None
        assert contents(found) == ["first"] + [f"m{i}" for i in range(150)]

    # --- listing ----------------------------------------------------------------------------------
    async def test_list_is_newest_first_with_limit_offset_and_total(self, store: SessionStore):
        ids = []
        for i in range(5):
            ids.append((await store.create(user_id="u1", session_id=f"s{i}")).session_id)
            await tick()
        await store.create(user_id="u2", session_id="other-user")
        await store.create(user_id=None, session_id="anonymous")

        listed, total = await store.list_sessions("u1")
        assert total == 5
        assert [s.session_id for s in listed] == ["s4", "s3", "s2", "s1", "s0"]
        assert all(s.user_id == "u1" for s in listed)

        page, total = await store.list_sessions("u1", limit=2, offset=1)
        assert ([s.session_id for s in page], total) == (["s3", "s2"], 5)
        page, total = await store.list_sessions("u1", limit=2, offset=4)
        assert ([s.session_id for s in page], total) == (["s0"], 5)
        page, total = await store.list_sessions("u1", limit=2, offset=9)
        assert (page, total) == ([], 5)

        # A write moves a session to the top.
        await tick()
        await store.append_messages("s1", [user("back to this one")])
        await tick()
        await store.update_title("s3", "Renamed")
        listed, _ = await store.list_sessions("u1")
        assert [s.session_id for s in listed] == ["s3", "s1", "s4", "s2", "s0"]
        assert listed[0].title == "Renamed"
        assert listed[1].updated_at > listed[2].updated_at

    async def test_list_of_a_user_without_sessions_is_empty(self, store: SessionStore):
        await store.create(user_id="u1")
        assert await store.list_sessions("nobody") == ([], 0)

    async def test_summary_matches_the_session(self, store: SessionStore):
        created = await store.create(user_id="u1", session_id="s1")
        await store.update_title("s1", "Hello")
        [summary], _ = await store.list_sessions("u1")
        found = await store.get("s1", user_id="u1")
        assert found is not None
        assert summary == found.summary()
        assert summary.created_at == created.created_at

    # --- delete -----------------------------------------------------------------------------------
    async def test_delete_by_owner_removes_everything(self, store: SessionStore):
        await store.create(user_id="u1", session_id="s1")
        await store.append_messages("s1", [user("a"), user("b")])
        await store.add_usage("s1", Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3))
        await store.create(user_id="u1", session_id="s2")

        assert await store.delete("s1", user_id="u2") is False
        assert await store.get("s1", user_id="u1") is not None

        assert await store.delete("s1", user_id="u1") is True
        assert await store.get("s1", user_id="u1") is None
        assert await store.delete("s1", user_id="u1") is False
        listed, total = await store.list_sessions("u1")
        assert ([s.session_id for s in listed], total) == (["s2"], 1)

        # The id can be used again and starts empty.
        await store.create(user_id="u1", session_id="s1")
        fresh = await store.get("s1", user_id="u1")
        assert fresh is not None and (fresh.messages, fresh.usage) == ([], [])
        [message] = await store.append_messages("s1", [user("new")])
        assert message.sequence == 0

    async def test_delete_of_an_anonymous_session_by_anyone_with_the_id(self, store: SessionStore):
        await store.create(user_id=None, session_id="anon")
        assert await store.delete("anon", user_id="u1") is True
        assert await store.get("anon", user_id=None) is None
        assert await store.delete("missing", user_id=None) is False

    async def test_an_owned_session_cannot_be_deleted_anonymously(self, store: SessionStore):
        await store.create(user_id="u1", session_id="s1")
        assert await store.delete("s1", user_id=None) is False
        assert await store.get("s1", user_id="u1") is not None

    # --- assign_user ------------------------------------------------------------------------------
    async def test_assign_user_claims_an_anonymous_session(self, store: SessionStore):
        await store.create(user_id=None, session_id="anon")
        await store.append_messages("anon", [user("before login")])

        assert await store.assign_user("anon", "u1") is True
        claimed = await store.get("anon", user_id="u1")
        assert (
            claimed is not None
            and claimed.user_id == "u1"
            and contents(claimed) == ["before login"]
        )
        assert await store.get("anon", user_id="u2") is None
        assert await store.get("anon", user_id=None) is None
        listed, total = await store.list_sessions("u1")
        assert ([s.session_id for s in listed], total) == (["anon"], 1)

        assert await store.assign_user("anon", "u1") is True  # already theirs
        assert await store.assign_user("anon", "u2") is False  # someone else's
        assert await store.get("anon", user_id="u1") is not None
        assert await store.list_sessions("u2") == ([], 0)
        assert await store.assign_user("missing", "u1") is False

    # --- title, usage -----------------------------------------------------------------------------
    async def test_update_title(self, store: SessionStore):
        await store.create(user_id="u1", session_id="s1")
        assert await store.update_title("s1", "Planning a trip") is True
        found = await store.get("s1", user_id="u1")
        assert found is not None and found.title == "Planning a trip"
        assert await store.update_title("s1", "Trip to Paris") is True
        found = await store.get("s1", user_id="u1")
        assert found is not None and found.title == "Trip to Paris"
        assert await store.update_title("missing", "x") is False

    async def test_usage_records_round_trip_in_order(self, store: SessionStore):
        await store.create(user_id="u1", session_id="s1")
        records = [
            Usage(prompt_tokens=10 * i, completion_tokens=i, total_tokens=11 * i, model=f"m{i}")
            for i in range(1, 13)
        ]
        for record in records:
            await store.add_usage("s1", record)
        found = await store.get("s1", user_id="u1")
        assert found is not None and found.usage == records
        with pytest.raises(SessionNotFound):
            await store.add_usage("missing", records[0])

    # --- update_tool_message ----------------------------------------------------------------------
    async def test_update_tool_message_replaces_the_pending_result(self, store: SessionStore):
        await store.create(user_id="u1", session_id="s1")
        call = {
            "id": "call_9",
            "type": "function",
            "function": {"name": "create_agent", "arguments": "{}"},
        }
        await store.append_messages(
            "s1",
            [
                user("build me an agent"),
                ChatMessage(role="assistant", tool_calls=[call], task_id="t1"),
                ChatMessage(
                    role="tool", content='{"status":"pending"}', tool_call_id="call_9", task_id="t1"
                ),
                ChatMessage(role="tool", content="other", tool_call_id="call_8"),
                ChatMessage(role="assistant", content="Working on it."),
            ],
        )
        before = await store.get("s1", user_id="u1")
        assert before is not None

        result = '{"status":"done","agent":"a1","note":"über / ✓ \\n \\u0000"}'
        assert await store.update_tool_message("s1", "call_9", result) is True

        after = await store.get("s1", user_id="u1")
        assert after is not None
        assert after.messages[2].content == result
        assert after.messages[2].model_dump(exclude={"content"}) == before.messages[2].model_dump(
            exclude={"content"}
        )
        unchanged = [0, 1, 3, 4]
        assert [after.messages[i] for i in unchanged] == [before.messages[i] for i in unchanged]

    async def test_update_tool_message_without_such_a_tool_message(self, store: SessionStore):
        await store.create(user_id="u1", session_id="s1")
        call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        await store.append_messages("s1", [ChatMessage(role="assistant", tool_calls=[call])])
        # The assistant message mentions call_1 but does not answer it.
        assert await store.update_tool_message("s1", "call_1", "result") is False
        assert await store.update_tool_message("missing", "call_1", "result") is False
        found = await store.get("s1", user_id="u1")
        assert found is not None and found.messages[0].tool_calls == [call]

    async def test_concurrent_updates_of_one_tool_message_keep_one_whole_result(
        self, store: SessionStore
    ):
        await store.create(user_id="u1", session_id="s1")
        await store.append_messages(
            "s1", [ChatMessage(role="tool", content="pending", tool_call_id="c1", tool_calls=[])]
        )
        results = await asyncio.gather(
            *(store.update_tool_message("s1", "c1", f"result-{i}") for i in range(8))
        )
        assert results == [True] * 8
        found = await store.get("s1", user_id="u1")
        assert found is not None
        [message] = found.messages
        assert message.content in {f"result-{i}" for i in range(8)}
        assert (message.tool_call_id, message.tool_calls, message.sequence) == ("c1", [], 0)

    async def test_a_result_replaces_only_a_pending_tool_message_when_asked(
        self, store: SessionStore
    ):
        await store.create(user_id="u1", session_id="s1")
        pending = json.dumps({"type": OPERATION_PENDING, "operation_id": "op1"})
        await store.append_messages(
            "s1",
            [
                ChatMessage(role="tool", content=pending, tool_call_id="c1"),
                ChatMessage(role="tool", content=pending, tool_call_id="c2"),
            ],
        )
        # A cancel's error came first (replacing whatever it finds): the result keeps off.
        assert await store.update_tool_message("s1", "c1", '{"error":"cancelled"}') is True
        assert await store.update_tool_message("s1", "c1", "result", if_pending=True) is False
        # Results racing for one pending message: exactly one of them is written.
        won = await asyncio.gather(
            *(store.update_tool_message("s1", "c2", f"r{i}", if_pending=True) for i in range(6))
        )
        assert won.count(True) == 1
        found = await store.get("s1", user_id="u1")
        assert found is not None
        assert found.messages[0].content == '{"error":"cancelled"}'
        assert found.messages[1].content == f"r{won.index(True)}"

    # --- timestamps -------------------------------------------------------------------------------
    async def test_writes_move_updated_at_forward(self, store: SessionStore):
        created = await store.create(user_id="u1", session_id="s1")
        await tick()
        await store.append_messages("s1", [user("x")])
        found = await store.get("s1", user_id="u1")
        assert found is not None
        assert found.created_at == created.created_at
        assert timedelta(0) < found.updated_at - created.created_at < timedelta(minutes=1)

    # --- truncate (edits and regenerations rewind the conversation) -------------------------------
    async def test_truncate_drops_the_tail_and_appends_continue_from_there(
        self, store: SessionStore
    ):
        session = await store.create(user_id="u1")
        ui = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "one"}]}
        first = ChatMessage(role="user", content="one", message_id="m1", ui=ui)
        await store.append_messages(session.session_id, [first, user("two"), user("three")])

        assert await store.truncate_messages(session.session_id, 1)
        [again] = await store.append_messages(session.session_id, [user("two, edited")])

        stored = await store.get(session.session_id, user_id="u1")
        assert stored is not None
        assert contents(stored) == ["one", "two, edited"]
        assert [m.sequence for m in stored.messages] == [0, 1] and again.sequence == 1
        assert (stored.messages[0].message_id, stored.messages[0].ui) == ("m1", ui)

    async def test_truncate_to_nothing_and_of_a_missing_session(self, store: SessionStore):
        session = await store.create(user_id=None)
        await store.append_messages(session.session_id, [user("one")])
        assert await store.truncate_messages(session.session_id, 0)
        stored = await store.get(session.session_id, user_id=None)
        assert stored is not None and stored.messages == []
        assert not await store.truncate_messages("no-such-session", 0)
