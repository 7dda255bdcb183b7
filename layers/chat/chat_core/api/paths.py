"""Path parameters: ids are short tokens; anything else is simply not found."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Path

from .errors import ApiError
from .openapi import declares

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Documented, not validated: an id of another shape is answered 404 like an unknown one.
ID_SCHEMA = {"pattern": _ID.pattern}


@declares({404: "SESSION_NOT_FOUND"})
def _session_id(session_id: Annotated[str, Path(json_schema_extra=ID_SCHEMA)]) -> str:
    return checked_id(session_id, "SESSION_NOT_FOUND", "No such chat session.")


@declares({404: "TASK_NOT_FOUND"})
def _task_id(task_id: Annotated[str, Path(json_schema_extra=ID_SCHEMA)]) -> str:
    return checked_id(task_id, "TASK_NOT_FOUND", "No such task.")


def checked_id(value: str, code: str, message: str) -> str:
    if not _ID.match(value):
        raise ApiError(404, code, message)
    return value


SessionId = Annotated[str, Depends(_session_id)]
TaskId = Annotated[str, Depends(_task_id)]
