"""One chat turn: the model's answer to the session's conversation, as AI SDK chunks.

    try:
        async for chunk in stream_chat_completion(session_id, "Hello!", user_id="u1"):
            print(chunk.to_json())
        # start-step, text-start, text-delta…, text-end, finish-step, data-usage
    except TurnFailed as failure:
        print(failure)                 # a message the user can read

The turn is a pure producer of content: the task it runs in frames it (its stream opens
with `start` when the task is created; the task's end appends `error` and `finish`, see
`chat_core.tasks`). It saves the user's message (when given) before calling the model,
then streams the model's answer. When the model calls tools they run and the model
continues with their results, round after round, until it answers without tools or
`max_tool_rounds` is reached (the last round offers no tools, so the turn always ends in
words). The assistant's words, its tool calls, the tool results and the token usage are
saved to the session as they happen.

Failures: 429, 5xx, connection errors and an overload reported mid-stream are retried
with backoff — invisibly while the failed attempt had shown nothing, otherwise by closing
that step and starting a new one.
Any other failure, or running out of retries, closes the open step and raises
`TurnFailed` with a message a user can read. Cancellation (the task's cancel flag, or the
process being cancelled) stops the model call and saves what was written so far, marked
as interrupted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .. import background
from .. import tools as tool_catalog
from ..notifications import SessionEvent, notify
from ..protocol.chunks import (
    Chunk,
    Data,
    FinishStep,
    ReasoningDelta,
    ReasoningEnd,
    ReasoningStart,
    StartStep,
    TextDelta,
    TextEnd,
    TextStart,
    ToolInputAvailable,
    ToolInputStart,
    ToolOutputAvailable,
    ToolOutputError,
)
from ..retry import retrying
from ..sessions import get_session_store
from ..sessions.models import ChatMessage, ChatSession, Usage
from ..settings import get_settings
from ..tools import ToolContext, ToolRegistry
from ..users import BusinessUnderstanding
from . import operations
from .compression import fit_with_summary
from .context import estimate_tokens
from .llm import (
    is_retryable,
    open_stream,
    provider_metadata,
    retry_delay,
    user_message_for,
)
from .prompts import build_system_prompt
from .titles import generate_title

logger = logging.getLogger(__name__)

INTERRUPTED_MARK = "[interrupted]"
TITLE_AFTER_FIRST_WORDS_SECONDS = 0.25
# Chunks that open a part and carry nothing the user reads yet.
_OPENERS = (StartStep, TextStart, ReasoningStart)


class TurnFailed(Exception):
    """The turn cannot go on; the message is what the user reads."""


class _BrokenStream(Exception):
    """The model's stream ended without saying it was done."""


@dataclass
class _ToolCall:
    id: str
    name: str = ""
    arguments: str = ""
    announced: bool = False


@dataclass
class _Step:
    """What one model call produced so far."""

    text_id: str | None = None
    text: list[str] = field(default_factory=list)
    reasoning_id: str | None = None
    calls: dict[int, _ToolCall] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None

    @property
    def content(self) -> str:
        return "".join(self.text)


async def stream_chat_completion(
    session_id: str,
    message: str | None = None,
    user_id: str | None = None,
    *,
    is_user_message: bool = True,
    context: dict[str, Any] | None = None,
    task_id: str | None = None,
    tools: ToolRegistry | None = None,
    message_id: str | None = None,
    session: ChatSession | None = None,
    understanding: Awaitable[BusinessUnderstanding | None] | None = None,
) -> AsyncGenerator[Chunk]:
    """`message_id`: the AI SDK message the turn writes into, stamped on what it saves.
    `session`: the session as the caller just read it (None: the turn reads it);
    `understanding`: the user's, as the caller reads it ahead (None: the turn reads it)."""
    offered = tools or tool_catalog.default_tools(anonymous=user_id is None)
    turn = _Turn(session_id, user_id, task_id, offered, message_id)
    turn.session = session
    async for chunk in turn.run(message, is_user_message, context, understanding):
        yield chunk


