"""What each route answers, declared once, so `/openapi.json` is a spec a client can be
generated from and schemathesis can hold the server to.

    @router.get("/tasks/{task_id}", response_model=TaskStatus,
                responses=responses({410: "TASK_EXPIRED"}))
    @router.get("/tasks/{task_id}/stream", response_class=EventStream,
                responses=responses({410: "TASK_EXPIRED"}, stream=UI_MESSAGE_STREAM, empty=...))

    @declares({404: "SESSION_NOT_FOUND"})          # on a dependency: every route using it
    def _session_id(session_id: str) -> str: ...   #   declares what it raises

A route declares only what its own body can answer. What its dependencies raise (marked
with `@declares`: the caller's identity, the id checkers), a bearer token (required or
optional, from the identity dependency), 422 for invalid input and 413 for a body over
the limit are added by `documented(router)` (which `create_app` applies) from the route
itself, so they cannot be forgotten. Every error is `ErrorResponse`, `{"detail": {"code", "message"}}`, with its codes
listed under each status (`x-error-codes`, and in the description); FastAPI's
`HTTPValidationError` never appears, since it is not what a client gets.

SSE bodies are `text/event-stream` described per event with `itemSchema`, as OpenAPI 3.2
does and FastAPI's own SSE routes do in their 3.1 documents (schemathesis checks every event
against it): an `id`, and a `data` holding JSON of the named schema, here the AI SDK
UI-message-stream chunk union. Generators that predate 3.2 see a body without a schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from fastapi import APIRouter, FastAPI, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, TypeAdapter

from ..notifications import SessionEvent
from ..protocol.chunks import Data, StandardChunk

REF = "#/components/schemas/"
BEARER = "bearerAuth"
ErrorCodes = Mapping[int, str | Iterable[str]]
F = TypeVar("F", bound=Callable[..., Any])


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable, e.g. SESSION_NOT_FOUND.")
    message: str = Field(description="For people; the wording may change.")


class ErrorResponse(BaseModel):
    """Every error the API answers."""

    detail: ErrorDetail


class EventStream(Response):
    """`response_class` of SSE routes, for the docs: handlers return the real response."""

    media_type = "text/event-stream"


@dataclass(frozen=True)
class SseStream:
    """An SSE body whose events carry JSON of `item` in `data:`."""

    name: str
    item: Any
    description: str
    event: str | None = None
    done: bool = False
    """The last event's data is `[DONE]`, not JSON."""
    prefix: str = ""
    """Prepended to the item's own model names in components (a chunk `Error` is not ours)."""
    headers: Mapping[str, Any] | None = None
    """Response headers every such stream carries."""

    def schema_defs(self) -> dict[str, Any]:
        schema = TypeAdapter(self.item).json_schema(
            ref_template=f"{REF}{self.prefix}{{model}}", mode="serialization"
        )
        defs = {
            f"{self.prefix}{name}": {**d, "title": f"{self.prefix}{name}"}
            for name, d in schema.pop("$defs", {}).items()
        }
        return {**defs, self.name: schema}

    def media(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": f"{REF}{self.name}"},
        }
        if self.done:
            data = {"anyOf": [data, {"const": "[DONE]"}]}
        properties: dict[str, Any] = {"data": data, "id": {"type": "string"}}
        if self.event:
            properties["event"] = {"const": self.event}
        item = {"type": "object", "required": ["data"], "properties": properties}
        return {"itemSchema": {**item, "description": self.description}}


UI_MESSAGE_STREAM = SseStream(
    name="UIMessageChunk",
    item=Union[StandardChunk, Data],  # noqa: UP007 - a value: `|` would not build a Union of these
    prefix="Chunk",
    done=True,
    headers={
        "X-Task-Id": {
            "description": "The task this stream is",
            "required": True,
            "schema": {"type": "string"},
        },
        "x-vercel-ai-ui-message-stream": {
            "required": True,
            "schema": {"type": "string", "const": "v1"},
        },
    },
    description=(
        "The Vercel AI SDK UI message stream (`x-vercel-ai-ui-message-stream: v1`). Each event "
        "is `id: <stream entry id>` (the cursor to resume from, with Last-Event-ID or "
        "?last_message_id=) and `data: <UIMessageChunk JSON>`; idle periods carry "
        "`: heartbeat` comments; after the `finish` chunk the last event is `data: [DONE]`."
    ),
)
SESSION_EVENTS_STREAM = SseStream(
    name="SessionEvent",
    item=SessionEvent,
    event="session",
    description=(
        "The caller's session events: each is `event: session` and `data: <SessionEvent JSON>`; "
        "`: heartbeat` comments while idle. The stream ends after the read budget; reconnect."
    ),
)
_STREAMS = (UI_MESSAGE_STREAM, SESSION_EVENTS_STREAM)

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer"},
    }
}


def _codes(errors: ErrorCodes) -> dict[int, list[str]]:
    return {s: [c] if isinstance(c, str) else list(c) for s, c in errors.items()}


