"""chat_core.keys: the keys one script touches share a hash tag, so every script runs unchanged
on a cluster, and different tasks, sessions and users spread over it."""

from __future__ import annotations

from chat_core import keys
from redis.crc import key_slot


def slot(key: str) -> int:
    return key_slot(key.encode())


def test_a_tasks_keys_share_one_slot() -> None:
    task_keys = [keys.task_meta("t1"), keys.task_stream("t1")]
    assert len({slot(k) for k in task_keys}) == 1
    assert len(set(task_keys)) == len(task_keys)


def test_a_sessions_keys_share_one_slot() -> None:
    session_keys = [
        keys.session_turn("s1"),
        keys.session_operations("s1"),
        keys.running_operation("s1", "call-1"),
        keys.session_meta("s1"),
        keys.session_messages("s1"),
        keys.session_usage("s1"),
        keys.session_cache("s1"),
        keys.session_cache_version("s1"),
        keys.session_summary("s1"),
    ]
    assert len({slot(k) for k in session_keys}) == 1
    assert len(set(session_keys)) == len(session_keys)


def test_the_completions_machinery_shares_one_slot() -> None:
    completion_keys = [
        keys.COMPLETIONS,
        keys.DEAD_LETTERS,
        keys.COMPLETION_FAILURES,
        keys.webhook_seen("op-1", "msg_1"),
        keys.webhook_seen("op-2", "msg_2"),
    ]
    assert len({slot(k) for k in completion_keys}) == 1


def test_different_tasks_and_sessions_spread_over_the_cluster() -> None:
    task_slots = {slot(keys.task_meta(f"task-{i}")) for i in range(100)}
    session_slots = {slot(keys.session_meta(f"session-{i}")) for i in range(100)}
    assert len(task_slots) > 90 and len(session_slots) > 90


def test_a_bus_channel_is_bus_slash_key() -> None:
    assert keys.channel(keys.SESSION_EVENTS_BUS, "user:u1") == "chat-session-events/user:u1"
