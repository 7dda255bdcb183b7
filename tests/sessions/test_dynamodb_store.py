"""chat_core.sessions.dynamodb_store: the session-store contract on DynamoDB (moto), without
the read cache (test_cache.py runs it behind the cache), and the item layout that keeps
sessions of any size within DynamoDB's limits."""

from __future__ import annotations

import boto3
import pytest
from chat_core.sessions import ChatMessage, Usage
from chat_core.sessions.dynamodb_store import DynamoDBSessionStore

from tests.sessions.contract import SessionStoreContract


@pytest.mark.parametrize("store_kind", ["dynamodb"], indirect=True)
class TestSessionStoreContract(SessionStoreContract):
    pass


def items(table: str) -> dict[str, dict]:
    scanned = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return {f"{i['PK']['S']} {i['SK']['S']}": i for i in scanned}


async def test_each_message_is_its_own_item_under_the_sessions_partition(dynamodb_table):
    store = DynamoDBSessionStore()
    await store.create(user_id="u1", session_id="s1")
    await store.append_messages(
        "s1",
        [
            ChatMessage(role="user", content="x" * 300_000),  # two of these: over one item's 400 KB
            ChatMessage(role="assistant", content="y" * 300_000),
            ChatMessage(role="tool", content="pending", tool_call_id="c1"),
        ],
    )
    await store.add_usage("s1", Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2))
    assert sorted(items(dynamodb_table)) == [
        "SESSION#s1 META",
        "SESSION#s1 MSG#0000000000",
        "SESSION#s1 MSG#0000000001",
        "SESSION#s1 MSG#0000000002",
        "SESSION#s1 USAGE#0000000000",
    ]
    # The sort key holds the sequence, the body the rest; a tool result can be found by its call.
    tool = items(dynamodb_table)["SESSION#s1 MSG#0000000002"]
    assert tool["tool_call_id"] == {"S": "c1"} and '"sequence"' not in tool["body"]["S"]


async def test_only_owned_sessions_are_in_the_user_index(dynamodb_table):
    store = DynamoDBSessionStore()
    await store.create(user_id="u1", session_id="mine")
    await store.create(user_id=None, session_id="anonymous")
    metas = items(dynamodb_table)
    assert metas["SESSION#mine META"]["user_id"] == {"S": "u1"}
    assert "user_id" not in metas["SESSION#anonymous META"]
    await store.assign_user("anonymous", "u1")
    assert items(dynamodb_table)["SESSION#anonymous META"]["user_id"] == {"S": "u1"}
    listed, total = await store.list_sessions("u1")
    assert total == 2 and {s.session_id for s in listed} == {"mine", "anonymous"}


async def test_the_table_and_endpoint_come_from_the_settings(dynamodb_table, settings_env):
    assert DynamoDBSessionStore().table_name == dynamodb_table
    settings_env(dynamodb_table="another-table")
    assert DynamoDBSessionStore().table_name == "another-table"
    assert DynamoDBSessionStore(table_name="explicit").table_name == "explicit"
