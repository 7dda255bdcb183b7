"""chat_core.tools.base: the tool registry, what the model is shown of each tool, and how every
way a call can go wrong comes back as a failed outcome with a readable message instead of an
exception."""

from __future__ import annotations

import json
import logging

import pytest
from chat_core.tools.base import Tool, ToolContext, ToolError, ToolOutcome, ToolRegistry
from pydantic import BaseModel, Field

CTX = ToolContext(session_id="session-1", user_id="user-1", task_id="task-1", tool_call_id="call-1")


class Repeat(Tool):
    name = "repeat"
    description = "Repeat a text a few times."

    class Args(BaseModel):
        text: str = Field(description="What to repeat.")
        times: int = Field(default=1, ge=1, le=3)

    async def run(self, ctx: ToolContext, args: Args) -> dict[str, str]:
        return {"text": " ".join([args.text] * args.times), "task_id": ctx.task_id}


class Ping(Tool):
    name = "ping"
    description = "Answer pong."

    class Args(BaseModel):
        pass

    async def run(self, ctx: ToolContext, args: Args) -> str:
        return "pong"


class Closed(Tool):
    name = "closed"
    description = "Always refuses."

    class Args(BaseModel):
        pass

    async def run(self, ctx: ToolContext, args: Args) -> None:
        raise ToolError("The shop is closed on Sundays.")


class Broken(Tool):
    name = "broken"
    description = "Always crashes."

    class Args(BaseModel):
        pass

    async def run(self, ctx: ToolContext, args: Args) -> None:
        raise RuntimeError("connection string postgres://admin:hunter2@db")


@pytest.fixture
def registry() -> ToolRegistry:
    return ToolRegistry([Repeat(), Ping(), Closed(), Broken()])


def test_openai_tools_are_functions_with_each_tools_json_schema(registry: ToolRegistry) -> None:
    tools = registry.openai_tools()

    assert [tool["type"] for tool in tools] == ["function"] * 4
    assert [tool["function"]["name"] for tool in tools] == ["repeat", "ping", "closed", "broken"]
    repeat = tools[0]["function"]
    assert repeat["description"] == "Repeat a text a few times."
    parameters = repeat["parameters"]
    assert parameters["type"] == "object"
    assert parameters["required"] == ["text"]
    assert parameters["properties"]["text"]["type"] == "string"
    assert parameters["properties"]["text"]["description"] == "What to repeat."
    times = parameters["properties"]["times"]
    assert times["type"] == "integer"
    assert (times["minimum"], times["maximum"], times["default"]) == (1, 3, 1)
    assert json.loads(json.dumps(tools)) == tools


def test_lookup_by_name(registry: ToolRegistry) -> None:
    assert "repeat" in registry
    assert "nope" not in registry
    assert isinstance(registry.get("repeat"), Repeat)
    assert registry.get("nope") is None


@pytest.mark.parametrize(
    "raw_arguments",
    ['{"text": "hi", "times": 2}', {"text": "hi", "times": 2}, '{"text": "hi", "times": "2"}'],
    ids=["json", "dict", "numeric-string"],
)
async def test_a_valid_call_returns_the_output(registry: ToolRegistry, raw_arguments) -> None:
    outcome = await registry.execute("repeat", raw_arguments, CTX)

    assert outcome.ok
    assert outcome.output == {"text": "hi hi", "task_id": "task-1"}
    assert outcome.error is None


@pytest.mark.parametrize("raw_arguments", ["", None, "{}"])
async def test_no_arguments_is_an_empty_object(registry: ToolRegistry, raw_arguments) -> None:
    outcome = await registry.execute("ping", raw_arguments, CTX)

    assert (outcome.ok, outcome.output) == (True, "pong")


@pytest.mark.parametrize(
    ("raw_arguments", "expected"),
    [
        ('{"text": "hi"', ["repeat", "not valid JSON"]),
        ("{}", ["repeat", "text", "Field required"]),
        ('{"text": 5}', ["repeat", "text", "valid string"]),
        ('{"text": "hi", "times": "many"}', ["repeat", "times", "valid integer"]),
        ('{"text": "hi", "times": 9}', ["repeat", "times", "less than or equal to 3"]),
        ('{"text": "hi", "times": 0}', ["repeat", "times", "greater than or equal to 1"]),
        ('["hi", 2]', ["repeat", "arguments", "valid dictionary"]),
    ],
    ids=["broken-json", "missing", "wrong-type", "not-a-number", "too-big", "too-small", "array"],
)
async def test_bad_arguments_fail_with_what_is_wrong(
    registry: ToolRegistry, raw_arguments: str, expected: list[str]
) -> None:
    outcome = await registry.execute("repeat", raw_arguments, CTX)

    assert not outcome.ok
    assert outcome.output is None
    for fragment in expected:
        assert fragment in outcome.error


async def test_an_unknown_tool_fails_and_lists_the_real_ones(registry: ToolRegistry) -> None:
    outcome = await registry.execute("delete_everything", "{}", CTX)

    assert not outcome.ok
    assert "delete_everything" in outcome.error
    for name in ("broken", "closed", "ping", "repeat"):
        assert name in outcome.error


async def test_a_tool_error_reaches_the_user_word_for_word(registry: ToolRegistry) -> None:
    outcome = await registry.execute("closed", "{}", CTX)

    assert (outcome.ok, outcome.output) == (False, None)
    assert outcome.error == "The shop is closed on Sundays."


async def test_an_unexpected_exception_fails_without_leaking_its_details(
    registry: ToolRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="chat_core.tools.base"):
        outcome = await registry.execute("broken", "{}", CTX)

    assert not outcome.ok
    assert "broken" in outcome.error
    assert "hunter2" not in outcome.error
    # Operators still get the traceback the user is spared.
    logged = [record.exc_info[1] for record in caplog.records if record.exc_info]
    assert any("hunter2" in str(exc) for exc in logged)


# --- results on their way out: redaction and the tool's post-processing -----------------------
class Login(Tool):
    name = "login"
    description = "Log in somewhere and report back."
    saved: list = []

    class Args(BaseModel):
        fail_saving: bool = False

    async def run(self, ctx: ToolContext, args: Args) -> dict:
        self.fail_saving = args.fail_saving
        return {"user": "ada", "session": {"access_token": "tok-1", "expires_in": 60}}

    async def postprocess_result(self, ctx: ToolContext, result: dict) -> dict:
        if self.fail_saving:
            raise RuntimeError("the store is down")
        self.saved.append(result)
        return {"type": "logged_in", "as": result["user"], "api_key": "added-by-mistake"}


async def test_a_result_is_redacted_then_post_processed_then_redacted_again():
    tool = Login()
    outcome = await ToolRegistry([tool]).execute("login", "{}", CTX)
    # What the post-processing got (and might save) had its secrets removed already...
    assert tool.saved == [
        {"user": "ada", "session": {"access_token": "[REDACTED]", "expires_in": 60}}
    ]
    # ...and what it returns is redacted too.
    assert outcome == (True, {"type": "logged_in", "as": "ada", "api_key": "[REDACTED]"}, None)


async def test_a_post_processing_failure_is_the_tools_readable_failure(caplog):
    outcome = await ToolRegistry([Login()]).execute("login", '{"fail_saving": true}', CTX)
    assert outcome.ok is False and outcome.error == "The login result could not be processed."
    assert "the store is down" in caplog.text


async def test_a_failed_outcome_passes_finish_unchanged():
    failed = ToolOutcome(False, None, "The shop is closed on Sundays.")
    assert await ToolRegistry([Login()]).finish("login", CTX, failed) == failed
