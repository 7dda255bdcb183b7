"""Sessions: create, list, get (with the active stream), delete, assign; plus `/health` and
`/config/ttl`.

    sam local invoke SessionsFunction -e events/sessions.json
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from chat_core.api import health, sessions
from chat_core.api.app import create_app
from chat_core.aws import http_handler
from chat_core.observability import configure_lambda_logging, logger, metrics, tracer

configure_lambda_logging()  # the layer's stdlib loggers write Powertools JSON too

app = create_app(sessions.router, health.router)
serve = http_handler(app)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)  # responses carry the conversation
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return serve(event, context)
