"""The signed-in user's own records: what the assistant understands about their business,
and the library of agents built for them.

GET /api/chat/users/me/understanding         → {understanding: {...} | null}
PUT /api/chat/users/me/understanding         body: the understanding → {understanding}
GET /api/chat/users/me/agents                → {agents: [{agent_id, name, description, link, created_at}]}
GET /api/chat/users/me/agents/{agent_id}     → the agent, with its graph

Anonymous callers get 401: without an identity there is nobody to remember.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel

from ..users import BusinessUnderstanding, LibraryAgent, get_user_store
from .errors import ApiError
from .identity import SignedInUserId
from .openapi import declares, responses
from .paths import ID_SCHEMA, checked_id

router = APIRouter(tags=["users"])


class UnderstandingAnswer(BaseModel):
    understanding: BusinessUnderstanding | None
    """None until something is known about the user."""


class LibraryAgentSummary(BaseModel):
    agent_id: str
    name: str
    description: str | None
    link: str
    created_at: datetime


class LibraryAgentList(BaseModel):
    agents: list[LibraryAgentSummary]
    """Newest first."""


class LibraryAgentDetail(LibraryAgentSummary):
    graph: dict[str, Any]
    """The agent as it was built, sensitive keys redacted."""


@declares({404: "AGENT_NOT_FOUND"})
def _agent_id(agent_id: Annotated[str, Path(json_schema_extra=ID_SCHEMA)]) -> str:
    return checked_id(agent_id, "AGENT_NOT_FOUND", "No such agent in your library.")


AgentId = Annotated[str, Depends(_agent_id)]


@router.get("/users/me/understanding", response_model=UnderstandingAnswer)
async def get_understanding(user_id: SignedInUserId) -> UnderstandingAnswer:
    return _answer(await get_user_store().get_understanding(user_id))


@router.put("/users/me/understanding", response_model=UnderstandingAnswer)
async def put_understanding(
    user_id: SignedInUserId, understanding: BusinessUnderstanding
) -> UnderstandingAnswer:
    await get_user_store().put_understanding(user_id, understanding)
    return _answer(understanding)


@router.get("/users/me/agents", response_model=LibraryAgentList)
async def list_library_agents(user_id: SignedInUserId) -> LibraryAgentList:
    agents = await get_user_store().list_agents(user_id)
    return LibraryAgentList(agents=[_summary(agent) for agent in agents])


@router.get(
    "/users/me/agents/{agent_id}",
    response_model=LibraryAgentDetail,
    responses=responses({404: "AGENT_NOT_FOUND"}),
)
async def get_library_agent(agent_id: AgentId, user_id: SignedInUserId) -> LibraryAgentDetail:
    agent = await get_user_store().get_agent(user_id, agent_id)
    if agent is None:
        raise ApiError(404, "AGENT_NOT_FOUND", "No such agent in your library.")
    return LibraryAgentDetail(**_summary(agent).model_dump(), graph=agent.graph)


def _answer(understanding: BusinessUnderstanding | None) -> UnderstandingAnswer:
    empty = understanding is None or understanding.is_empty()
    return UnderstandingAnswer(understanding=None if empty else understanding)


def _summary(agent: LibraryAgent) -> LibraryAgentSummary:
    fields = agent.model_dump(include={"agent_id", "name", "description", "created_at"})
    return LibraryAgentSummary(**fields, link=agent.link)
