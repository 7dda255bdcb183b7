"""The sessions table, as plain CloudFormation-shaped data that template.yaml mirrors.

    import boto3
    from chat_core.sessions.dynamodb_table import TABLE_PROPERTIES, create_table
    create_table(boto3.client("dynamodb"), "chat-sessions")    # tests and local use

`TABLE_PROPERTIES` holds only keys that mean the same in `AWS::DynamoDB::Table` and in the
CreateTable API, so one definition serves both.

Items: PK = SESSION#<id>; SK = META (owner, title, timestamps, sequence counters),
MSG#<sequence:010d> (one message) or USAGE#<n:010d> (one usage record). The `user-sessions`
index is sparse: only META items of owned sessions carry `user_id`.
"""

from __future__ import annotations

from typing import Any

USER_SESSIONS_INDEX = "user-sessions"

TABLE_PROPERTIES: dict[str, Any] = {
    "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [
        {"AttributeName": "PK", "AttributeType": "S"},
        {"AttributeName": "SK", "AttributeType": "S"},
        {"AttributeName": "user_id", "AttributeType": "S"},
        {"AttributeName": "updated_at", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": USER_SESSIONS_INDEX,
            "KeySchema": [
                {"AttributeName": "user_id", "KeyType": "HASH"},
                {"AttributeName": "updated_at", "KeyType": "RANGE"},
            ],
            # A listing needs only the summary, never the counters.
            "Projection": {
                "ProjectionType": "INCLUDE",
                "NonKeyAttributes": ["session_id", "title", "created_at"],
            },
        }
    ],
}


def create_table(client: Any, name: str) -> None:
    """Create the table with a boto3 DynamoDB client and wait until it is active."""
    client.create_table(TableName=name, **TABLE_PROPERTIES)
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
