"""Sessions: create, list, get (with the active stream), delete, assign; the user's own
records (business understanding, agent library); plus `/health` and `/config/ttl`.

    sam local invoke SessionsFunction -e events/sessions.json
"""

from __future__ import annotations

from chat_core.api import health, sessions, users
from chat_core.api.app import create_app
from chat_core.aws import buffered_handler
from chat_core.observability import configure_lambda_logging

configure_lambda_logging()  # the layer's stdlib loggers write Powertools JSON too

app = create_app(sessions.router, users.router, health.router)
handler = buffered_handler(app)
