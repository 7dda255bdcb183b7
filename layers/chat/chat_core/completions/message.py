"""One entry of the completions stream (field `data`): what the inbox queues and the
consumers apply."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel


class CompletionMessage(BaseModel):
    operation_id: str
    task_id: str
    success: bool
    result: Any = None
    error: str | None = None
    webhook_id: str | None = None
    received_at_ms: int = 0

    @classmethod
    def now(
        cls,
        operation_id: str,
        task_id: str,
        success: bool,
        result: Any,
        error: str | None,
        webhook_id: str | None = None,
    ) -> CompletionMessage:
        return cls(
            operation_id=operation_id,
            task_id=task_id,
            success=success,
            result=result,
            error=error,
            webhook_id=webhook_id,
            received_at_ms=int(time.time() * 1000),
        )
