"""Stream start: `POST /api/chat/sessions/{session_id}/stream` and the AI SDK's `POST /api/chat`.

    sam local invoke StreamStartFunction -e events/stream_start.json

Saves the user's message, creates the task, invokes the worker, and answers with the first
long-poll window of the task's stream (CHAT_READ_MODE=buffered: Mangum cannot stream).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from chat_core.api import streams
from chat_core.api.app import create_app
from chat_core.aws import http_handler
from chat_core.observability import configure_lambda_logging, logger, metrics, tracer

configure_lambda_logging()  # the layer's stdlib loggers write Powertools JSON too

app = create_app(streams.router)
serve = http_handler(app)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)  # responses carry the conversation
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return serve(event, context)
