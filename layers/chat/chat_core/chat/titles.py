"""A short title for a session, generated from its first message, off the request path.

    title = await generate_title("Can you help me plan a trip to Rome in May?")
    # "Planning A Trip To Rome"

3–6 words, at most 50 characters. When the title model fails, a title is still made from
the message itself, so no session stays untitled because a side call broke.
"""

from __future__ import annotations

import logging
import re

from ..settings import get_settings
from .llm import complete, provider_metadata

logger = logging.getLogger(__name__)

MAX_TITLE_CHARS = 50
TITLE_INSTRUCTIONS = (
    "Generate a very short title (3-6 words) for a chat conversation based on the user's "
    "first message. Capture the main topic or intent. Return only the title, without quotes "
    "or punctuation at the end."
)
_FILLER = {
    "a",
    "an",
    "the",
    "please",
    "can",
    "could",
    "you",
    "me",
    "i",
    "to",
    "for",
    "help",
    "would",
    "hi",
    "hello",
}


async def generate_title(
    message: str, user_id: str | None = None, session_id: str | None = None
) -> str:
    settings = get_settings()
    try:
        reply = await complete(
            {
                "model": settings.title_model,
                "messages": [
                    {"role": "system", "content": TITLE_INSTRUCTIONS},
                    {"role": "user", "content": message[:500]},
                ],
                "max_tokens": 20,
                **provider_metadata(user_id, session_id),
            }
        )
        title = clean_title(reply["choices"][0]["message"].get("content") or "")
        if title:
            return title
    except Exception:
        logger.warning("title generation failed; deriving a title from the message", exc_info=True)
    return fallback_title(message)


def clean_title(raw: str) -> str:
    title = " ".join(raw.strip().strip("\"'“”").split())
    title = re.sub(r"[.!?:;]+$", "", title)
    words = title.split()[:6]
    title = " ".join(words)
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return title


def fallback_title(message: str) -> str:
    words = [w for w in re.findall(r"[\w'-]+", message) if w.lower() not in _FILLER]
    if not words:
        return "New chat"
    return clean_title(" ".join(w.capitalize() for w in words[:5]))