class _Turn:
    def __init__(
        self,
        session_id: str,
        user_id: str | None,
        task_id: str | None,
        tools: ToolRegistry,
        message_id: str | None = None,
    ) -> None:
        self.settings = get_settings()
        self.store = get_session_store()
        self.session_id = session_id
        self.user_id = user_id
        self.task_id = task_id or f"local-{uuid.uuid4()}"
        self.tools = tools
        self.message_id = message_id
        self.session: ChatSession | None = None
        self.step = _Step()
        self.step_open = False
        self.usage = Usage(
            prompt_tokens=0, completion_tokens=0, total_tokens=0, model=self.settings.model
        )
        self._tools_tokens = _schema_tokens(tools)

    async def run(
        self,
        message: str | None,
        is_user_message: bool,
        context: dict[str, Any] | None,
        understanding: Awaitable[BusinessUnderstanding | None] | None = None,
    ) -> AsyncIterator[Chunk]:
        finished, title_from = False, None
        try:
            if self.session is None:
                self.session = await self.store.get(self.session_id, self.user_id)
            if self.session is None:
                raise TurnFailed("This chat session does not exist.")
            if message:
                role = "user" if is_user_message else "assistant"
                await self._append(ChatMessage(role=role, content=message))
            title_from = self._first_message()
            system_prompt = await build_system_prompt(
                self.user_id, context, understanding=understanding
            )
            async for chunk in self._rounds(system_prompt):
                yield chunk
                if title_from is not None and not isinstance(chunk, _OPENERS):
                    # The user has the model's first words: the title call goes out beside
                    # the answer, never ahead of them.
                    self._spawn_title(title_from)
                    title_from = None
            if self.usage.total_tokens:
                yield Data(type="data-usage", data=_usage_json(self.usage))
            finished = True
        except TurnFailed:
            finished = True
            if self.step_open:
                yield FinishStep()
            raise
        finally:
            if title_from is not None:  # the model never answered: name the session anyway
                self._spawn_title(title_from)
            if not finished:
                # Cancelled, or the consumer closed us: keep what the user already saw.
                await asyncio.shield(self._save_partial())

    def _first_message(self) -> str | None:
        """The session's first user message when it has no title yet: what names it."""
        assert self.session is not None
        said = [m for m in self.session.messages if not m.is_view]
        users = [m for m in said if m.role == "user"]
        if not self.session.title and len(users) == 1 and said[-1] is users[0]:
            return users[0].content or ""
        return None

    def _spawn_title(self, message: str) -> None:
        background.spawn(self._title(message), name=f"title:{self.session_id}")

    async def _title(self, message: str) -> None:
        # Not urgent: setting up its request takes a few ms of CPU, which must not hold up
        # the first words on their way (in a process that also serves their readers, too).
        await asyncio.sleep(TITLE_AFTER_FIRST_WORDS_SECONDS)
        title = await generate_title(message, self.user_id, self.session_id)
        if await self.store.update_title(self.session_id, title):
            await notify(
                self.user_id,
                SessionEvent(type="title_changed", session_id=self.session_id, title=title),
            )

    async def _append(self, *messages: ChatMessage) -> None:
        assert self.session is not None
        for m in messages:
            m.task_id = self.task_id
            m.message_id = m.message_id or self.message_id
        saved = await self.store.append_messages(self.session_id, list(messages))
        self.session.messages.extend(saved)

    # --- rounds ---------------------------------------------------------------------------
    async def _rounds(self, system_prompt: str) -> AsyncIterator[Chunk]:
        assert self.session is not None
        max_rounds = max(1, self.settings.max_tool_rounds)
        for round_index in range(max_rounds):
            offer_tools = round_index < max_rounds - 1
            budget = (
                self.settings.context_window_tokens
                - self.settings.max_output_tokens
                - (self._tools_tokens if offer_tools else 0)
            )
            fitted = await fit_with_summary(
                self.session_id,
                self.user_id,
                system_prompt,
                self.session.to_openai_messages(),
                budget,
            )
            self.step_open = True
            yield StartStep()
            async for chunk in self._model_step(fitted.messages, offer_tools):
                yield chunk
            step, self.step = self.step, _Step()
            calls = [step.calls[i] for i in sorted(step.calls)]
            if step.content or calls:
                await self._append(
                    ChatMessage(
                        role="assistant",
                        content=step.content or None,
                        tool_calls=[_openai_call(c) for c in calls] or None,
                    )
                )
            continue_after = False
            for call in calls:
                async for chunk in self._run_tool(call):
                    yield chunk
                    if isinstance(chunk, (ToolOutputAvailable, ToolOutputError)):
                        continue_after = continue_after or not _answered_later(chunk)
            self.step_open = False
            yield FinishStep()
            if not continue_after:
                return

    async def _model_step(
        self, messages: list[dict[str, Any]], offer_tools: bool
    ) -> AsyncIterator[Chunk]:
        attempt = 0
        while True:
            shown = False
            try:
                async for chunk in self._call_model(messages, offer_tools):
                    shown = True
                    yield chunk
                return
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                retryable = is_retryable(exc) or isinstance(exc, _BrokenStream)
                if not retryable or attempt >= self.settings.llm_max_retries:
                    logger.warning("model call failed for good: %r", exc)
                    if isinstance(exc, _BrokenStream):
                        raise TurnFailed(
                            "The AI model's answer was cut off. Please try again."
                        ) from exc
                    raise TurnFailed(user_message_for(exc)) from exc
                logger.info("model call failed (%r); retry %d", exc, attempt + 1)
                if shown:
                    # The user saw part of this attempt: close it and start a fresh step.
                    for chunk in self._abandon_step():
                        yield chunk
                else:
                    self.step = _Step()
                await asyncio.sleep(retry_delay(attempt, exc))
                attempt += 1

    def _abandon_step(self) -> list[Chunk]:
        closing: list[Chunk] = list(_end_reasoning(self.step))
        if self.step.text_id:
            closing.append(TextEnd(id=self.step.text_id))
        for call in self.step.calls.values():
            if call.announced:
                closing.append(
                    ToolOutputError(
                        tool_call_id=call.id, error_text="The answer was interrupted; retrying."
                    )
                )
        self.step = _Step()
        return [*closing, FinishStep(), StartStep()]

    async def _call_model(
        self, messages: list[dict[str, Any]], offer_tools: bool
    ) -> AsyncIterator[Chunk]:
        request: dict[str, Any] = {
            "model": self.settings.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self.settings.max_output_tokens,
        }
        if offer_tools and (tools := self.tools.openai_tools()):
            request["tools"] = tools
        request.update(provider_metadata(self.user_id, self.session_id))
        stream = await open_stream(request)
        step = self.step
        async with stream:
            async for event in stream:
                if usage := event.get("usage"):
                    step.usage = Usage(
                        prompt_tokens=usage.get("prompt_tokens") or 0,
                        completion_tokens=usage.get("completion_tokens") or 0,
                        total_tokens=usage.get("total_tokens") or 0,
                        model=event.get("model") or self.settings.model,
                    )
                if not (choices := event.get("choices")):
                    continue
                choice = choices[0]
                delta = choice.get("delta") or {}
                if thought := _reasoning(delta):
                    if step.reasoning_id is None:
                        step.reasoning_id = f"reasoning-{uuid.uuid4().hex[:12]}"
                        yield ReasoningStart(id=step.reasoning_id)
                    yield ReasoningDelta(id=step.reasoning_id, delta=thought)
                if content := delta.get("content"):
                    for chunk in _end_reasoning(step):
                        yield chunk
                    if step.text_id is None:
                        step.text_id = f"text-{uuid.uuid4().hex[:12]}"
                        yield TextStart(id=step.text_id)
                    step.text.append(content)
                    yield TextDelta(id=step.text_id, delta=content)
                if pieces := delta.get("tool_calls"):
                    for chunk in _end_reasoning(step):
                        yield chunk
                for piece in pieces or []:
                    call = step.calls.setdefault(piece.get("index", 0), _ToolCall(id=""))
                    if piece.get("id"):
                        call.id = piece["id"]
                    function = piece.get("function") or {}
                    call.name += function.get("name") or ""
                    call.arguments += function.get("arguments") or ""
                    if not call.announced and call.id and call.name:
                        call.announced = True
                        yield ToolInputStart(tool_call_id=call.id, tool_name=call.name)
                if choice.get("finish_reason"):
                    step.finish_reason = choice["finish_reason"]
                # A burst of events arrives in one read and would be parsed without a pause:
                # let this event's chunks go out (one write) before the next is read.
                await asyncio.sleep(0)
        if step.finish_reason is None:
            raise _BrokenStream("the model's stream ended before it finished")
        for chunk in _end_reasoning(step):
            yield chunk
        if step.text_id:
            yield TextEnd(id=step.text_id)
        if step.usage:
            self._count(step.usage)
            await self.store.add_usage(self.session_id, step.usage)

    def _count(self, usage: Usage) -> None:
        self.usage.prompt_tokens += usage.prompt_tokens
        self.usage.completion_tokens += usage.completion_tokens
        self.usage.total_tokens += usage.total_tokens

    # --- tools ------------------------------------------------------------------------------
    async def _run_tool(self, call: _ToolCall) -> AsyncIterator[Chunk]:
        if not call.id:
            call.id = f"call-{uuid.uuid4().hex[:12]}"
        if not call.announced:
            yield ToolInputStart(tool_call_id=call.id, tool_name=call.name)
        yield ToolInputAvailable(
            tool_call_id=call.id, tool_name=call.name, input=_parsed(call.arguments)
        )
        ctx = ToolContext(
            session_id=self.session_id,
            user_id=self.user_id,
            task_id=self.task_id,
            tool_call_id=call.id,
        )
        tool = self.tools.get(call.name)
        if tool is not None and tool.long_running:
            yield await operations.start(
                tool,
                self.tools,
                call.id,
                call.arguments,
                session_id=self.session_id,
                user_id=self.user_id,
                turn_task_id=self.task_id,
                save=self._append,
            )
            return
        result = await self.tools.execute(call.name, call.arguments, ctx)
        if result.ok:
            content = _as_text(result.output)
            yield ToolOutputAvailable(tool_call_id=call.id, output=result.output)
        else:
            content = json.dumps({"error": result.error})
            yield ToolOutputError(
                tool_call_id=call.id, error_text=result.error or "The tool failed."
            )
        await self._append(ChatMessage(role="tool", tool_call_id=call.id, content=content))

    # --- interruption -----------------------------------------------------------------------
    async def _save_partial(self) -> None:
        text = self.step.content
        if not text or self.session is None:
            return
        try:
            # Also after a Redis outage: the store may just be coming back.
            await retrying(
                lambda: self._append(
                    ChatMessage(role="assistant", content=f"{text}\n\n{INTERRUPTED_MARK}")
                ),
                budget_seconds=self.settings.worker_lease_seconds,
            )
        except Exception:
            logger.warning("could not save the interrupted answer", exc_info=True)


