"""The wire protocol: AI SDK UI-message-stream chunks and their SSE framing."""

from .chunks import (
    Chunk,
    ChunkParseError,
    Data,
    Error,
    Finish,
    FinishStep,
    Start,
    StartStep,
    TextDelta,
    TextEnd,
    TextStart,
    ToolInputAvailable,
    ToolInputStart,
    ToolOutputAvailable,
    ToolOutputError,
    parse_chunk,
)

__all__ = [
    "Chunk",
    "ChunkParseError",
    "Data",
    "Error",
    "Finish",
    "FinishStep",
    "Start",
    "StartStep",
    "TextDelta",
    "TextEnd",
    "TextStart",
    "ToolInputAvailable",
    "ToolInputStart",
    "ToolOutputAvailable",
    "ToolOutputError",
    "parse_chunk",
]
