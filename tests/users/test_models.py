"""chat_core.users.models: what is known about a user fills in over conversations, and how the
system prompt shows it; a library agent's link."""

from __future__ import annotations

import pytest
from chat_core.users.models import BusinessUnderstanding, LibraryAgent
from pydantic import ValidationError


def test_an_update_replaces_texts_and_adds_list_items_once():
    known = BusinessUnderstanding(industry="bakery", pain_points=["invoicing", "rotas"])
    update = BusinessUnderstanding(industry="catering", pain_points=["rotas", "suppliers"])
    merged = known.merged(update)
    assert merged.industry == "catering"
    assert merged.pain_points == ["invoicing", "rotas", "suppliers"]
    assert known.merged(BusinessUnderstanding()) == known  # nothing given: nothing changes


def test_a_list_keeps_its_newest_twenty_items():
    known = BusinessUnderstanding(key_workflows=[f"old {i}" for i in range(20)])
    merged = known.merged(BusinessUnderstanding(key_workflows=["new"]))
    assert len(merged.key_workflows) == 20
    assert merged.key_workflows[-1] == "new" and "old 0" not in merged.key_workflows


def test_the_prompt_lists_what_is_known_in_a_fixed_order_with_labels():
    understanding = BusinessUnderstanding(
        pain_points=["invoicing", "rotas"], business_name="Crumb & Co", user_name="Ada"
    )
    assert understanding.for_prompt() == (
        "Name: Ada\nBusiness: Crumb & Co\nPain points: invoicing; rotas"
    )
    assert BusinessUnderstanding().for_prompt() == ""


def test_empty_means_nothing_known():
    assert BusinessUnderstanding().is_empty()
    assert BusinessUnderstanding(pain_points=[]).is_empty()
    assert not BusinessUnderstanding(additional_notes="likes brevity").is_empty()


@pytest.mark.parametrize(
    "fields",
    [
        {"favourite_colour": "blue"},
        {"industry": "x" * 501},
        {"industry": "   "},
        {"pain_points": ["p"] * 21},
    ],
    ids=["unknown field", "too long", "blank", "too many items"],
)
def test_what_cannot_be_a_fact_is_refused(fields):
    with pytest.raises(ValidationError):
        BusinessUnderstanding(**fields)


def test_texts_are_stripped():
    assert BusinessUnderstanding(industry="  bakery ").industry == "bakery"


def test_an_agents_link_follows_the_configured_pattern(settings_env):
    agent = LibraryAgent(agent_id="a1", name="Invoice Chaser")
    settings_env(library_agent_link="https://app.example/library/{agent_id}")
    assert agent.link == "https://app.example/library/a1"
