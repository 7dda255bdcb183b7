"""Sessions in Redis: a meta hash, a message list and a usage list per session.

    store = RedisSessionStore()
    session = await store.create(user_id="u1")
    hello = ChatMessage(role="user", content="Hi")
    [saved] = await store.append_messages(session.session_id, [hello])
    saved.sequence                      # 0: a message's sequence is its index in the list

Under the session's hash tag: meta HASH (user_id, "" = anonymous; title; created_at and
updated_at as ISO strings), messages LIST of message JSON, usage LIST of usage JSON. Every
write is one Lua script on that slot (see `lua.py`) that also stamps updated_at and, when
`session_ttl_seconds` > 0, moves the expiry of every key of the session.

The per-user sorted set (`keys.user_sessions`, scored by updated_at in ms) lives in the
user's slot, so it is written by a separate command after the script. It is an index, not
the truth: a listing drops entries whose session is gone, expired or owned by someone else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .. import keys, lua
from ..redis_client import get_redis
from ..settings import get_settings
from .models import OPERATION_PENDING, ChatMessage, ChatSession, SessionSummary, Usage, utcnow
from .store import SessionNotFound


class RedisSessionStore:
    """The `SessionStore` on Redis (standalone or cluster); holds no state of its own."""

    async def create(self, user_id: str | None, session_id: str | None = None) -> ChatSession:
        session = ChatSession.new(user_id=user_id, session_id=session_id)
        session.updated_at = session.created_at
        created = await _run(
            lua.SESSION_CREATE,
            session.session_id,
            ttl_ms=_ttl_ms(),
            user_id=user_id or "",
            created_at=_iso(session.created_at),
        )
        if not created:
            raise ValueError(f"session {session.session_id} already exists")
        await _index(user_id, session.session_id, session.updated_at)
        return session

    async def get(self, session_id: str, user_id: str | None) -> ChatSession | None:
        session = _session(session_id, await _run(lua.SESSION_READ, session_id))
        return session if session is not None and session.visible_to(user_id) else None

    async def append_messages(
        self, session_id: str, messages: list[ChatMessage]
    ) -> list[ChatMessage]:
        if not messages:
            return []
        now = utcnow()
        written = await _run(
            lua.SESSION_WRITE,
            session_id,
            rest=[_dump(m) for m in messages],
            now=_iso(now),
            ttl_ms=_ttl_ms(),
            what="messages",
        )
        if written is None:
            raise SessionNotFound(session_id)
        owner, length = written
        await _index(owner, session_id, now)
        first = int(length) - len(messages)
        return [m.model_copy(update={"sequence": first + i}) for i, m in enumerate(messages)]

    async def list_sessions(
        self, user_id: str, limit: int = 50, offset: int = 0
    ) -> tuple[list[SessionSummary], int]:
        r = get_redis()
        index = keys.user_sessions(user_id)
        offset = max(offset, 0)
        pipe = r.pipeline(transaction=False)
        if ttl := _ttl_ms():
            pipe.zremrangebyscore(index, "-inf", _ms(utcnow()) - ttl)  # their sessions expired
        if limit > 0:
            pipe.zrevrange(index, offset, offset + limit - 1)
        pipe.zcard(index)
        replies = await pipe.execute()
        total: int = replies[-1]
        session_ids: list[str] = replies[-2] if limit > 0 else []
        if not session_ids:
            return [], total

        pipe = r.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.hmget(
                keys.session_meta(session_id), "user_id", "title", "created_at", "updated_at"
            )
        summaries, stale = [], []
        for session_id, (owner, title, created_at, updated_at) in zip(
            session_ids, await pipe.execute(), strict=True
        ):
            if owner != user_id:  # deleted, expired, or given to someone else meanwhile
                stale.append(session_id)
                continue
            summaries.append(
                SessionSummary(
                    session_id=session_id,
                    user_id=owner,
                    title=title,
                    created_at=datetime.fromisoformat(created_at),
                    updated_at=datetime.fromisoformat(updated_at),
                )
            )
        if stale:
            await r.zrem(index, *stale)
        return summaries, total - len(stale)

    async def delete(self, session_id: str, user_id: str | None) -> bool:
        owner = await _run(lua.SESSION_DELETE, session_id, caller=user_id or "")
        if owner is None:
            return False
        if owner:
            await get_redis().zrem(keys.user_sessions(owner), session_id)
        return True

    async def assign_user(self, session_id: str, user_id: str) -> bool:
        now = utcnow()
        assigned = await _run(
            lua.SESSION_ASSIGN, session_id, now=_iso(now), ttl_ms=_ttl_ms(), user_id=user_id
        )
        if not assigned:
            return False
        await _index(user_id, session_id, now)
        return True

    async def update_title(self, session_id: str, title: str) -> bool:
        now = utcnow()
        written = await _run(
            lua.SESSION_WRITE,
            session_id,
            rest=[title],
            now=_iso(now),
            ttl_ms=_ttl_ms(),
            what="title",
        )
        if written is None:
            return False
        await _index(written[0], session_id, now)
        return True

    async def add_usage(self, session_id: str, usage: Usage) -> None:
        """Raises SessionNotFound when the session does not exist."""
        now = utcnow()
        written = await _run(
            lua.SESSION_WRITE,
            session_id,
            rest=[usage.model_dump_json()],
            now=_iso(now),
            ttl_ms=_ttl_ms(),
            what="usage",
        )
        if written is None:
            raise SessionNotFound(session_id)
        await _index(written[0], session_id, now)

    async def truncate_messages(self, session_id: str, keep: int) -> bool:
        truncated = await _run(
            lua.SESSION_TRUNCATE,
            session_id,
            now=_iso(utcnow()),
            ttl_ms=_ttl_ms(),
            keep=max(keep, 0),
        )
        return bool(truncated)

    async def update_tool_message(
        self, session_id: str, tool_call_id: str, content: str, *, if_pending: bool = False
    ) -> bool:
        now = utcnow()
        owner = await _run(
            lua.SESSION_SETTLE_TOOL_MESSAGE,
            session_id,
            tool_call_id=tool_call_id,
            content=content,
            pending=OPERATION_PENDING if if_pending else "",
            now=_iso(now),
            ttl_ms=_ttl_ms(),
        )
        if owner is None:
            return False
        await _index(owner, session_id, now)
        return True


async def _run(script: lua.Script, session_id: str, rest: Sequence[str] = (), **args: Any) -> Any:
    return await script(
        rest,
        meta=keys.session_meta(session_id),
        messages=keys.session_messages(session_id),
        usage=keys.session_usage(session_id),
        **args,
    )


async def _index(owner: str | None, session_id: str, updated_at: datetime) -> None:
    """Record the session's last update in its owner's index (GT: a late write of an older
    time never moves it back)."""
    if not owner:
        return
    index = keys.user_sessions(owner)
    pipe = get_redis().pipeline(transaction=False)
    pipe.zadd(index, {session_id: _ms(updated_at)}, gt=True)
    if ttl := _ttl_ms():
        pipe.pexpire(index, ttl)  # outlives every session in it: each write pushes it out
    await pipe.execute()


def _session(session_id: str, snapshot: list[Any]) -> ChatSession | None:
    flat_meta, raw_messages, raw_usage = snapshot
    if not flat_meta:
        return None
    meta = dict(zip(flat_meta[::2], flat_meta[1::2], strict=False))
    return ChatSession(
        session_id=session_id,
        user_id=meta.get("user_id") or None,
        title=meta.get("title"),
        messages=[
            ChatMessage.model_validate_json(raw).model_copy(update={"sequence": sequence})
            for sequence, raw in enumerate(raw_messages)
        ],
        usage=[Usage.model_validate_json(raw) for raw in raw_usage],
        created_at=datetime.fromisoformat(meta["created_at"]),
        updated_at=datetime.fromisoformat(meta["updated_at"]),
    )


def _dump(message: ChatMessage) -> str:
    # The list index is the sequence; storing it too would only let the two disagree.
    return message.model_dump_json(exclude={"sequence"})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ttl_ms() -> int:
    return get_settings().session_ttl_seconds * 1000
