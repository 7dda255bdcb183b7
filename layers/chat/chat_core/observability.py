"""Powertools Logger, Metrics and Tracer for the Lambda handlers; metrics for the layer.

    from chat_core.observability import count, logger, metrics, tracer
    count("DeadLetters", 1)                      # anywhere in the layer

    configure_lambda_logging()                   # in a handler module
    @logger.inject_lambda_context(correlation_id_path="pathParameters.task_id")
    @metrics.log_metrics
    @tracer.capture_lambda_handler
    def handler(event, context): ...

The layer's modules log with plain `logging.getLogger(__name__)`, as a library should; in
Lambda, `configure_lambda_logging()` gives them Powertools' JSON formatter (with the
correlation id). Metrics added anywhere are flushed by the handler's decorator as one EMF
document. The tracer is Powertools' only where tracing is on (`POWERTOOLS_TRACE_DISABLED`
false, in Lambda); elsewhere a no-op with the same decorators, because constructing the
Powertools Tracer imports the X-Ray SDK and botocore (~0.25 s of every cold start) even
when it is disabled.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "chat")

logger = Logger(service=SERVICE)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ChatStreaming"), service=SERVICE
)


class _NoTracer:
    """Tracer's decorators, doing nothing: what tracing costs when it is off."""

    def capture_lambda_handler(self, handler: Callable | None = None, **_: Any) -> Any:
        return handler if handler is not None else (lambda function: function)

    capture_method = capture_lambda_handler

    def put_annotation(self, *_: Any, **__: Any) -> None:
        pass


def _tracing_enabled() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in ("1", "true")
    return not disabled and "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def _make_tracer() -> Any:
    if not _tracing_enabled():
        return _NoTracer()
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


tracer = _make_tracer()


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    metrics.add_metric(name=name, unit=unit, value=value)


def milliseconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)


def configure_lambda_logging() -> None:
    """Format every `chat_core.*` logger as Powertools JSON, sharing its correlation id."""
    logging.getLogger("chat_core")  # the parent the module loggers propagate to
    copy_config_to_registered_loggers(source_logger=logger, include={"chat_core"})
