"""`update_business_understanding`: the model records what it learns about the user.

    {"business_name": "Crumb & Co", "industry": "bakery", "pain_points": ["invoicing"]}
    → {"type": "understanding_updated", "understanding": {...everything known now...}}

Given texts replace what was known; given items are added to the lists. What is known goes
into the system prompt of the user's next turns (chat_core.chat.prompts). Only a signed-in
user has an understanding to update.
"""

from __future__ import annotations

from typing import Any

from ..users import BusinessUnderstanding, get_user_store
from .base import Tool, ToolContext, ToolError


class UpdateBusinessUnderstanding(Tool):
    name = "update_business_understanding"
    description = (
        "Remember facts the user tells you about themselves and their business (name, role, "
        "industry, size, workflows, pain points, what they want to automate, the software "
        "they use). Pass only what you learned; texts replace what was known, list items are "
        "added. It is shown to you at the start of every later conversation."
    )
    Args = BusinessUnderstanding

    async def run(self, ctx: ToolContext, args: BusinessUnderstanding) -> dict[str, Any]:
        if ctx.user_id is None:
            raise ToolError(
                "The user is not signed in, so nothing about them can be remembered. Suggest "
                "signing in if they want you to remember their business."
            )
        if args.is_empty():
            raise ToolError("Nothing to remember: pass at least one fact about the user.")
        updated = await get_user_store().merge_understanding(ctx.user_id, args)
        return {
            "type": "understanding_updated",
            "understanding": updated.model_dump(exclude_defaults=True),
            "message": "Noted: this will be remembered in later conversations.",
        }
