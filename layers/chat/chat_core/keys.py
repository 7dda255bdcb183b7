"""Every Redis key and channel name the system uses, in one place.

Keys that one script touches share a hash tag (the part in braces), so the same code runs
on a single server and on a cluster: a task's meta hash and its stream live in one slot,
a session's keys in another, the completions machinery in a third.
"""

from __future__ import annotations

PREFIX = "chat"


# --- Tasks (tag = task id) -----------------------------------------------------------------
def task_meta(task_id: str) -> str:
    return f"{PREFIX}:task:{{{task_id}}}:meta"


def task_stream(task_id: str) -> str:
    return f"{PREFIX}:task:{{{task_id}}}:stream"


def operation(operation_id: str) -> str:
    """operation id → task id, for webhooks that know only the operation."""
    return f"{PREFIX}:op:{{{operation_id}}}"


RUNNING_TASKS = f"{PREFIX}:tasks:running"
"""Sorted set: task id scored by lease expiry (ms). The sweeper's index; never SCAN."""


# --- Sessions (tag = session id) -----------------------------------------------------------
def session_turn(session_id: str) -> str:
    return f"{PREFIX}:session:{{{session_id}}}:active"


def session_operations(session_id: str) -> str:
    """Set of the session's operation task ids that may still be running."""
    return f"{PREFIX}:session:{{{session_id}}}:operations"


def running_operation(session_id: str, tool_call_id: str) -> str:
    """Duplicate-run guard of a long-running tool call, per session."""
    return f"{PREFIX}:session:{{{session_id}}}:running-op:{tool_call_id}"


def session_meta(session_id: str) -> str:
    return f"{PREFIX}:session:{{{session_id}}}:meta"


def session_messages(session_id: str) -> str:
    return f"{PREFIX}:session:{{{session_id}}}:messages"


def session_usage(session_id: str) -> str:
    return f"{PREFIX}:session:{{{session_id}}}:usage"


def session_cache(session_id: str) -> str:
    return f"{PREFIX}:session:{{{session_id}}}:cache"


def session_cache_version(session_id: str) -> str:
    return f"{PREFIX}:session:{{{session_id}}}:cache-version"


def session_summary(session_id: str) -> str:
    """JSON of the model-made summary standing for the session's oldest turns."""
    return f"{PREFIX}:session:{{{session_id}}}:summary"


def user_sessions(user_id: str) -> str:
    """Sorted set of a user's session ids scored by last update (ms)."""
    return f"{PREFIX}:user:{{{user_id}}}:sessions"


def user_understanding(user_id: str) -> str:
    """JSON of what the assistant has learned about the user and their business."""
    return f"{PREFIX}:user:{{{user_id}}}:understanding"


def user_agents(user_id: str) -> str:
    """HASH: agent id → JSON of an agent in the user's library."""
    return f"{PREFIX}:user:{{{user_id}}}:agents"


# --- Completions (one tag, so dead-lettering and dedupe are single scripts) ----------------
COMPLETIONS = f"{PREFIX}:{{completions}}:stream"
COMPLETIONS_GROUP = "chat-workers"
DEAD_LETTERS = f"{PREFIX}:{{completions}}:dead"
COMPLETION_FAILURES = f"{PREFIX}:{{completions}}:failures"


def webhook_seen(operation_id: str, webhook_id: str) -> str:
    """The first answer to a webhook delivery, per (operation, webhook id)."""
    return f"{PREFIX}:{{completions}}:webhook:{operation_id}:{webhook_id}"


# --- Pub/sub -------------------------------------------------------------------------------
def channel(bus_name: str, key: str) -> str:
    return f"{bus_name}/{key}"


SESSION_EVENTS_BUS = f"{PREFIX}-session-events"
