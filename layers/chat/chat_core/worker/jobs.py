"""What the worker can be asked to do, as the JSON an async invocation carries.

job = parse_job({"kind": "run_turn", "task_id": "…"})
job.model_dump()          # the Lambda event payload
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter


class SessionRef(BaseModel):
    """The task's session and its owner as the dispatcher knew them: the worker reads the
    session beside its claim instead of after it (and trusts it only if the claimed task
    agrees)."""

    session_id: str
    user_id: str | None = None


class RunTurn(BaseModel):
    """Answer the latest message of the task's session, writing every chunk to the task."""

    kind: Literal["run_turn"] = "run_turn"
    task_id: str
    context: dict[str, Any] | None = None
    message_id: str | None = None
    """The assistant UIMessage's id (the stream's `start.messageId`)."""
    session: SessionRef | None = None


class RunTool(BaseModel):
    """Run a long-running (not delegated) tool to the end, then continue the conversation."""

    kind: Literal["run_tool"] = "run_tool"
    task_id: str


class ContinueOperation(BaseModel):
    """An operation's result landed in its task: write the model's continuation."""

    kind: Literal["continue_operation"] = "continue_operation"
    task_id: str
    session: SessionRef | None = None


class DrainCompletions(BaseModel):
    """Process whatever the completions stream holds (a webhook just added to it)."""

    kind: Literal["drain_completions"] = "drain_completions"


Job = Annotated[
    RunTurn | RunTool | ContinueOperation | DrainCompletions, Field(discriminator="kind")
]
_job: TypeAdapter[Job] = TypeAdapter(Job)


def parse_job(payload: dict[str, Any] | str | bytes) -> Job:
    if isinstance(payload, (str, bytes)):
        return _job.validate_json(payload)
    return _job.validate_python(payload)
