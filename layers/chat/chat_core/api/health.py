"""`GET /health` (checks Redis with a PING, writes nothing) and `GET /config/ttl` (how
long a finished turn stays replayable, i.e. the reconnect window)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..redis_client import get_redis
from ..settings import get_settings

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> JSONResponse:
    try:
        await get_redis().ping()
    except Exception as exc:
        return JSONResponse({"status": "unhealthy", "redis": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "healthy", "redis": "ok"})


@router.get("/config/ttl")
async def stream_ttl() -> dict[str, Any]:
    seconds = get_settings().stream_ttl_seconds
    return {"stream_ttl_seconds": seconds, "stream_ttl_ms": seconds * 1000}
