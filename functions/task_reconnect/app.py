"""Task reconnect: replay a task's stream from a cursor, then follow it for one long-poll window.

    sam local invoke TaskReconnectFunction -e events/task_reconnect.json

Serves `GET /api/chat/tasks/{task_id}/stream`, the session resume paths, task status and
cancel, and `GET /api/chat/events`. A finished task read to its end answers 204, which
stops EventSource from reconnecting.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from chat_core.api import events, tasks
from chat_core.api.app import create_app
from chat_core.aws import http_handler
from chat_core.observability import configure_lambda_logging, logger, metrics, tracer

configure_lambda_logging()  # the layer's stdlib loggers write Powertools JSON too

app = create_app(tasks.router, events.router)
serve = http_handler(app)

# Session-level routes carry no task id; the request id still ties their log lines together.
TASK_OR_REQUEST = "pathParameters.task_id || requestContext.requestId"


@logger.inject_lambda_context(correlation_id_path=TASK_OR_REQUEST)
@tracer.capture_lambda_handler(capture_response=False)  # responses carry the conversation
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return serve(event, context)
