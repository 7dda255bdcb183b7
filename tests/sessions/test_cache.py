"""chat_core.sessions.cache: the Redis read cache in front of DynamoDB passes the
session-store contract, and readers see every write, around races and failures too."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from chat_core.sessions import ChatMessage, ChatSession, SessionStore, Usage
from chat_core.sessions.cache import CachedSessionStore
from chat_core.sessions.dynamodb_store import DynamoDBSessionStore

from tests.sessions.contract import SessionStoreContract

pytestmark = pytest.mark.both


@pytest.mark.parametrize("store_kind", ["dynamodb+cache"], indirect=True)
class TestSessionStoreContract(SessionStoreContract):
    pass


@pytest.fixture
def inner(redis_target, dynamodb_table) -> DynamoDBSessionStore:
    return DynamoDBSessionStore()


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def contents(session: ChatSession | None) -> list[str | None]:
    assert session is not None
    return [m.content for m in session.messages]


class PausedReads:
    """A store whose reads hand their result back only when released."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.has_read = asyncio.Event()
        self.release = asyncio.Event()

    async def get(self, session_id: str, user_id: str | None) -> ChatSession | None:
        session = await self.inner.get(session_id, user_id)
        self.has_read.set()
        await self.release.wait()
        return session

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


async def test_reads_are_served_from_the_cache_until_a_write_invalidates_it(inner):
    cached = CachedSessionStore(inner)
    await cached.create(user_id="u1", session_id="s1")
    await cached.append_messages("s1", [user("one")])
    await cached.add_usage("s1", Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3))
    fresh = await cached.get("s1", user_id="u1")
    assert contents(fresh) == ["one"]
    assert await cached.get("s1", user_id="u1") == fresh  # the cached copy is the same session

    await inner.append_messages("s1", [user("behind the cache's back")])
    assert contents(await cached.get("s1", user_id="u1")) == ["one"]

    await cached.append_messages("s1", [user("three")])
    assert contents(await cached.get("s1", user_id="u1")) == [
        "one",
        "behind the cache's back",
        "three",
    ]


async def test_a_cached_copy_expires_after_the_cache_ttl(inner, settings_env):
    settings_env(session_cache_ttl_seconds=1)
    cached = CachedSessionStore(inner)
    await cached.create(user_id="u1", session_id="s1")
    assert contents(await cached.get("s1", user_id="u1")) == []
    await inner.append_messages("s1", [user("later")])
    await asyncio.sleep(1.2)
    assert contents(await cached.get("s1", user_id="u1")) == ["later"]


async def test_owner_checks_apply_to_cached_copies(inner):
    cached = CachedSessionStore(inner)
    await cached.create(user_id="u1", session_id="s1")
    assert await cached.get("s1", user_id="u1") is not None  # now cached
    assert await cached.get("s1", user_id="u2") is None
    assert await cached.get("s1", user_id=None) is None


Write = Callable[[SessionStore], Awaitable[object]]
WRITES: dict[str, tuple[Write, Callable[[ChatSession | None], bool]]] = {
    "append_messages": (
        lambda s: s.append_messages("s1", [user("new")]),
        lambda seen: contents(seen)[-1] == "new",
    ),
    "update_title": (
        lambda s: s.update_title("s1", "Retitled"),
        lambda seen: seen is not None and seen.title == "Retitled",
    ),
    "add_usage": (
        lambda s: s.add_usage("s1", Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2)),
        lambda seen: seen is not None and len(seen.usage) == 1,
    ),
    "update_tool_message": (
        lambda s: s.update_tool_message("s1", "c1", "done"),
        lambda seen: contents(seen)[-1] == "done",
    ),
    "delete": (
        lambda s: s.delete("s1", user_id="u1"),
        lambda seen: seen is None,
    ),
}


@pytest.mark.parametrize("write", list(WRITES))
async def test_a_write_through_one_instance_is_seen_through_another(inner, write):
    reader = CachedSessionStore(DynamoDBSessionStore())
    writer = CachedSessionStore(DynamoDBSessionStore())
    await writer.create(user_id="u1", session_id="s1")
    await writer.append_messages(
        "s1", [ChatMessage(role="tool", content="pending", tool_call_id="c1")]
    )
    before = await reader.get("s1", user_id="u1")  # fills the shared cache
    assert before is not None

    do, is_seen = WRITES[write]
    await do(writer)
    assert is_seen(await reader.get("s1", user_id="u1"))


async def test_assign_user_through_one_instance_is_seen_through_another(inner):
    reader = CachedSessionStore(DynamoDBSessionStore())
    writer = CachedSessionStore(DynamoDBSessionStore())
    await writer.create(user_id=None, session_id="anon")
    assert await reader.get("anon", user_id="u2") is not None  # cached while anonymous
    assert await writer.assign_user("anon", "u1") is True
    assert await reader.get("anon", user_id="u2") is None
    claimed = await reader.get("anon", user_id="u1")
    assert claimed is not None and claimed.user_id == "u1"


async def test_a_read_racing_a_write_does_not_cache_what_it_read_before_the_write(inner):
    paused = PausedReads(inner)
    reader = CachedSessionStore(paused)
    writer = CachedSessionStore(inner)
    await writer.create(user_id="u1", session_id="s1")
    await writer.append_messages("s1", [user("old")])

    slow_read = asyncio.create_task(reader.get("s1", user_id="u1"))
    await paused.has_read.wait()  # the reader holds the copy from before the write
    await writer.append_messages("s1", [user("new")])
    paused.release.set()
    assert contents(await slow_read) == ["old"]  # it did read before the write

    # ... but must not have put that copy in the cache after the write invalidated it.
    assert contents(await reader.get("s1", user_id="u1")) == ["old", "new"]
    assert contents(await writer.get("s1", user_id="u1")) == ["old", "new"]


class HalfDone(Exception):
    pass


class SavesOnlyTheFirstMessage:
    """A store whose append fails half-way, after writing the first message."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner

    async def append_messages(
        self, session_id: str, messages: list[ChatMessage]
    ) -> list[ChatMessage]:
        await self.inner.append_messages(session_id, messages[:1])
        raise HalfDone

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


async def test_a_failed_write_still_invalidates(inner):
    cached = CachedSessionStore(inner)
    await cached.create(user_id="u1", session_id="s1")
    assert contents(await cached.get("s1", user_id="u1")) == []  # cached while empty

    failing = CachedSessionStore(SavesOnlyTheFirstMessage(inner))
    with pytest.raises(HalfDone):
        await failing.append_messages("s1", [user("saved"), user("lost")])
    assert contents(await cached.get("s1", user_id="u1")) == ["saved"]
