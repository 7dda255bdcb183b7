"""`GET /health` (checks Redis with a PING, writes nothing) and `GET /config/ttl` (how
long a finished turn stays replayable, i.e. the reconnect window)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..redis_client import get_redis
from ..settings import get_settings

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["healthy", "unhealthy"]
    redis: str = Field(description="`ok`, or the kind of error reaching it")


class StreamTtl(BaseModel):
    stream_ttl_seconds: int
    stream_ttl_ms: int


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "Redis cannot be reached"}},
)
async def health() -> JSONResponse:
    try:
        await get_redis().ping()
    except Exception as exc:
        return JSONResponse({"status": "unhealthy", "redis": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "healthy", "redis": "ok"})


@router.get("/config/ttl", response_model=StreamTtl)
async def stream_ttl() -> dict[str, Any]:
    seconds = get_settings().stream_ttl_seconds
    return {"stream_ttl_seconds": seconds, "stream_ttl_ms": seconds * 1000}
