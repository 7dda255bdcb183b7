"""The user store interface: per user, their business understanding and their library of
agents. Implementations: Redis and DynamoDB, kept in the session store's backend
(`CHAT_SESSION_STORE`); both pass one contract test suite.

    store = get_user_store()
    await store.put_understanding("u1", BusinessUnderstanding(industry="bakery"))
    await store.get_understanding("u1")            # the same, or None for a new user
    await store.merge_understanding("u1", BusinessUnderstanding(pain_points=["rotas"]))
    await store.save_agent("u1", agent)            # idempotent per agent id
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from .models import BusinessUnderstanding, LibraryAgent

MERGE_ATTEMPTS = 20


class UserStore(Protocol):
    async def get_understanding(self, user_id: str) -> BusinessUnderstanding | None:
        """None when nothing has been learned about the user yet."""

    async def put_understanding(self, user_id: str, understanding: BusinessUnderstanding) -> None:
        """Replace what is known (an empty understanding forgets it)."""

    async def merge_understanding(
        self, user_id: str, update: BusinessUnderstanding
    ) -> BusinessUnderstanding:
        """What is known with `update` merged in (`BusinessUnderstanding.merged`), stored
        and returned. Merges that race are applied one after the other: none is lost."""

    async def save_agent(self, user_id: str, agent: LibraryAgent) -> LibraryAgent:
        """Add the agent to the user's library unless one with its id is there already;
        returns the stored one. Saving the same agent twice keeps one copy."""

    async def get_agent(self, user_id: str, agent_id: str) -> LibraryAgent | None:
        """None when missing or in another user's library."""

    async def list_agents(self, user_id: str) -> list[LibraryAgent]:
        """The user's library, newest first."""


async def merge_by_swapping(
    read: Callable[[], Awaitable[str | None]],
    swap: Callable[[str | None, str], Awaitable[bool]],
    update: BusinessUnderstanding,
) -> BusinessUnderstanding:
    """A store's `merge_understanding`: read the stored JSON (None: nothing), merge, and
    `swap` it for the merged JSON only if it is still what was read; again if it was not."""
    for _ in range(MERGE_ATTEMPTS):
        raw = await read()
        known = BusinessUnderstanding.model_validate_json(raw) if raw else BusinessUnderstanding()
        merged = known.merged(update)
        if await swap(raw, merged.model_dump_json(exclude_defaults=True)):
            return merged
    raise RuntimeError(f"the understanding changed under {MERGE_ATTEMPTS} merges in a row")
