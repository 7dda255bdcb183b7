"""Powertools Logger, Metrics and Tracer shared by the layer and the handlers.

    from chat_core.observability import logger, count
    logger.info("swept", extra={"claimed": 3})
    count("DeadLetters", 1)

Handlers decorate their entry point (`@logger.inject_lambda_context`, `@metrics.log_metrics`,
`@tracer.capture_lambda_handler`); metrics added anywhere in the layer are flushed by that
decorator as one EMF document. Outside Lambda the tracer is a no-op and, unless a
namespace is configured, metrics are not emitted at all.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "chat")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ChatStreaming"), service=SERVICE)
tracer = Tracer(service=SERVICE)


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    metrics.add_metric(name=name, unit=unit, value=value)


def milliseconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)
