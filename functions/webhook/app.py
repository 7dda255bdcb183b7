"""Webhook: `POST /api/chat/operations/{operation_id}/complete`, signed per Standard Webhooks.

    sam local invoke WebhookFunction -e events/webhook.json     # 401: its timestamp is stale

Verifies the signature, queues the completion durably in Redis, wakes the worker, and
answers 202. No user token: the signature is the authentication.
"""

from __future__ import annotations

from chat_core.api import webhook
from chat_core.api.app import create_app
from chat_core.aws import buffered_handler
from chat_core.observability import configure_lambda_logging

configure_lambda_logging()  # the layer's stdlib loggers write Powertools JSON too

app = create_app(webhook.router)
handler = buffered_handler(app)
