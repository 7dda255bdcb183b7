"""Tools the model can call: a name, a description, a pydantic argument model (its JSON
schema is what the model sees) and an async `run`.

    class Echo(Tool):
        name = "echo"
        description = "Repeat the text back."
        class Args(BaseModel):
            text: str
        async def run(self, ctx: ToolContext, args: Args) -> dict:
            return {"text": args.text}

    tools = ToolRegistry([Echo()])
    outcome = await tools.execute("echo", '{"text": "hi"}', ctx)   # ToolOutcome(ok=True, ...)

Whatever goes wrong — an unknown tool, arguments that do not match the model, a `ToolError`,
an unexpected exception — comes back as a failed outcome with a message the model can read
and the user can see. A tool call never crashes the turn.

A result on its way to the stream, the session and the model goes through `finish`: its
sensitive keys are redacted (`results.redact`), then the tool's `postprocess_result` may save
it somewhere and rewrite it. `execute` does this itself; a result that arrives later (a
delegated operation's webhook) is passed to `finish` where it is applied.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, ValidationError

from .results import redact

logger = logging.getLogger(__name__)


class ToolError(Exception):
    """A failure whose message is meant for the model and the user."""


@dataclass
class ToolContext:
    session_id: str
    user_id: str | None
    task_id: str
    tool_call_id: str
    operation_id: str | None = None
    heartbeat: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)
    """Long-running tools call this now and then so readers see the task is alive."""

    @classmethod
    def for_operation(
        cls, task: Any, heartbeat: Callable[[], Awaitable[None]] | None = None
    ) -> ToolContext:
        """The context of a long-running tool: its own operation task (a registry.TaskRecord)."""
        return cls(
            session_id=task.session_id,
            user_id=task.user_id,
            task_id=task.task_id,
            tool_call_id=task.tool_call_id,
            operation_id=task.operation_id,
            heartbeat=heartbeat,
        )


class Tool:
    name: ClassVar[str]
    description: ClassVar[str]
    Args: ClassVar[type[BaseModel]]
    long_running: ClassVar[bool] = False
    """Gets its own operation id and task; the turn answers at once with 'operation started'."""
    delegated: ClassVar[bool] = False
    """Long-running and finished by an external service's webhook, not by `run` returning."""

    async def run(self, ctx: ToolContext, args: Any) -> Any:
        raise NotImplementedError

    async def postprocess_result(self, ctx: ToolContext, result: Any) -> Any:
        """What a successful result becomes (already redacted). Must be safe to repeat: a
        redelivered result comes through again."""
        return result

    @classmethod
    def openai_schema(cls) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": cls.name,
                "description": cls.description,
                "parameters": cls.Args.model_json_schema(),
            },
        }


class ToolOutcome(NamedTuple):
    ok: bool
    output: Any = None
    error: str | None = None


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools = {tool.name: tool for tool in tools}
        # The schemas never change and building them with pydantic is not free: once.
        self._schemas = [tool.openai_schema() for tool in self._tools.values()]

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def openai_tools(self) -> list[dict[str, Any]]:
        return self._schemas

    def parse_args(self, name: str, raw_arguments: str | dict[str, Any] | None) -> BaseModel:
        """The validated arguments, or ToolError with what the model got wrong."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            raise ToolError(f"There is no tool named {name!r}. Available tools: {known}.")
        try:
            data = (
                json.loads(raw_arguments or "{}")
                if isinstance(raw_arguments, str)
                else raw_arguments or {}
            )
        except json.JSONDecodeError as exc:
            raise ToolError(f"The arguments for {name} are not valid JSON ({exc.msg}).") from exc
        try:
            return tool.Args.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()
            )
            raise ToolError(f"Invalid arguments for {name}: {problems}.") from exc

    async def execute(
        self, name: str, raw_arguments: str | dict[str, Any] | None, ctx: ToolContext
    ) -> ToolOutcome:
        try:
            args = self.parse_args(name, raw_arguments)
            output = await self._tools[name].run(ctx, args)
        except ToolError as exc:
            return ToolOutcome(ok=False, error=str(exc))
        except Exception:
            logger.exception("tool %s failed", name)
            return ToolOutcome(ok=False, error=f"The {name} tool failed unexpectedly.")
        return await self.finish(name, ctx, ToolOutcome(ok=True, output=output))

    async def finish(self, name: str, ctx: ToolContext, outcome: ToolOutcome) -> ToolOutcome:
        """The outcome as the stream, the session and the model get it. Redaction comes
        first, so what post-processing saves holds no secret either, and again after it;
        a post-processing failure is the tool's failure, told in words the user can read."""
        if not outcome.ok:
            return outcome
        output = redact(outcome.output)
        tool = self._tools.get(name)
        if tool is not None:
            try:
                output = redact(await tool.postprocess_result(ctx, output))
            except ToolError as exc:
                return ToolOutcome(ok=False, error=str(exc))
            except Exception:
                logger.exception("post-processing the %s result failed", name)
                return ToolOutcome(ok=False, error=f"The {name} result could not be processed.")
        return ToolOutcome(ok=True, output=output)
