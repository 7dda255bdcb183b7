"""The system prompt: a built-in default, or a Langfuse-managed prompt when keys are set,
told who the user is, what page they look at, and what the assistant knows of their
business (or, when it knows nothing yet, that this is a first meeting).

    prompt = await build_system_prompt(user_id="u1", context={"url": "https://…", "content": "…"})

Langfuse is an optional extra (`pip install .[langfuse]`); without its keys, or when it
cannot be reached, the default prompt is used and the turn goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from functools import lru_cache
from typing import Any

from ..settings import get_settings
from ..users import BusinessUnderstanding, get_user_store

logger = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = """\
You are a helpful, concise assistant on a platform of AI agents.
You can search the agent catalog with `find_agent` and build a new agent with `create_agent`
(building takes a while: the result arrives later and you will be asked to continue then).
When the user tells you about themselves or their business, record it with
`update_business_understanding`. Use a tool when it helps the user; otherwise answer
directly. Never invent agents that the catalog did not return.

About the user:
{users_information}"""

FIRST_MEETING = (
    "This is the first time you are meeting the user. Greet them and introduce them to the "
    "platform."
)

_CONTEXT_CHARS = 4_000


def describe_user(
    user_id: str | None,
    context: dict[str, Any] | None,
    understanding: BusinessUnderstanding | None = None,
) -> str:
    lines = [f"Signed in as user {user_id}." if user_id else "Not signed in (anonymous)."]
    if understanding is not None and not understanding.is_empty():
        lines.append("What you know about them and their business:\n" + understanding.for_prompt())
    else:
        lines.append(FIRST_MEETING)
    if context:
        if context.get("url"):
            lines.append(f"They are looking at {context['url']}.")
        if context.get("content"):
            lines.append("What that page says:\n" + str(context["content"])[:_CONTEXT_CHARS])
    return "\n".join(lines)


async def build_system_prompt(
    user_id: str | None,
    context: dict[str, Any] | None = None,
    *,
    understanding: Awaitable[BusinessUnderstanding | None] | None = None,
) -> str:
    """`understanding`: the user's, as the caller reads it ahead (the worker, beside its
    claim of the task); None: read here."""
    users_information = describe_user(
        user_id, context, await _understanding(user_id, understanding)
    )
    managed = await _langfuse_prompt(users_information)
    return managed or DEFAULT_SYSTEM_PROMPT.format(users_information=users_information)


async def _understanding(
    user_id: str | None, ahead: Awaitable[BusinessUnderstanding | None] | None
) -> BusinessUnderstanding | None:
    if user_id is None:
        return None
    try:
        return await (ahead or get_user_store().get_understanding(user_id))
    except Exception:  # the turn goes on without it, as a first meeting
        logger.warning("could not read the user's business understanding", exc_info=True)
        return None


async def _langfuse_prompt(users_information: str) -> str | None:
    settings = get_settings()
    public_key, secret_key = (
        settings.secret("langfuse_public_key"),
        settings.secret("langfuse_secret_key"),
    )
    if not (public_key and secret_key):
        return None
    try:
        client = _langfuse(public_key, secret_key, settings.langfuse_host)
    except ImportError:
        logger.warning("Langfuse keys are set but the langfuse package is not installed")
        return None
    try:
        prompt = await asyncio.to_thread(
            client.get_prompt,
            settings.langfuse_prompt_name,
            label=settings.langfuse_prompt_label,
            cache_ttl_seconds=settings.langfuse_cache_ttl_seconds,
        )
        return str(prompt.compile(users_information=users_information))
    except Exception:
        logger.warning("could not fetch the Langfuse prompt; using the default", exc_info=True)
        return None


@lru_cache(maxsize=2)
def _langfuse(public_key: str, secret_key: str, host: str | None) -> Any:
    """One client per process and keys: its prompt cache is what the cache TTL is about."""
    from langfuse import Langfuse  # optional extra: imported only when configured

    return Langfuse(public_key=public_key, secret_key=secret_key, host=host)
