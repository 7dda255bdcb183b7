"""The signed-in user's own records: what the assistant understands about their business,
and the library of agents built for them.

GET /api/chat/users/me/understanding         → {understanding: {...} | null}
PUT /api/chat/users/me/understanding         body: the understanding → {understanding}
GET /api/chat/users/me/agents                → {agents: [{agent_id, name, description, link, created_at}]}
GET /api/chat/users/me/agents/{agent_id}     → the agent, with its graph

Anonymous callers get 401: without an identity there is nobody to remember.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from ..users import BusinessUnderstanding, get_user_store
from .errors import ApiError
from .identity import SignedInUserId
from .paths import checked_id

router = APIRouter(tags=["users"])

AGENT_NOT_FOUND = ApiError(404, "AGENT_NOT_FOUND", "No such agent in your library.")


def _agent_id(agent_id: Annotated[str, Path()]) -> str:
    return checked_id(agent_id, AGENT_NOT_FOUND.code, AGENT_NOT_FOUND.message)


AgentId = Annotated[str, Depends(_agent_id)]


@router.get("/users/me/understanding")
async def get_understanding(user_id: SignedInUserId) -> dict[str, Any]:
    understanding = await get_user_store().get_understanding(user_id)
    return {"understanding": _shown(understanding)}


@router.put("/users/me/understanding")
async def put_understanding(
    user_id: SignedInUserId, understanding: BusinessUnderstanding
) -> dict[str, Any]:
    await get_user_store().put_understanding(user_id, understanding)
    return {"understanding": _shown(understanding)}


@router.get("/users/me/agents")
async def list_agents(user_id: SignedInUserId) -> dict[str, Any]:
    agents = await get_user_store().list_agents(user_id)
    return {"agents": [agent.summary() for agent in agents]}


@router.get("/users/me/agents/{agent_id}")
async def get_agent(agent_id: AgentId, user_id: SignedInUserId) -> dict[str, Any]:
    agent = await get_user_store().get_agent(user_id, agent_id)
    if agent is None:
        raise AGENT_NOT_FOUND
    return {**agent.summary(), "graph": agent.graph}


def _shown(understanding: BusinessUnderstanding | None) -> dict[str, Any] | None:
    if understanding is None or understanding.is_empty():
        return None
    return understanding.model_dump(exclude_defaults=True)
