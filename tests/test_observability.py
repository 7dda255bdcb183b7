"""chat_core.observability: metrics added anywhere in the layer are flushed as one EMF document
by the handler's decorator; the layer's loggers write Powertools JSON once a handler
configures them; tracing costs nothing where it is off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from aws_lambda_powertools.metrics import MetricUnit
from chat_core.observability import count, metrics, milliseconds, tracer


def run_python(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return done.stdout


def test_count_and_milliseconds_land_in_the_handlers_metrics() -> None:
    metrics.clear_metrics()
    count("DeadLetters")
    count("SweptTasks", 3)
    milliseconds("CompletionLag", 12.5)
    recorded = metrics.metric_set
    assert recorded["DeadLetters"]["Unit"] == MetricUnit.Count.value
    assert recorded["DeadLetters"]["Value"] == [1.0]
    assert recorded["SweptTasks"]["Value"] == [3.0]
    assert recorded["CompletionLag"]["Unit"] == MetricUnit.Milliseconds.value
    metrics.clear_metrics()


def test_metrics_flush_as_one_emf_document_per_invocation() -> None:
    out = run_python(
        """
        from chat_core.observability import count, metrics

        @metrics.log_metrics
        def handler(event, context):
            count("SweptTasks", 2)
            count("DeletedConsumers")

        handler({}, None)
        """,
        POWERTOOLS_METRICS_NAMESPACE="chat-tests",
    )
    [document] = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert document["SweptTasks"] == [2.0] and document["DeletedConsumers"] == [1.0]
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "chat-tests"


def test_the_layers_loggers_write_powertools_json_once_configured() -> None:
    out = run_python(
        """
        import logging
        from chat_core.observability import configure_lambda_logging

        module_logger = logging.getLogger("chat_core.completions.sweeper")
        configure_lambda_logging()
        module_logger.warning("task failed by the sweeper", extra={"task_id": "t1"})
        """
    )
    [line] = out.splitlines()
    record = json.loads(line)
    assert record["message"] == "task failed by the sweeper" and record["task_id"] == "t1"
    assert record["level"] == "WARNING" and record["service"] == "chat"


def test_outside_lambda_the_tracer_is_a_no_op_with_the_same_decorators() -> None:
    def handler(event, context):
        return "ok"

    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_method(capture_response=False)(handler) is handler
    tracer.put_annotation("task_id", "t1")  # accepted, does nothing


def test_in_lambda_with_tracing_on_the_tracer_is_powertools() -> None:
    out = run_python(
        """
        from chat_core.observability import tracer
        print(type(tracer).__module__)
        """,
        AWS_LAMBDA_FUNCTION_NAME="chat-worker",
        POWERTOOLS_TRACE_DISABLED="false",
    )
    assert out.strip().startswith("aws_lambda_powertools.tracing")
