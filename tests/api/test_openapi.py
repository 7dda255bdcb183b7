"""`/openapi.json` declares what the routes really answer (chat_core.api.openapi)."""

from __future__ import annotations

import copy
import time
from typing import Annotated, Any

import jwt
import pytest
from chat_core.api.app import ALL_ROUTERS, create_app
from chat_core.api.identity import SignedInUserId, UserId
from chat_core.api.openapi import ErrorResponse, documented, install_openapi, responses
from chat_core.api.paths import SessionId
from chat_core.protocol.chunks import CHUNK_TYPES
from fastapi import APIRouter, FastAPI, Query
from openapi_spec_validator import validate
from pydantic import BaseModel

SECRET = "openapi-test-secret-with-enough-entropy-0123456789"
SSE_OPERATIONS = {
    ("post", "/api/chat"),
    ("post", "/api/chat/sessions/{session_id}/stream"),
    ("get", "/api/chat/sessions/{session_id}/stream"),
    ("get", "/api/chat/{session_id}/stream"),
    ("get", "/api/chat/tasks/{task_id}/stream"),
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(*ALL_ROUTERS).openapi()


def operations(spec: dict[str, Any]):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def test_the_spec_is_valid_openapi_31_besides_the_sse_item_schemas(spec) -> None:
    # `itemSchema` is OpenAPI 3.2's (FastAPI's own SSE routes use it in 3.1 documents too).
    without = copy.deepcopy(spec)
    for _, _, operation in operations(without):
        for answer in operation["responses"].values():
            for media in answer.get("content", {}).values():
                media.pop("itemSchema", None)
    validate(without)
    assert (
        "HTTPValidationError" not in str(spec)
        and "ValidationError" not in spec["components"]["schemas"]
    )


def test_every_error_is_the_error_model_with_its_codes(spec) -> None:
    for method, path, operation in operations(spec):
        assert operation["operationId"].isidentifier(), operation["operationId"]
        for status, answer in operation["responses"].items():
            if int(status) < 400 or path.endswith("/health"):
                continue
            assert answer["x-error-codes"], (method, path, status)
            assert answer["content"] == {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            }, (method, path, status)
            for code in answer["x-error-codes"]:
                assert f"`{code}`" in answer["description"]
    detail = spec["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message"}


def test_json_answers_are_typed_models(spec) -> None:
    for method, path, operation in operations(spec):
        for status, answer in operation["responses"].items():
            for media_type, media in answer.get("content", {}).items():
                if media_type == "application/json":
                    assert "$ref" in media["schema"], (method, path, status)


def test_sse_routes_declare_the_chunk_union(spec) -> None:
    streamed = set()
    for method, path, operation in operations(spec):
        ok = operation["responses"].get("200", {}).get("content", {})
        if "text/event-stream" not in ok:
            assert "itemSchema" not in str(ok)
            continue
        streamed.add((method, path))
        assert list(ok) == ["text/event-stream"]
        item = ok["text/event-stream"]["itemSchema"]
        assert item["required"] == ["data"]
        if path.endswith("/events"):
            assert item["properties"]["event"] == {"const": "session"}
            continue
        chunk, done = item["properties"]["data"]["anyOf"]
        assert chunk["contentSchema"] == {"$ref": "#/components/schemas/UIMessageChunk"}
        assert done == {"const": "[DONE]"}
        assert set(operation["responses"]["200"]["headers"]) == {
            "X-Task-Id",
            "x-vercel-ai-ui-message-stream",
        }
    assert streamed == SSE_OPERATIONS | {("get", "/api/chat/events")}
    # Resumes replay the message in progress from its `start` (it spans the turn's task and
    # its operations' tasks), so only a task's own stream takes a cursor.
    for method, path in SSE_OPERATIONS - {
        ("post", "/api/chat"),
        ("post", "/api/chat/sessions/{session_id}/stream"),
        ("get", "/api/chat/sessions/{session_id}/stream"),
        ("get", "/api/chat/{session_id}/stream"),
    }:
        names = {p["name"] for p in spec["paths"][path][method]["parameters"]}
        assert {"last_message_id", "Last-Event-ID"} <= names, path

    schemas = spec["components"]["schemas"]
    standard, data = schemas["UIMessageChunk"]["anyOf"]
    assert set(standard["discriminator"]["mapping"]) == CHUNK_TYPES
    for ref in standard["discriminator"]["mapping"].values():
        assert ref.removeprefix("#/components/schemas/") in schemas
    assert data == {"$ref": "#/components/schemas/ChunkData"}
    assert schemas["ChunkTextDelta"]["required"] == ["id", "delta"]  # wire names
    assert "toolCallId" in schemas["ChunkToolOutputAvailable"]["properties"]


def test_bearer_is_required_or_optional_as_the_route_allows(spec) -> None:
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    security = {(m, p): o.get("security") for m, p, o in operations(spec)}
    required, optional = [{"bearerAuth": []}], [{}, {"bearerAuth": []}]
    assert security["get", "/api/chat/sessions"] == required
    assert security["patch", "/api/chat/sessions/{session_id}/assign-user"] == required
    assert security["post", "/api/chat/sessions"] == optional
    assert security["get", "/api/chat/sessions/{session_id}"] == optional
    assert security["post", "/api/chat"] == optional
    assert security["get", "/api/chat/health"] is None
    assert security["post", "/api/chat/operations/{operation_id}/complete"] is None


def test_the_webhook_documents_the_standard_webhooks_headers_and_its_body(spec) -> None:
    webhook = spec["paths"]["/api/chat/operations/{operation_id}/complete"]["post"]
    headers = {p["name"]: p for p in webhook["parameters"] if p["in"] == "header"}
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert all(h["required"] for h in headers.values())
    body = webhook["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["operation_id", "success"]
    assert set(webhook["responses"]) == {"200", "202", "401", "404", "413", "422", "503"}


def test_a_new_router_gets_its_declarations_from_its_dependencies() -> None:
    """The pattern for new routes: a model, `responses(...)` for what the body raises, and
    the rest follows from the dependencies."""
    router = APIRouter()

    @router.get("/things/{session_id}", response_model=Thing, responses=responses({410: "GONE"}))
    async def get_thing(session_id: SessionId, user_id: UserId) -> dict[str, str]:
        return {"name": session_id}

    @router.get("/mine")
    async def mine(user_id: SignedInUserId, n: Annotated[int, Query(le=5)] = 1) -> Thing:
        return Thing(name=user_id)

    app = FastAPI()
    install_openapi(app)
    app.include_router(documented(router))
    paths = app.openapi()["paths"]
    thing = paths["/things/{session_id}"]["get"]
    codes = {s: a.get("x-error-codes") for s, a in thing["responses"].items()}
    assert codes == {
        "200": None,
        "401": ["INVALID_TOKEN", "TOKEN_EXPIRED"],
        "404": ["SESSION_NOT_FOUND"],
        "410": ["GONE"],
        "422": ["INVALID_REQUEST"],
        "503": ["JWT_NOT_CONFIGURED", "JWKS_UNAVAILABLE"],
    }
    assert thing["security"] == [{}, {"bearerAuth": []}]
    mine_op = paths["/mine"]["get"]
    assert mine_op["security"] == [{"bearerAuth": []}]
    assert mine_op["responses"]["401"]["x-error-codes"][0] == "UNAUTHENTICATED"
    assert "503" in mine_op["responses"] and "422" in mine_op["responses"]


class Thing(BaseModel):
    name: str


def bearer(user_id: str) -> dict[str, str]:
    token = jwt.encode({"sub": user_id, "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


async def test_the_errors_the_server_answers_are_the_declared_ones(api, settings_env) -> None:
    """Each error answer: its status is declared for the route, its body is the error model
    and its code is one listed there."""
    settings_env(jwt_secret=SECRET, max_message_chars=20, max_body_bytes=2000)
    spec = (await api.get("/openapi.json")).json()
    ada = bearer("ada")
    session = (await api.post("/api/chat/sessions", headers=ada)).json()["id"]
    stream = f"/api/chat/sessions/{session}/stream"
    cases = [
        ("get", "/api/chat/sessions", "/api/chat/sessions", {}, None, "UNAUTHENTICATED"),
        ("get", "/api/chat/sessions", "/api/chat/sessions?limit=0", ada, None, "INVALID_REQUEST"),
        ("get", "/api/chat/sessions", "/api/chat/sessions?offset=-1", ada, None, "INVALID_REQUEST"),
        ("post", "/api/chat/sessions", "/api/chat/sessions",
         {"Authorization": "Bearer nope"}, None, "INVALID_TOKEN"),
        ("get", "/api/chat/sessions/{session_id}", "/api/chat/sessions/nope", ada, None,
         "SESSION_NOT_FOUND"),
        ("post", "/api/chat/sessions/{session_id}/stream", stream, ada, b"{not json",
         "INVALID_JSON"),
        ("post", "/api/chat/sessions/{session_id}/stream", stream, ada, {"message": ""},
         "INVALID_REQUEST"),
        ("post", "/api/chat/sessions/{session_id}/stream", stream, ada, {"message": "x" * 50},
         "MESSAGE_TOO_LARGE"),
        ("post", "/api/chat/sessions/{session_id}/stream", stream, ada, {"message": "x" * 3000},
         "BODY_TOO_LARGE"),
        ("post", "/api/chat", "/api/chat", ada, {"id": session, "messages": []},
         "NO_USER_MESSAGE"),
        ("get", "/api/chat/tasks/{task_id}/stream", "/api/chat/tasks/t1/stream?last_message_id=x",
         ada, None, "INVALID_CURSOR"),
        ("get", "/api/chat/tasks/{task_id}", "/api/chat/tasks/t1", ada, None, "TASK_NOT_FOUND"),
        ("get", "/api/chat/events", "/api/chat/events", {}, None, "UNAUTHENTICATED"),
        ("post", "/api/chat/operations/{operation_id}/complete",
         "/api/chat/operations/op1/complete", {}, {"success": True}, "WEBHOOK_NOT_CONFIGURED"),
    ]  # fmt: skip
    for method, template, url, headers, body, code in cases:
        if isinstance(body, bytes):
            headers = {**headers, "Content-Type": "application/json"}
            answer = await api.request(method, url, headers=headers, content=body)
        else:
            answer = await api.request(method, url, headers=headers, json=body)
        declared = spec["paths"][template][method]["responses"]
        status = str(answer.status_code)
        assert status in declared, (url, answer.status_code, answer.text)
        error = ErrorResponse.model_validate(answer.json())
        assert error.detail.code == code, (url, answer.text)
        assert code in declared[status]["x-error-codes"], (url, status, code)


async def test_a_method_a_path_lacks_is_405_with_allow(api) -> None:
    answer = await api.put("/api/chat/config/ttl")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET"
    assert answer.json()["detail"]["code"] == "METHOD_NOT_ALLOWED"


async def test_a_405_allows_every_method_of_a_path_with_several_routes(api) -> None:
    spec = (await api.get("/openapi.json")).json()["paths"]
    for template, concrete in [
        ("/api/chat/sessions/{session_id}", "/api/chat/sessions/s1"),
        ("/api/chat/users/me/understanding", "/api/chat/users/me/understanding"),
    ]:
        methods = {m.upper() for m in spec[template]}
        assert len(methods) > 1, template  # a path the first route alone misdescribes
        answer = await api.request("TRACE", concrete)
        assert answer.status_code == 405
        assert set(answer.headers["allow"].split(", ")) == methods


async def test_openapi_describes_every_route(api):
    spec = (await api.get("/openapi.json")).json()
    assert {
        "/api/chat/sessions", "/api/chat/sessions/{session_id}", "/api/chat/sessions/{session_id}/stream",
        "/api/chat/sessions/{session_id}/assign-user", "/api/chat", "/api/chat/{session_id}/stream",
        "/api/chat/sessions/{session_id}/messages", "/api/chat/{session_id}/stop",
        "/api/chat/tasks/{task_id}", "/api/chat/tasks/{task_id}/stream", "/api/chat/tasks/{task_id}/cancel",
        "/api/chat/operations/{operation_id}/complete", "/api/chat/events", "/api/chat/health", "/api/chat/config/ttl",
    } <= set(spec["paths"])  # fmt: skip
    assert (await api.get("/docs")).status_code == 200
