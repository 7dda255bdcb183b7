"""What the user tests share: a known business, and the answer the API gives for it."""

from __future__ import annotations

from chat_core.users import BusinessUnderstanding

UNDERSTANDING = "/api/chat/users/me/understanding"


BAKERY = {
    "user_name": "Ada",
    "business_name": "Crumb & Co",
    "industry": "bakery",
    "pain_points": ["chasing unpaid invoices"],
}


def answer(**facts) -> dict:
    """The answer with these facts known: every field present, the others empty."""
    return {"understanding": BusinessUnderstanding(**facts).model_dump()}
