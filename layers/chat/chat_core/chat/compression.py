"""Context compression: turns that no longer fit are summarised by the title model, once.

    fitted = await fit_with_summary(session_id, user_id, system_prompt, history, budget)

When the whole history fits, it is sent whole. When it does not and a model is configured,
the oldest turns are replaced by a summary, cut at a unit boundary (a tool call stays with
its results) so that the turns kept take about `context_keep_ratio` of the budget: the next
turns then fit again without another summary. The summary is cached per session in Redis
with the fingerprint of the messages it covers, so it is made once, not every turn, and a
conversation that was edited (the AI SDK can rewrite history) is never given a summary of
messages it no longer has. A later compaction summarises the previous summary plus the
turns that have since dropped out, so its cost does not grow with the conversation.

Off the hot path where possible: when a conversation nears the budget
(`context_prepare_ratio`), the summary is made in the background after the call that
noticed; only a turn that exceeds the budget with no summary ready waits for one (at most
`context_summary_timeout_seconds`). Without a model, or when summarising fails, the
offline fit of `context.fit_context` is used, as before.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

from pydantic import BaseModel

from .. import background, keys
from ..redis_client import get_redis
from ..settings import get_settings
from .context import FittedContext, compaction_cut, fit_context, message_tokens, repair
from .llm import complete, provider_metadata

logger = logging.getLogger(__name__)

SUMMARY_INSTRUCTIONS = (
    "You summarise the earlier part of a conversation between a user and an AI assistant, "
    "so the assistant can go on without it. Keep what matters later: who the user is, what "
    "they asked for, decisions, names, numbers, agents found or built, and open questions. "
    "One paragraph, plain text, at most 200 words."
)
# Enough of each message to know what it was about; a summary needs no more.
_MESSAGE_CHARS = 600
_preparing: set[str] = set()


class Summary(BaseModel):
    through: int
    """How many leading messages of the repaired history it stands for."""
    fingerprint: str
    text: str

    def covers(self, history: list[dict[str, Any]]) -> bool:
        return len(history) >= self.through and _fingerprint(history[: self.through]) == (
            self.fingerprint
        )


async def fit_with_summary(
    session_id: str,
    user_id: str | None,
    system_prompt: str,
    history: list[dict[str, Any]],
    budget_tokens: int,
) -> FittedContext:
    settings = get_settings()
    history = repair(history)
    whole = fit_context(system_prompt, history, budget_tokens)
    # What the kept turns and the summary share: the budget less the system prompt.
    room = budget_tokens - message_tokens({"role": "system", "content": system_prompt})
    if not settings.secret("llm_api_key"):
        return whole  # offline: the oldest turns dropped, with a note of what they asked
    if whole.dropped == 0:
        if whole.tokens > budget_tokens * settings.context_prepare_ratio:
            _prepare_in_background(session_id, user_id, history, room)
        return whole
    cached = await _cached(session_id)
    if cached is not None and cached.covers(history):
        fitted = _with(system_prompt, history, budget_tokens, cached)
        if fitted.dropped == cached.through:  # the turns after it fit: nothing more to do
            return fitted
    try:
        summary = await asyncio.wait_for(
            _summarise_and_cache(session_id, user_id, history, room, cached),
            settings.context_summary_timeout_seconds,
        )
    except Exception:
        logger.warning("summarising the dropped turns failed; dropping them", exc_info=True)
        return whole
    return _with(system_prompt, history, budget_tokens, summary)


def _with(
    system_prompt: str, history: list[dict[str, Any]], budget_tokens: int, summary: Summary
) -> FittedContext:
    fitted = fit_context(
        system_prompt, history[summary.through :], budget_tokens, summary=summary.text
    )
    return FittedContext(fitted.messages, summary.through + fitted.dropped, fitted.tokens)


def _prepare_in_background(
    session_id: str, user_id: str | None, history: list[dict[str, Any]], room: int
) -> None:
    if session_id in _preparing:
        return
    _preparing.add(session_id)

    async def prepare() -> None:
        try:
            cached = await _cached(session_id)
            cut = _cut(history, room)
            if cached is not None and cached.covers(history) and cached.through >= cut:
                return
            await _summarise_and_cache(session_id, user_id, history, room, cached)
        finally:
            _preparing.discard(session_id)

    background.spawn(prepare(), name=f"summary:{session_id}")


def _cut(history: list[dict[str, Any]], room: int) -> int:
    """Where a summary's coverage ends: the turns after it take `context_keep_ratio` of the
    room the summary leaves."""
    settings = get_settings()
    keep = (room - settings.context_summary_max_tokens) * settings.context_keep_ratio
    return compaction_cut(history, int(keep))


async def _summarise_and_cache(
    session_id: str,
    user_id: str | None,
    history: list[dict[str, Any]],
    room: int,
    cached: Summary | None,
) -> Summary:
    cut = _cut(history, room)
    previous = cached if cached is not None and cached.covers(history) else None
    start = previous.through if previous is not None and previous.through <= cut else 0
    # Its newest part, if it is longer than a context window could take.
    transcript = _transcript(history[start:cut])[-get_settings().context_window_tokens * 3 :]
    if start:
        assert previous is not None
        transcript = f"summary so far: {previous.text}\n{transcript}"
    text = await _summarise(transcript, user_id, session_id)
    summary = Summary(through=cut, fingerprint=_fingerprint(history[:cut]), text=text)
    ttl = get_settings().context_summary_ttl_seconds
    await get_redis().set(keys.session_summary(session_id), summary.model_dump_json(), ex=ttl)
    return summary


async def _summarise(transcript: str, user_id: str | None, session_id: str) -> str:
    settings = get_settings()
    reply = await complete(
        {
            "model": settings.title_model,
            "messages": [
                {"role": "system", "content": SUMMARY_INSTRUCTIONS},
                {"role": "user", "content": transcript},
            ],
            "max_tokens": settings.context_summary_max_tokens,
            **provider_metadata(user_id, session_id),
        }
    )
    text = (reply["choices"][0]["message"].get("content") or "").strip()
    if not text:
        raise ValueError("the summary model answered nothing")
    return text


async def _cached(session_id: str) -> Summary | None:
    raw = await get_redis().get(keys.session_summary(session_id))
    return Summary.model_validate_json(raw) if raw else None


def _transcript(messages: list[dict[str, Any]]) -> str:
    """The messages as `role: text` lines (each shortened), tool calls and results included."""
    lines = []
    for message in messages:
        content = (message.get("content") or "")[:_MESSAGE_CHARS]
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            content += f" [called {function.get('name')}({function.get('arguments', '')})]"
        if content.strip():
            lines.append(f"{message['role']}: {' '.join(content.split())}")
    return "\n".join(lines)


def _fingerprint(messages: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
