"""Task reconnect: replay a task's stream from a cursor, then follow it live.

    PORT=8080 functions/task_reconnect/run.sh                             # ReadMode=stream
    sam local invoke TaskReconnectFunction -e events/task_reconnect.json  # ReadMode=buffered

Serves `GET /api/chat/tasks/{task_id}/stream`, the session resume paths, task status and
cancel, and `GET /api/chat/events`. Streamed (uvicorn behind the Lambda Web Adapter, `app`)
or, with ReadMode=buffered, one long-poll window per request (Mangum, `handler`); a
finished task read to its end answers 204, which stops EventSource from reconnecting.
"""

from __future__ import annotations

from chat_core.api import events, tasks
from chat_core.api.app import create_app
from chat_core.aws import buffered_handler
from chat_core.observability import configure_lambda_logging

configure_lambda_logging()  # the layer's stdlib loggers write Powertools JSON too

app = create_app(tasks.router, events.router)
# Session-level routes carry no task id; the request id still ties their log lines together.
handler = buffered_handler(
    app, correlation_id_path="pathParameters.task_id || requestContext.requestId"
)