def responses(
    errors: ErrorCodes | None = None,
    *,
    stream: SseStream | None = None,
    empty: str | None = None,
) -> dict[int | str, dict[str, Any]]:
    """A route's own answers for FastAPI's `responses=`: error codes by status, the SSE body
    of a `response_class=EventStream` route, and `empty` = why it may answer 204."""
    out: dict[int | str, dict[str, Any]] = {
        status: {"x-error-codes": codes} for status, codes in _codes(errors or {}).items()
    }
    if stream is not None:
        ok: dict[str, Any] = {"content": {"text/event-stream": stream.media()}}
        if stream.headers:
            ok["headers"] = dict(stream.headers)
        out[200] = ok
    if empty is not None:
        out[204] = {"description": empty}
    return out


def declares(errors: ErrorCodes, *, bearer: str | None = None) -> Callable[[F], F]:
    """Mark a dependency with the errors it raises (and, for identity, whether a bearer token
    is `"optional"` or `"required"`); every route that depends on it declares them."""

    def mark(dependency: F) -> F:
        dependency.__api_errors__ = _codes(errors)  # type: ignore[attr-defined]
        if bearer is not None:
            dependency.__api_bearer__ = bearer  # type: ignore[attr-defined]
        return dependency

    return mark


def webhook_request(body: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` of a Standard Webhooks receiver: its signed headers and JSON body."""
    headers = {
        "webhook-id": "Unique per message; a repeat is answered again without effect",
        "webhook-timestamp": "Unix seconds; more than 5 minutes off is refused",
        "webhook-signature": "`v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'>`, "
        "space-separated when several",
    }
    return {
        "parameters": [
            {
                "name": name,
                "in": "header",
                "required": True,
                "description": text,
                "schema": {"type": "string"},
            }
            for name, text in headers.items()
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": body.model_json_schema()}},
        },
    }


# --- what every route gets from what it depends on ----------------------------------------


def documented(router: APIRouter) -> APIRouter:
    """Complete the declarations of the router's routes from their dependencies and input;
    `create_app` does it for every router it mounts (call it on any other you include)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and not getattr(route, "_documented", False):
            _document(route)
            route._documented = True  # type: ignore[attr-defined]
    return router


def _document(route: APIRoute) -> None:
    implied: dict[int, list[str]] = {}
    bearer: str | None = None
    dependants = [route.dependant, *_sub_dependants(route.dependant)]
    for call in (d.call for d in dependants[1:]):
        for status, codes in getattr(call, "__api_errors__", {}).items():
            implied.setdefault(status, []).extend(codes)
        marked = getattr(call, "__api_bearer__", None)
        if marked and bearer != "required":
            bearer = marked
    if route.body_field is not None:
        implied.setdefault(400, []).append("BAD_REQUEST")  # FastAPI's, for a body not UTF-8
        implied.setdefault(413, []).append("BODY_TOO_LARGE")
        implied.setdefault(422, []).append("INVALID_JSON")
    # As FastAPI would declare its own 422 (which is not the body clients get).
    if route.body_field is not None or any(
        d.path_params or d.query_params or d.header_params or d.cookie_params for d in dependants
    ):
        implied.setdefault(422, []).append("INVALID_REQUEST")

    answers = route.responses
    for status, codes in implied.items():
        answer = answers.setdefault(status, {})
        answer["x-error-codes"] = [*answer.get("x-error-codes", []), *codes]
    for status, answer in answers.items():
        codes = answer.get("x-error-codes")
        if codes is None:
            continue
        answer["x-error-codes"] = codes = list(dict.fromkeys(codes))
        answer["description"] = "Error codes: " + ", ".join(f"`{c}`" for c in codes) + "."
        answer["content"] = {"application/json": {"schema": {"$ref": f"{REF}ErrorResponse"}}}
        if int(status) in (429, 503):
            answer["headers"] = _RETRY_AFTER
    route.responses = dict(sorted(answers.items(), key=lambda item: str(item[0])))
    if bearer is not None:
        security: list[dict[str, list[str]]] = (
            [{BEARER: []}] if bearer == "required" else [{}, {BEARER: []}]
        )
        route.openapi_extra = {**(route.openapi_extra or {}), "security": security}


def _sub_dependants(dependant: Any) -> Iterable[Any]:
    for sub in dependant.dependencies:
        yield sub
        yield from _sub_dependants(sub)


def install_openapi(app: FastAPI) -> None:
    """The schemas and the security scheme the declarations above refer to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            error = ErrorResponse.model_json_schema(ref_template=REF + "{model}")
            schemas.update({**error.pop("$defs"), "ErrorResponse": error})
            for stream in _STREAMS:
                schemas.update(stream.schema_defs())
            spec["components"]["securitySchemes"] = {BEARER: _BEARER_SCHEME}
            for operations in spec["paths"].values():
                for operation in operations.values():
                    for answer in operation["responses"].values():
                        for media in answer.get("content", {}).values():
                            if "itemSchema" in media:  # FastAPI's `string` would be the stream
                                media.pop("schema", None)
        schema = app.openapi_schema
        assert schema is not None  # generate() keeps what it built
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "The user's JWT (subject = user id). Where anonymous use is allowed the "
    "token is optional, but one that is sent must be valid (else 401).",
}
