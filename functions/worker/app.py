"""Worker: runs one job (a chat turn, a long tool, a completions drain) to the end.

    sam local invoke WorkerFunction -e events/worker.json

Invoked asynchronously by the functions that dispatch (payload = `chat_core.worker.jobs`
JSON). A payload that is not a job raises, so it lands in the failure destination instead
of being dropped silently.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from chat_core.aws import run
from chat_core.observability import configure_lambda_logging, logger, metrics, tracer
from chat_core.worker.jobs import parse_job
from chat_core.worker.runner import run_invocation

configure_lambda_logging()  # the layer's stdlib loggers write Powertools JSON too


@logger.inject_lambda_context(correlation_id_path="task_id")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    job = parse_job(event)
    return {"job": job.kind, "outcome": run(run_invocation(job))}
