"""The user-store contract: Redis and DynamoDB keep a user's understanding and agent library
alike, and neither disturbs the user's sessions.

Each implementation's mirror module runs it, naming the backend of `store_backend`
(tests/conftest.py):

    @pytest.mark.parametrize("store_backend", ["redis"], indirect=True)
    class TestUserStoreContract(UserStoreContract): ...
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from chat_core.sessions import get_session_store
from chat_core.users import BusinessUnderstanding, LibraryAgent, get_user_store


class UserStoreContract:
    """The cases; a `Test…` subclass in a mirror module runs them."""

    async def test_a_new_user_has_no_understanding_and_an_empty_library(self, store_backend):
        store = get_user_store()
        assert await store.get_understanding("u1") is None
        assert await store.list_agents("u1") == []
        assert await store.get_agent("u1", "a1") is None

    async def test_the_understanding_round_trips_per_user_and_is_replaced_whole(
        self, store_backend
    ):
        store = get_user_store()
        first = BusinessUnderstanding(
            business_name="Crumb & Co", industry="bakery", pain_points=["invoicing", "rotas"]
        )
        await store.put_understanding("u1", first)
        assert await store.get_understanding("u1") == first
        assert await store.get_understanding("u2") is None

        second = BusinessUnderstanding(industry="catering")
        await store.put_understanding("u1", second)
        assert await store.get_understanding("u1") == second

        await store.put_understanding("u1", BusinessUnderstanding())  # forgetting everything
        assert await store.get_understanding("u1") is None

    async def test_a_merge_adds_to_what_is_known_and_racing_merges_lose_nothing(
        self, store_backend
    ):
        store = get_user_store()
        first = await store.merge_understanding("u1", BusinessUnderstanding(industry="bakery"))
        assert (
            first == await store.get_understanding("u1") == BusinessUnderstanding(industry="bakery")
        )
        # Two conversations of one user learning at once: every fact is kept.
        facts = [BusinessUnderstanding(pain_points=[f"pain {n}"]) for n in range(8)]
        await asyncio.gather(*(store.merge_understanding("u1", fact) for fact in facts))
        known = await store.get_understanding("u1")
        assert known is not None and known.industry == "bakery"
        assert sorted(known.pain_points) == sorted(f"pain {n}" for n in range(8))

    async def test_an_agent_is_saved_once_and_found_only_in_its_owners_library(self, store_backend):
        store = get_user_store()
        agent = LibraryAgent(agent_id="a1", name="Invoice Chaser", graph={"nodes": [{"id": 1}]})
        assert await store.save_agent("u1", agent) == agent
        # The same id again (a redelivered result) keeps the first copy.
        again = await store.save_agent("u1", agent.model_copy(update={"name": "Renamed"}))
        assert again == agent
        assert await store.list_agents("u1") == [agent]
        assert await store.get_agent("u1", "a1") == agent
        assert await store.get_agent("u2", "a1") is None
        assert await store.list_agents("u2") == []

    async def test_the_library_lists_newest_first(self, store_backend):
        store = get_user_store()
        start = datetime(2025, 1, 1, tzinfo=UTC)
        for n in range(3):
            agent = LibraryAgent(
                agent_id=f"a{n}", name=f"Agent {n}", created_at=start + timedelta(minutes=n)
            )
            await store.save_agent("u1", agent)
        assert [a.agent_id for a in await store.list_agents("u1")] == ["a2", "a1", "a0"]

    async def test_concurrent_saves_of_one_agent_keep_one_copy(self, store_backend):
        store = get_user_store()
        agents = [LibraryAgent(agent_id="same", name=f"Try {n}") for n in range(5)]
        saved = await asyncio.gather(*(store.save_agent("u1", a) for a in agents))
        assert len({a.name for a in saved}) == 1
        assert len(await store.list_agents("u1")) == 1

    async def test_user_records_never_show_up_as_sessions(self, store_backend):
        sessions = get_session_store()
        session = await sessions.create("u1")
        await get_user_store().put_understanding("u1", BusinessUnderstanding(industry="bakery"))
        await get_user_store().save_agent("u1", LibraryAgent(agent_id="a1", name="A"))
        listed, total = await sessions.list_sessions("u1")
        assert total == 1 and [s.session_id for s in listed] == [session.session_id]