@cache
def _schema_tokens(tools: ToolRegistry) -> int:
    """The tool schemas travel with every call that offers them, so they use context too.
    A registry's schemas never change (the default ones are built once per process)."""
    return estimate_tokens(json.dumps(tools.openai_tools()))


def _answered_later(output: Chunk) -> bool:
    """The model answers tool results now; a call already running answers when it ends."""
    return (
        isinstance(output, ToolOutputAvailable)
        and isinstance(output.output, dict)
        and output.output.get("type") == "operation_in_progress"
    )


def _reasoning(delta: dict[str, Any]) -> str | None:
    """The provider's streamed thinking: OpenRouter's `reasoning`, or the
    `reasoning_content` of DeepSeek and vLLM."""
    for name in ("reasoning", "reasoning_content"):
        value = delta.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _end_reasoning(step: _Step) -> list[Chunk]:
    """Thinking ends where the answer or a tool call begins."""
    if step.reasoning_id is None:
        return []
    ended, step.reasoning_id = step.reasoning_id, None
    return [ReasoningEnd(id=ended)]


def _openai_call(call: _ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments or "{}"},
    }


def _parsed(arguments: str) -> Any:
    try:
        return json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return arguments


def _as_text(output: Any) -> str:
    return output if isinstance(output, str) else json.dumps(output, default=str)


def _usage_json(usage: Usage) -> dict[str, int]:
    return {
        "promptTokens": usage.prompt_tokens,
        "completionTokens": usage.completion_tokens,
        "totalTokens": usage.total_tokens,
    }
