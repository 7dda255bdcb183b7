"""Sweeper: every minute, nothing stays stuck (see `chat_core.completions.sweeper`).

    sam local invoke SweeperFunction -e events/sweeper.json

Returns the sweep report as a dict: Lambda can only return what serializes to JSON.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from chat_core.aws import run
from chat_core.completions.sweeper import sweep
from chat_core.observability import configure_lambda_logging, logger, metrics, tracer

configure_lambda_logging()  # the layer's stdlib loggers write Powertools JSON too


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return asdict(run(sweep()))
