"""The user store on the sessions table: PK = USER#<id>, SK = UNDERSTANDING (one item) or
AGENT#<agent id> (one per library agent), the JSON in `body`.

These items carry no `user_id` attribute, so the sparse `user-sessions` index, which lists a
user's sessions, never sees them.
"""

from __future__ import annotations

import asyncio

from botocore.exceptions import ClientError

from ..sessions.dynamodb_store import _condition_failed, _item, _plain, dynamodb_client
from ..settings import get_settings
from .models import BusinessUnderstanding, LibraryAgent
from .store import merge_by_swapping

UNDERSTANDING = "UNDERSTANDING"
AGENT_PREFIX = "AGENT#"


class DynamoDBUserStore:
    def __init__(self, table_name: str | None = None) -> None:
        self.table_name = table_name or get_settings().dynamodb_table
        self._client = dynamodb_client()

    async def get_understanding(self, user_id: str) -> BusinessUnderstanding | None:
        body = await asyncio.to_thread(self._get_body, user_id, UNDERSTANDING)
        return BusinessUnderstanding.model_validate_json(body) if body else None

    async def put_understanding(self, user_id: str, understanding: BusinessUnderstanding) -> None:
        key = _key(user_id, UNDERSTANDING)
        if understanding.is_empty():
            await asyncio.to_thread(
                self._client.delete_item, TableName=self.table_name, Key=_item(key)
            )
            return
        item = {**key, "body": understanding.model_dump_json(exclude_defaults=True)}
        await asyncio.to_thread(self._client.put_item, TableName=self.table_name, Item=_item(item))

    async def merge_understanding(
        self, user_id: str, update: BusinessUnderstanding
    ) -> BusinessUnderstanding:
        return await merge_by_swapping(
            lambda: asyncio.to_thread(self._get_body, user_id, UNDERSTANDING),
            lambda expected, body: asyncio.to_thread(self._swap, user_id, expected, body),
            update,
        )

    async def save_agent(self, user_id: str, agent: LibraryAgent) -> LibraryAgent:
        return await asyncio.to_thread(self._save_agent, user_id, agent)

    async def get_agent(self, user_id: str, agent_id: str) -> LibraryAgent | None:
        body = await asyncio.to_thread(self._get_body, user_id, AGENT_PREFIX + agent_id)
        return LibraryAgent.model_validate_json(body) if body else None

    async def list_agents(self, user_id: str) -> list[LibraryAgent]:
        agents = await asyncio.to_thread(self._list_agents, user_id)
        return sorted(agents, key=lambda a: a.created_at, reverse=True)

    def _get_body(self, user_id: str, sort_key: str) -> str | None:
        reply = self._client.get_item(
            TableName=self.table_name, Key=_item(_key(user_id, sort_key)), ConsistentRead=True
        )
        return _plain(reply["Item"])["body"] if "Item" in reply else None

    def _swap(self, user_id: str, expected: str | None, body: str) -> bool:
        """Put the understanding's `body` only while the stored one is `expected`."""
        condition: dict[str, object] = (
            {"ConditionExpression": "attribute_not_exists(PK)"}
            if expected is None
            else {
                "ConditionExpression": "body = :expected",
                "ExpressionAttributeValues": _item({":expected": expected}),
            }
        )
        item = {**_key(user_id, UNDERSTANDING), "body": body}
        try:
            self._client.put_item(TableName=self.table_name, Item=_item(item), **condition)
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    def _save_agent(self, user_id: str, agent: LibraryAgent) -> LibraryAgent:
        item = {**_key(user_id, AGENT_PREFIX + agent.agent_id), "body": agent.model_dump_json()}
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=_item(item),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            stored = self._get_body(user_id, AGENT_PREFIX + agent.agent_id)
            assert stored is not None  # it was there a moment ago; agents are never deleted
            return LibraryAgent.model_validate_json(stored)
        return agent

    def _list_agents(self, user_id: str) -> list[LibraryAgent]:
        pages = self._client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :agents)",
            ExpressionAttributeValues=_item({":pk": _pk(user_id), ":agents": AGENT_PREFIX}),
            ConsistentRead=True,
        )
        return [
            LibraryAgent.model_validate_json(_plain(raw)["body"])
            for page in pages
            for raw in page["Items"]
        ]


def _pk(user_id: str) -> str:
    return f"USER#{user_id}"


def _key(user_id: str, sort_key: str) -> dict[str, str]:
    return {"PK": _pk(user_id), "SK": sort_key}
