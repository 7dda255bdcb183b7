"""The task lifecycle: every change of a task's state, each with all of its side effects.

    task = await tasks.start_turn(session_id, "Hello!", user_id="u1")  # TurnInProgress → 429
    task = await tasks.claim(task.task_id, worker_id)                # the worker takes it
    ...                                                              # content, by the producer
    await tasks.finish(task, "completed")                            # the one `finish`

A task is a chat turn (`tool_name == "chat"`) or a long-running tool's operation. Its
status leaves `running` exactly once, by one compare-and-set script that also appends the
closing chunks; while running it is in a phase:

| from               | transition        | to                 | side effects                                     |
|--------------------|-------------------|--------------------|--------------------------------------------------|
| -                  | `start_turn`      | running / queued   | session's turn pointer (429 if a turn runs), sweeper index, user message saved, worker dispatched |
| -                  | `create_operation`| running / queued   | session's operation set, sweeper index, stream opens with the tool's input |
| queued             | `claim`           | running / working  | worker lease, `task_started` (index moved only if it was due later) |
| working            | `refresh`         | working            | lease and every key's TTL extended; reports cancel |
| queued             | `await_operation` | running / awaiting | lease = operation timeout (the webhook's window)  |
| awaiting, working  | `apply_result`    | queued (or working, for the worker that ran the tool) | result chunks once, pending tool message becomes the result, guard released |
| running            | `cancel`          | cancelled          | a working worker stops within `cancel_poll_ms`, else as `finish` |
| running            | `finish`          | completed, failed, cancelled | closing chunks (tool call without result), `error`, `finish`; index, turn pointer or operation set, guard, tool message, `task_finished` |
| running, lease out | `expire`          | failed             | as `finish`, with the message for the phase it died in |
| any                | `claim_owner`     | (unchanged)        | an anonymous session's tasks become its new owner's |
| any                | `end_session`     | cancelled, then gone | as `cancel` for what runs; every task of the session unreadable at once |

Every function here is safe to call twice: only the first call of a transition that
ends a task has effects, so `task_finished` and `finish` are published exactly once.
"""

from .lifecycle import (
    CANCELLED_OPERATION,
    DISPATCH_FAILED,
    EXPIRED,
    LeaseState,
    TurnInProgress,
    acquire_guard,
    active_task,
    apply_result,
    await_operation,
    cancel,
    claim,
    claim_owner,
    create_operation,
    create_turn,
    end_session,
    expire,
    expired_task_ids,
    finish,
    refresh,
    result_chunks,
    start_turn,
)

__all__ = [
    "CANCELLED_OPERATION",
    "DISPATCH_FAILED",
    "EXPIRED",
    "LeaseState",
    "TurnInProgress",
    "acquire_guard",
    "active_task",
    "apply_result",
    "await_operation",
    "cancel",
    "claim",
    "claim_owner",
    "create_operation",
    "create_turn",
    "end_session",
    "expire",
    "expired_task_ids",
    "finish",
    "refresh",
    "result_chunks",
    "start_turn",
]
