"""Stream start: `POST /api/chat/sessions/{session_id}/stream` and the AI SDK's `POST /api/chat`.

    PORT=8080 functions/stream_start/run.sh                          # ReadMode=stream (default)
    sam local invoke StreamStartFunction -e events/stream_start.json  # ReadMode=buffered

Saves the user's message, creates the task, invokes the worker, and streams the task until
`finish` (uvicorn behind the Lambda Web Adapter, `app`), or, with ReadMode=buffered, answers
its first long-poll window (Mangum, `handler`).
"""

from __future__ import annotations

from chat_core.api import streams
from chat_core.api.app import create_app
from chat_core.aws import buffered_handler
from chat_core.observability import configure_lambda_logging

configure_lambda_logging()  # the layer's stdlib loggers write Powertools JSON too

app = create_app(streams.router)
handler = buffered_handler(app)
