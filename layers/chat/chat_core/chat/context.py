"""Fit a conversation into the model's context window before every call.

    fitted = fit_context(system_prompt, history, budget_tokens=8_000)
    fitted.messages        # system prompt first, then as much recent history as fits
    fitted.dropped         # how many history messages were left out

Token counts are estimated offline (no tokenizer download in a Lambda): about four
characters or three quarters of a word per token, whichever is more, plus a small overhead
per message. The oldest turns go first; what they asked is kept as a one-paragraph note
so the model knows the conversation had a beginning. An assistant message that called tools
and the tool results answering it are one unit: kept or dropped together, because the API
rejects a tool result without its call and a call without its result.

With a model at hand, the dropped turns are summarised by it instead (chat_core.chat.
compression): `compaction_cut` picks how many leading messages a summary replaces, at a unit
boundary, and `fit_context(..., summary=...)` puts that summary in their place.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

MESSAGE_OVERHEAD_TOKENS = 4
SUMMARY_HEADING = "Summary of the earlier part of this conversation (left out for length):\n"
_INTERRUPTED_TOOL_RESULT = "The tool call was interrupted before it returned a result."


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    return max(math.ceil(len(text) / 4), math.ceil(len(text.split()) * 4 / 3))


def message_tokens(message: dict[str, Any]) -> int:
    tokens = MESSAGE_OVERHEAD_TOKENS + estimate_tokens(message.get("content") or "")
    if message.get("tool_calls"):
        tokens += estimate_tokens(json.dumps(message["tool_calls"]))
    return tokens


@dataclass
class FittedContext:
    messages: list[dict[str, Any]]
    dropped: int
    tokens: int


def fit_context(
    system_prompt: str,
    history: list[dict[str, Any]],
    budget_tokens: int,
    *,
    summary: str | None = None,
) -> FittedContext:
    """`summary`, when given, stands for what came before `history` (a cut of it)."""
    units = _units(repair(history))
    system = {"role": "system", "content": system_prompt}
    summary_note = {"role": "system", "content": SUMMARY_HEADING + summary} if summary else None
    used = message_tokens(system) + (message_tokens(summary_note) if summary_note else 0)
    kept: list[list[dict[str, Any]]] = []
    # Walk back from the newest unit; the newest one is always kept (trimmed if it must be).
    for index, unit in enumerate(reversed(units)):
        cost = sum(map(message_tokens, unit))
        if index > 0 and used + cost > budget_tokens:
            break
        kept.insert(0, unit)
        used += cost
    dropped_units = units[: len(units) - len(kept)]
    messages = [system, summary_note] if summary_note else [system]
    if dropped_units:
        note = _summary(dropped_units, budget_tokens - used)
        if note:
            messages.append(note)
            used += message_tokens(note)
    kept_messages = [m for unit in kept for m in unit]
    if used > budget_tokens:
        kept_messages = _trim_largest(kept_messages, used - budget_tokens)
        used = sum(map(message_tokens, [*messages, *kept_messages]))
    messages += kept_messages
    return FittedContext(messages, sum(map(len, dropped_units)), used)


def compaction_cut(history: list[dict[str, Any]], keep_tokens: int) -> int:
    """How many leading messages of the (repaired) history to summarise so that the rest
    takes at most `keep_tokens`: always at a unit boundary, never the newest unit."""
    units = _units(history)
    kept_tokens, kept_units = 0, 0
    for index, unit in enumerate(reversed(units)):
        cost = sum(map(message_tokens, unit))
        if index > 0 and kept_tokens + cost > keep_tokens:
            break
        kept_tokens += cost
        kept_units += 1
    return sum(map(len, units[: len(units) - kept_units]))


def repair(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Make the history acceptable to the API whatever crashed while it was written: every
    tool call gets a result, and no tool result lacks its call."""
    repaired: list[dict[str, Any]] = []
    open_calls: list[str] = []
    for message in history:
        if message["role"] == "tool":
            if message.get("tool_call_id") in open_calls:
                open_calls.remove(message["tool_call_id"])
                repaired.append(message)
            continue
        repaired += _close(open_calls)
        open_calls = [c["id"] for c in message.get("tool_calls") or []]
        repaired.append(message)
    return repaired + _close(open_calls)


def _close(open_calls: list[str]) -> list[dict[str, Any]]:
    return [
        {"role": "tool", "tool_call_id": c, "content": _INTERRUPTED_TOOL_RESULT} for c in open_calls
    ]


def _units(history: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    units: list[list[dict[str, Any]]] = []
    for message in history:
        if message["role"] == "tool" and units:
            units[-1].append(message)
        else:
            units.append([message])
    return units


def _summary(dropped: list[list[dict[str, Any]]], room_tokens: int) -> dict[str, Any] | None:
    asks = [
        " ".join((m.get("content") or "").split())[:120]
        for unit in dropped
        for m in unit
        if m["role"] == "user" and m.get("content")
    ]
    if not asks or room_tokens < 40:
        return None
    text = "Earlier in this conversation (left out for length), the user asked: " + "; ".join(asks)
    limit = max(0, (room_tokens - MESSAGE_OVERHEAD_TOKENS) * 3)
    return {"role": "system", "content": text[:limit]}


def _trim_largest(messages: list[dict[str, Any]], excess_tokens: int) -> list[dict[str, Any]]:
    """Shorten the biggest contents (typically a huge tool result) from the middle."""
    trimmed = [dict(m) for m in messages]
    for message in sorted(trimmed, key=lambda m: -len(m.get("content") or "")):
        content = message.get("content") or ""
        if excess_tokens <= 0 or not content:
            break
        cut_chars = min(len(content) - 200, excess_tokens * 4 + 100)
        if cut_chars <= 0:
            continue
        keep = (len(content) - cut_chars) // 2
        message["content"] = (
            content[:keep]
            + f"\n[… {cut_chars} characters left out …]\n"
            + content[len(content) - keep :]
        )
        excess_tokens -= cut_chars // 4
    return trimmed
