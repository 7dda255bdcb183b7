"""The user store interface: per user, their business understanding and their library of
agents. Implementations: Redis and DynamoDB, kept in the session store's backend
(`CHAT_SESSION_STORE`); both pass one contract test suite.

    store = get_user_store()
    await store.put_understanding("u1", BusinessUnderstanding(industry="bakery"))
    await store.get_understanding("u1")            # the same, or None for a new user
    await store.save_agent("u1", agent)            # idempotent per agent id
"""

from __future__ import annotations

from typing import Protocol

from .models import BusinessUnderstanding, LibraryAgent


class UserStore(Protocol):
    async def get_understanding(self, user_id: str) -> BusinessUnderstanding | None:
        """None when nothing has been learned about the user yet."""

    async def put_understanding(self, user_id: str, understanding: BusinessUnderstanding) -> None:
        """Replace what is known (an empty understanding forgets it)."""

    async def save_agent(self, user_id: str, agent: LibraryAgent) -> LibraryAgent:
        """Add the agent to the user's library unless one with its id is there already;
        returns the stored one. Saving the same agent twice keeps one copy."""

    async def get_agent(self, user_id: str, agent_id: str) -> LibraryAgent | None:
        """None when missing or in another user's library."""

    async def list_agents(self, user_id: str) -> list[LibraryAgent]:
        """The user's library, newest first."""
