"""The response-streaming variant: the same routers served by uvicorn behind the Lambda
Web Adapter, which streams the response through a Function URL (InvokeMode RESPONSE_STREAM).

    PORT=8080 functions/streaming/run.sh          # what the adapter starts (Handler: run.sh)

CHAT_READ_MODE=stream: a read follows the task until `finish` or the read budget, instead
of the buffered long-poll windows the Mangum functions answer with.
"""

from __future__ import annotations

from chat_core.api import events, streams, tasks
from chat_core.api.app import create_app
from chat_core.observability import configure_lambda_logging

configure_lambda_logging()  # the layer's stdlib loggers write Powertools JSON too

app = create_app(streams.router, tasks.router, events.router)
