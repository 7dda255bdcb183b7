"""What the assistant keeps about a user beyond their sessions.

understanding = BusinessUnderstanding(business_name="Crumb & Co", industry="bakery")
understanding = understanding.merged(BusinessUnderstanding(pain_points=["invoicing"]))
understanding.for_prompt()      # "Business: Crumb & Co\nIndustry: bakery\n..."

agent = LibraryAgent(agent_id="…", name="Invoice Chaser", graph={...})
agent.link                      # where the page opens it (CHAT_LIBRARY_AGENT_LINK)
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..sessions.models import utcnow
from ..settings import get_settings

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Items = Annotated[list[Text], Field(max_length=20)]

# (field, label in the prompt), in the order the prompt lists them.
_LABELS = {
    "user_name": "Name",
    "job_title": "Job title",
    "business_name": "Business",
    "industry": "Industry",
    "business_size": "Business size",
    "user_role": "Role in the business",
    "key_workflows": "Key workflows",
    "pain_points": "Pain points",
    "automation_goals": "What they want to automate",
    "current_software": "Software they use",
    "additional_notes": "Notes",
}


class BusinessUnderstanding(BaseModel):
    """What the assistant has learned about the user and their business. Every field is
    optional: it fills in over conversations."""

    model_config = ConfigDict(extra="forbid")

    user_name: Text | None = None
    job_title: Text | None = None
    business_name: Text | None = None
    industry: Text | None = None
    business_size: Text | None = None
    user_role: Text | None = None
    key_workflows: Items = Field(default_factory=list)
    pain_points: Items = Field(default_factory=list)
    automation_goals: Items = Field(default_factory=list)
    current_software: Items = Field(default_factory=list)
    additional_notes: Annotated[str, StringConstraints(max_length=2000)] | None = None

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in _LABELS)

    def merged(self, update: BusinessUnderstanding) -> BusinessUnderstanding:
        """`update`'s facts on top of these: a given text replaces, given items are added
        (each once, the list capped at its limit keeping the newest)."""
        merged: dict[str, Any] = self.model_dump()
        for name, value in update.model_dump(exclude_defaults=True).items():
            if isinstance(value, list):
                items = [i for i in merged[name] if i not in value] + value
                merged[name] = items[-20:]
            else:
                merged[name] = value
        return BusinessUnderstanding.model_validate(merged)

    def for_prompt(self) -> str:
        lines = []
        for name, label in _LABELS.items():
            value = getattr(self, name)
            if value:
                lines.append(f"{label}: {'; '.join(value) if isinstance(value, list) else value}")
        return "\n".join(lines)


class LibraryAgent(BaseModel):
    """An agent built for the user, kept in their library."""

    agent_id: str
    name: str
    description: str | None = None
    graph: dict[str, Any] = Field(default_factory=dict)
    """The agent as the generator built it, sensitive keys redacted."""
    operation_id: str | None = None
    session_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def link(self) -> str:
        return get_settings().library_agent_link.format(agent_id=self.agent_id)
