"""chat_core.sessions.dynamodb_table: the sessions table as CreateTable builds it (template.yaml
declares the same properties; tests/deploy/test_template.py checks that side)."""

from __future__ import annotations

import boto3
from chat_core.sessions.dynamodb_table import USER_SESSIONS_INDEX, create_table
from moto import mock_aws


def test_create_table_makes_an_active_table_keyed_by_session_and_item():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "sessions")
        table = client.describe_table(TableName="sessions")["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        ("PK", "HASH"),
        ("SK", "RANGE"),
    }
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == USER_SESSIONS_INDEX
    assert [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]] == [
        ("user_id", "HASH"),
        ("updated_at", "RANGE"),
    ]
    # A listing reads the summary from the index alone.
    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    assert set(index["Projection"]["NonKeyAttributes"]) == {"session_id", "title", "created_at"}


def test_the_user_index_lists_a_users_items_newest_first():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "sessions")
        for n, (user, updated) in enumerate(
            [("u1", "2025-01-01"), ("u1", "2025-03-01"), ("u2", "2025-02-01")]
        ):
            client.put_item(
                TableName="sessions",
                Item={
                    "PK": {"S": f"SESSION#s{n}"},
                    "SK": {"S": "META"},
                    "user_id": {"S": user},
                    "updated_at": {"S": updated},
                    "session_id": {"S": f"s{n}"},
                },
            )
        client.put_item(  # an anonymous session: no user_id, so not in the index
            TableName="sessions",
            Item={
                "PK": {"S": "SESSION#anon"},
                "SK": {"S": "META"},
                "updated_at": {"S": "2025-04-01"},
            },
        )
        found = client.query(
            TableName="sessions",
            IndexName=USER_SESSIONS_INDEX,
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": {"S": "u1"}},
            ScanIndexForward=False,
        )["Items"]
    assert [i["session_id"]["S"] for i in found] == ["s1", "s0"]
