"""Every error answer has one shape: `{"detail": {"code": "...", "message": "..."}}`.

    raise ApiError(404, "SESSION_NOT_FOUND", "No such chat session.")

Another user's session or task is "not found", word for word like one that does not exist.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import cache

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from ..fanout import ReadersBusy
from ..settings import get_settings


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"detail": {"code": code, "message": message}}, status_code=status, headers=headers
    )


SESSION_NOT_FOUND = ApiError(404, "SESSION_NOT_FOUND", "No such chat session.")
TASK_NOT_FOUND = ApiError(404, "TASK_NOT_FOUND", "No such task.")
TASK_EXPIRED = ApiError(
    410, "TASK_EXPIRED", "This task has expired; its stream can no longer be replayed."
)
UNAUTHENTICATED = ApiError(401, "UNAUTHENTICATED", "Sign in to do this.")

logger = logging.getLogger(__name__)

# What FastAPI says (400) when a body is not JSON text it can parse: invalid UTF-8, or
# nesting too deep for the parser. The contract calls that invalid input: 422.
_UNPARSABLE_BODY = "There was an error parsing the body"
STORE_RETRY_AFTER_SECONDS = 5
_STORE_DOWN = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    # What a cluster client raises when no node answers its first CLUSTER SLOTS.
    redis.exceptions.RedisClusterException,
)

_STATUS_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "BODY_TOO_LARGE",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(ReadersBusy)
    async def _readers_busy(_: Request, exc: ReadersBusy) -> JSONResponse:
        # Overload, not failure: the client retries, and a running turn goes on meanwhile.
        retry_after = get_settings().readers_retry_after_seconds
        return error_response(
            503,
            "READERS_BUSY",
            f"This server is reading as many streams as it can; retry in {retry_after} s.",
            {"Retry-After": str(retry_after)},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return error_response(422, "INVALID_JSON", "The request body is not valid JSON.")
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        problem = first.get("msg", "invalid input")
        return error_response(422, "INVALID_REQUEST", f"{where}: {problem}" if where else problem)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
            return error_response(422, "INVALID_JSON", "The request body is not valid JSON.")
        code = _STATUS_CODES.get(exc.status_code, "ERROR")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # it must say what is Allowed (RFC 9110)
            headers["Allow"] = _allowed(request, headers.get("Allow", ""))
        return error_response(exc.status_code, code, str(exc.detail), headers)

    async def _store_down(_: Request, exc: Exception) -> JSONResponse:
        # A blip, not a failure of the request: the client retries, nothing was half done.
        logger.warning("Redis unreachable: %s: %s", type(exc).__name__, exc)
        return error_response(
            503,
            "STORE_UNAVAILABLE",
            f"The chat store cannot be reached right now; retry in {STORE_RETRY_AFTER_SECONDS} s.",
            {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
        )

    for kind in _STORE_DOWN:
        app.add_exception_handler(kind, _store_down)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error", exc_info=exc)
        return error_response(500, "INTERNAL_ERROR", "Something went wrong on our side.")


def _allowed(request: Request, starlettes: str) -> str:
    """Every method the path has. Starlette's 405 names only those of the first route whose
    path matches, and a path here often has several routes (GET, PATCH and DELETE of a
    session); the API's own description lists them all."""
    methods = {m.strip() for m in starlettes.split(",") if m.strip()}
    for pattern, path_methods in _path_methods(request.app):
        if pattern.match(request.url.path):
            methods |= path_methods
    return ", ".join(sorted(methods))


@cache
def _path_methods(app: FastAPI) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    return [
        (compile_path(path)[0], frozenset(method.upper() for method in operations))
        for path, operations in app.openapi()["paths"].items()
    ]
