"""chat_core.users.dynamodb_store: the user-store contract on DynamoDB (moto), and
where the records live."""

from __future__ import annotations

import boto3
import pytest
from chat_core.users import BusinessUnderstanding, LibraryAgent
from chat_core.users.dynamodb_store import DynamoDBUserStore

from tests.users.contract import UserStoreContract


@pytest.mark.parametrize("store_backend", ["dynamodb"], indirect=True)
class TestUserStoreContract(UserStoreContract):
    pass


async def test_a_users_records_live_in_the_sessions_table_under_their_own_partition(
    dynamodb_table, settings_env
):
    settings_env(session_store="dynamodb")
    store = DynamoDBUserStore()
    await store.put_understanding("u1", BusinessUnderstanding(industry="bakery"))
    for n in range(3):
        await store.save_agent("u1", LibraryAgent(agent_id=f"a{n}", name=f"Agent {n}"))
    scanned = boto3.client("dynamodb").scan(TableName=dynamodb_table)["Items"]
    assert {i["PK"]["S"] for i in scanned} == {"USER#u1"}
    assert len(scanned) == 4  # the understanding, and one item per agent
