"""Secrets kept in SSM Parameter Store or Secrets Manager, read through Powertools Parameters.

    read_secret("ssm:/chat/llm-api-key", max_age=300)        # a SecureString, decrypted
    read_secret("secretsmanager:chat/webhook", max_age=300)  # a secret's string value

Powertools caches each value for `max_age` seconds, so a warm function reads it once per
window and a rotated secret is picked up within it. Only `Settings.secret()` calls this;
boto3 (the Lambda runtime's) is imported on the first read, not at cold start.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def read_secret(where: str, *, max_age: int) -> str | None:
    """The value, or None when it cannot be read (missing, no permission): the caller then
    answers as for an unset secret (the webhook 503, the model call a clear 401 message)."""
    store, _, name = where.partition(":")
    from aws_lambda_powertools.utilities import parameters

    try:
        if store == "ssm":
            value = parameters.get_parameter(name, decrypt=True, max_age=max_age)
        elif store == "secretsmanager":
            value = parameters.get_secret(name, max_age=max_age)
        else:
            raise ValueError(
                f"{where!r}: say where the secret is, ssm:<name> or secretsmanager:<name>"
            )
    except parameters.exceptions.GetParameterError as exc:
        log.error("secret %s could not be read: %s", where, exc)
        return None
    return value if isinstance(value, str) else bytes(value).decode()
