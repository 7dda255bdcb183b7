"""`POST /api/chat/operations/{operation_id}/complete`: an external service reports back.

    webhook-id: msg_2Lh…          webhook-timestamp: 1732200000
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">
    {"operation_id": "…", "success": true, "result": {...}}  → 202 {"status": "accepted", ...}

Verified per Standard Webhooks with `CHAT_WEBHOOK_SECRET` by the `standardwebhooks` library
(constant-time compare, timestamps outside 5 minutes refused) before the body is even
parsed. 503 when no secret is configured, 401 for a missing or bad signature, 413 above
the body limit, 422 for a body that is not a completion, 404 for an unknown operation.

A delivery is bound to its operation: the signed body names the operation, and it must be
the one in the URL (422 `OPERATION_MISMATCH` otherwise), so a signed delivery cannot be
re-posted to complete another operation. Every repeat of a webhook-id for an operation
gets the first answer again and changes nothing.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ..completions.inbox import UnknownOperation, accept_webhook
from ..settings import get_settings
from .errors import ApiError
from .openapi import responses, webhook_request

router = APIRouter(tags=["webhook"])


class CompletionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    operation_id: str
    success: StrictBool
    result: Any = None
    error: str | None = None


class WebhookAnswer(BaseModel):
    status: Literal["accepted", "already_finished"]
    operation_id: str
    task_id: str


def _verifier() -> Webhook:
    secret = get_settings().secret("webhook_secret")
    if not secret:
        raise ApiError(
            503,
            "WEBHOOK_NOT_CONFIGURED",
            "This server has no webhook secret (CHAT_WEBHOOK_SECRET).",
        )
    try:
        return Webhook(secret)
    except Exception as exc:
        raise ApiError(
            503, "WEBHOOK_NOT_CONFIGURED", "CHAT_WEBHOOK_SECRET is not a valid whsec_ secret."
        ) from exc


@router.post(
    "/operations/{operation_id}/complete",
    status_code=202,
    response_model=WebhookAnswer,
    response_description="Durably queued (or queued before, for a repeated webhook-id)",
    openapi_extra=webhook_request(CompletionBody),
    responses={
        200: {"model": WebhookAnswer, "description": "The task is already over: nothing to do"},
        **responses(
            {
                401: "INVALID_SIGNATURE",
                404: "OPERATION_NOT_FOUND",
                413: "BODY_TOO_LARGE",
                422: ("INVALID_COMPLETION", "OPERATION_MISMATCH"),
                503: "WEBHOOK_NOT_CONFIGURED",
            }
        ),
    },
)
async def complete_operation(
    request: Request, operation_id: str = Path(max_length=64)
) -> JSONResponse:
    verifier = _verifier()
    raw = await request.body()
    try:
        verifier.verify(raw, dict(request.headers), json_parse=False)
    except (WebhookVerificationError, ValueError) as exc:
        raise ApiError(
            401, "INVALID_SIGNATURE", f"The webhook signature was not accepted: {exc}."
        ) from exc
    try:
        body = CompletionBody.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "body"
        raise ApiError(422, "INVALID_COMPLETION", f"{where}: {first['msg']}") from exc
    if body.operation_id != operation_id:
        raise ApiError(
            422,
            "OPERATION_MISMATCH",
            "The signed body names another operation than the URL; it was not accepted.",
        )
    try:
        answer = await accept_webhook(
            operation_id,
            request.headers["webhook-id"],
            success=body.success,
            result=body.result,
            error=body.error,
        )
    except UnknownOperation as exc:
        raise ApiError(
            404, "OPERATION_NOT_FOUND", "No operation with this id is waiting for a result."
        ) from exc
    return JSONResponse(answer.body, status_code=answer.status)
