"""The AI SDK "UI message stream" chunks, exactly as its strict schema accepts them.

    chunk = TextDelta(id="t1", delta="Hel")
    chunk.to_json()                 # '{"type":"text-delta","id":"t1","delta":"Hel"}'
    parse_chunk(chunk.to_json())    # TextDelta(id='t1', delta='Hel')

`ai` 5.0 and 6.0 before 6.0.231 validate with `z.strictObject`: one extra key, a null, or an
unknown `type` and the client's chat goes to `error`. So every model here forbids extra
fields, serializes with camelCase names and drops unset optionals. Anything else we want to
send (usage, task ids) travels as a `data-<name>` chunk.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator


class Chunk(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    type: str

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


class Start(Chunk):
    type: Literal["start"] = "start"
    message_id: str | None = Field(None, alias="messageId")


class StartStep(Chunk):
    type: Literal["start-step"] = "start-step"


class TextStart(Chunk):
    type: Literal["text-start"] = "text-start"
    id: str


class TextDelta(Chunk):
    type: Literal["text-delta"] = "text-delta"
    id: str
    delta: str


class TextEnd(Chunk):
    type: Literal["text-end"] = "text-end"
    id: str


class ReasoningStart(Chunk):
    type: Literal["reasoning-start"] = "reasoning-start"
    id: str


class ReasoningDelta(Chunk):
    type: Literal["reasoning-delta"] = "reasoning-delta"
    id: str
    delta: str


class ReasoningEnd(Chunk):
    type: Literal["reasoning-end"] = "reasoning-end"
    id: str


class ToolInputStart(Chunk):
    type: Literal["tool-input-start"] = "tool-input-start"
    tool_call_id: str = Field(alias="toolCallId")
    tool_name: str = Field(alias="toolName")


class ToolInputAvailable(Chunk):
    type: Literal["tool-input-available"] = "tool-input-available"
    tool_call_id: str = Field(alias="toolCallId")
    tool_name: str = Field(alias="toolName")
    input: Any


class ToolOutputAvailable(Chunk):
    type: Literal["tool-output-available"] = "tool-output-available"
    tool_call_id: str = Field(alias="toolCallId")
    output: Any


class ToolOutputError(Chunk):
    type: Literal["tool-output-error"] = "tool-output-error"
    tool_call_id: str = Field(alias="toolCallId")
    error_text: str = Field(alias="errorText")


class FinishStep(Chunk):
    type: Literal["finish-step"] = "finish-step"


class Finish(Chunk):
    type: Literal["finish"] = "finish"


class Error(Chunk):
    type: Literal["error"] = "error"
    error_text: str = Field(alias="errorText")


_DATA_TYPE = re.compile(r"^data-[A-Za-z0-9_-]+$")


class Data(Chunk):
    """`data-<name>`: our own payloads, which AI SDK clients surface through `onData`."""

    type: str
    data: Any
    id: str | None = None

    @field_validator("type")
    @classmethod
    def _named_data(cls, value: str) -> str:
        if not _DATA_TYPE.match(value):
            raise ValueError("a data chunk's type is 'data-<name>'")
        return value


StandardChunk = Annotated[
    Start
    | StartStep
    | TextStart
    | TextDelta
    | TextEnd
    | ReasoningStart
    | ReasoningDelta
    | ReasoningEnd
    | ToolInputStart
    | ToolInputAvailable
    | ToolOutputAvailable
    | ToolOutputError
    | FinishStep
    | Finish
    | Error,
    Field(discriminator="type"),
]
_standard: TypeAdapter[StandardChunk] = TypeAdapter(StandardChunk)
CHUNK_TYPES = frozenset(
    m.model_fields["type"].default
    for m in (
        Start, StartStep, TextStart, TextDelta, TextEnd, ReasoningStart, ReasoningDelta,
        ReasoningEnd, ToolInputStart, ToolInputAvailable,
        ToolOutputAvailable, ToolOutputError, FinishStep, Finish, Error,
    )
)  # fmt: skip


class ChunkParseError(ValueError):
    """Stored JSON that is not a chunk of the protocol."""


def parse_chunk(raw: str | bytes | dict[str, Any]) -> Chunk:
    """Rebuild a chunk from its wire JSON; unknown types and malformed chunks raise."""
    try:
        data = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except json.JSONDecodeError as exc:
        raise ChunkParseError(f"not JSON: {exc.msg}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ChunkParseError("a chunk is a JSON object with a string 'type'")
    kind = data["type"]
    try:
        if kind in CHUNK_TYPES:
            return _standard.validate_python(data)
        if kind.startswith("data-"):
            return Data.model_validate(data)
    except ValidationError as exc:
        raise ChunkParseError(f"invalid {kind!r} chunk: {exc.errors()[0]['msg']}") from exc
    raise ChunkParseError(
        f"unknown chunk type {kind!r}; expected one of {sorted(CHUNK_TYPES)} or 'data-<name>'"
    )


FINISH_JSON = Finish().to_json()
