"""Sensitive keys out of tool results, before the stream, the session or the model see them.

    redact({"name": "bot", "credentials": {"api_key": "sk-…"}})
    # {"name": "bot", "credentials": "[REDACTED]"}

The key list is `CHAT_REDACT_KEYS`. A key matches when, lower-cased and without `-` and `_`,
it is or ends with a listed key: `openai_api_key` and `X-Auth-Token` are caught by
`api_key` and `token`. Results that are JSON text are redacted inside.
"""

from __future__ import annotations

import json
from typing import Any

from ..settings import get_settings

REDACTED = "[REDACTED]"


def redact(value: Any) -> Any:
    """A copy of `value` with the value of every sensitive key replaced by `[REDACTED]`."""
    listed = get_settings().redact_keys.split(",")
    sensitive = tuple(_normalized(k.strip()) for k in listed if k.strip())
    return _redact(value, sensitive)


def _redact(value: Any, sensitive: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED
            if _normalized(str(key)).endswith(sensitive) and item is not None
            else _redact(item, sensitive)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item, sensitive) for item in value]
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return value
        redacted = _redact(parsed, sensitive)
        # Unchanged text stays byte for byte what the tool said.
        return value if redacted == parsed else json.dumps(redacted, ensure_ascii=False)
    return value


def _normalized(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")
