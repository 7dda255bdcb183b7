"""The user store on Redis: under the user's hash tag, the understanding as one JSON string
and the library as a HASH of agent id → agent JSON. Neither expires: they outlive sessions."""

from __future__ import annotations

from .. import keys, lua
from ..redis_client import get_redis
from .models import BusinessUnderstanding, LibraryAgent
from .store import merge_by_swapping


class RedisUserStore:
    async def get_understanding(self, user_id: str) -> BusinessUnderstanding | None:
        raw = await get_redis().get(keys.user_understanding(user_id))
        return BusinessUnderstanding.model_validate_json(raw) if raw else None

    async def put_understanding(self, user_id: str, understanding: BusinessUnderstanding) -> None:
        key = keys.user_understanding(user_id)
        if understanding.is_empty():
            await get_redis().delete(key)
        else:
            await get_redis().set(key, understanding.model_dump_json(exclude_defaults=True))

    async def merge_understanding(
        self, user_id: str, update: BusinessUnderstanding
    ) -> BusinessUnderstanding:
        key = keys.user_understanding(user_id)

        async def swap(expected: str | None, replacement: str) -> bool:
            swapped = await lua.VALUE_SWAP(
                target=key, expected=expected or "", replacement=replacement
            )
            return bool(swapped)

        return await merge_by_swapping(lambda: get_redis().get(key), swap, update)

    async def save_agent(self, user_id: str, agent: LibraryAgent) -> LibraryAgent:
        r = get_redis()
        key = keys.user_agents(user_id)
        if await r.hsetnx(key, agent.agent_id, agent.model_dump_json()):
            return agent
        return LibraryAgent.model_validate_json(await r.hget(key, agent.agent_id))

    async def get_agent(self, user_id: str, agent_id: str) -> LibraryAgent | None:
        raw = await get_redis().hget(keys.user_agents(user_id), agent_id)
        return LibraryAgent.model_validate_json(raw) if raw else None

    async def list_agents(self, user_id: str) -> list[LibraryAgent]:
        agents = [
            LibraryAgent.model_validate_json(raw)
            for raw in await get_redis().hvals(keys.user_agents(user_id))
        ]
        return sorted(agents, key=lambda a: a.created_at, reverse=True)
