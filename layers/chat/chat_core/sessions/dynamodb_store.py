"""Sessions in DynamoDB: one partition per session, one item per message.

    store = DynamoDBSessionStore()          # table and endpoint from the settings
    session = await store.create(user_id="u1")
    await store.append_messages(session.session_id, [ChatMessage(role="user", content="Hi")])

The layout is in `dynamodb_table`. Messages are separate items, so no session approaches
the 400 KB item limit. Sequences come from an atomic counter on the META item (UpdateItem
ADD, UPDATED_NEW): each append reserves its own range first, so concurrent appends never
collide; the messages of one call are then written in one transaction.

boto3 is synchronous, so every operation runs in a thread (`asyncio.to_thread`). The
low-level client is used throughout because it is thread-safe (a boto3 resource is not).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from ..settings import get_settings
from .dynamodb_table import USER_SESSIONS_INDEX
from .models import ChatMessage, ChatSession, SessionSummary, Usage, is_pending_result, utcnow
from .store import SessionNotFound

META = "META"
MESSAGE_PREFIX = "MSG#"
USAGE_PREFIX = "USAGE#"
_EXISTS = "attribute_exists(PK)"
_OWNED_BY_CALLER_OR_NOBODY = "(attribute_not_exists(user_id) OR user_id = :user)"
_TRANSACTION_ITEMS = 100
_TRANSACTION_BYTES = 4_000_000
_BATCH_ITEMS = 25

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class DynamoDBSessionStore:
    """The `SessionStore` on one DynamoDB table."""

    def __init__(self, table_name: str | None = None, client: Any = None) -> None:
        self.table_name = table_name or get_settings().dynamodb_table
        self._client = client or dynamodb_client()

    # --- the protocol: each call runs its synchronous twin in a thread ------------------
    async def create(self, user_id: str | None, session_id: str | None = None) -> ChatSession:
        return await asyncio.to_thread(self._create, user_id, session_id)

    async def get(self, session_id: str, user_id: str | None) -> ChatSession | None:
        return await asyncio.to_thread(self._read, session_id, user_id)

    async def append_messages(
        self, session_id: str, messages: list[ChatMessage]
    ) -> list[ChatMessage]:
        if not messages:
            return []
        return await asyncio.to_thread(self._append, session_id, messages)

    async def list_sessions(
        self, user_id: str, limit: int = 50, offset: int = 0
    ) -> tuple[list[SessionSummary], int]:
        return await asyncio.to_thread(self._list, user_id, limit, max(offset, 0))

    async def delete(self, session_id: str, user_id: str | None) -> bool:
        return await asyncio.to_thread(self._delete, session_id, user_id)

    async def assign_user(self, session_id: str, user_id: str) -> bool:
        updated = await asyncio.to_thread(
            self._update_meta,
            session_id,
            "SET user_id = :user, updated_at = :now",
            {":user": user_id, ":now": _iso(utcnow())},
            f"{_EXISTS} AND {_OWNED_BY_CALLER_OR_NOBODY}",
        )
        return updated is not None

    async def update_title(self, session_id: str, title: str) -> bool:
        updated = await asyncio.to_thread(
            self._update_meta,
            session_id,
            "SET title = :title, updated_at = :now",
            {":title": title, ":now": _iso(utcnow())},
        )
        return updated is not None

    async def add_usage(self, session_id: str, usage: Usage) -> None:
        """Raises SessionNotFound when the session does not exist."""
        await asyncio.to_thread(self._add_usage, session_id, usage)

    async def truncate_messages(self, session_id: str, keep: int) -> bool:
        return await asyncio.to_thread(self._truncate, session_id, max(keep, 0))

    async def update_tool_message(
        self, session_id: str, tool_call_id: str, content: str, *, if_pending: bool = False
    ) -> bool:
        return await asyncio.to_thread(
            self._update_tool_message, session_id, tool_call_id, content, if_pending
        )

    # --- synchronous work --------------------------------------------------------------
    def _create(self, user_id: str | None, session_id: str | None) -> ChatSession:
        session = ChatSession.new(user_id=user_id, session_id=session_id)
        session.updated_at = session.created_at
        meta = {
            **_key(session.session_id, META),
            "session_id": session.session_id,
            "created_at": _iso(session.created_at),
            "updated_at": _iso(session.updated_at),
        }
        if user_id:
            meta["user_id"] = user_id
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=_item(meta),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if _condition_failed(exc):
                raise ValueError(f"session {session.session_id} already exists") from exc
            raise
        return session

    def _read(
        self, session_id: str, user_id: str | None, *, any_owner: bool = False
    ) -> ChatSession | None:
        session: ChatSession | None = None
        pages = self._client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=_item({":pk": _pk(session_id)}),
            ConsistentRead=True,  # a turn reads back what it just appended
        )
        for page in pages:
            for item in map(_plain, page["Items"]):
                sort_key: str = item["SK"]
                if sort_key == META:  # sorts before MSG# and USAGE#
                    session = _session(item)
                    if not (any_owner or session.visible_to(user_id)):
                        return None
                elif session is None:
                    return None  # items left behind by a delete that is still running
                elif sort_key.startswith(MESSAGE_PREFIX):
                    sequence = int(sort_key.removeprefix(MESSAGE_PREFIX))
                    message = ChatMessage.model_validate_json(item["body"])
                    session.messages.append(message.model_copy(update={"sequence": sequence}))
                elif sort_key.startswith(USAGE_PREFIX):
                    session.usage.append(Usage.model_validate_json(item["body"]))
        return session

    def _append(self, session_id: str, messages: list[ChatMessage]) -> list[ChatMessage]:
        counters = self._update_meta(
            session_id,
            "SET updated_at = :now ADD next_sequence :count",
            {":now": _iso(utcnow()), ":count": len(messages)},
        )
        if counters is None:
            raise SessionNotFound(session_id)
        return self._write_messages(session_id, messages, int(counters["next_sequence"]))

    def _write_messages(
        self, session_id: str, messages: list[ChatMessage], next_sequence: int
    ) -> list[ChatMessage]:
        """Write messages into the sequence range that ends just before `next_sequence`."""
        first = next_sequence - len(messages)
        saved = [m.model_copy(update={"sequence": first + i}) for i, m in enumerate(messages)]
        items = [_message_item(session_id, message) for message in saved]
        if len(items) == 1:  # a transaction would cost twice the writes for nothing
            self._client.put_item(TableName=self.table_name, Item=items[0])
            return saved
        for chunk in _transaction_chunks(items):
            self._client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self.table_name, "Item": item}} for item in chunk
                ]
            )
        return saved

    def _list(self, user_id: str, limit: int, offset: int) -> tuple[list[SessionSummary], int]:
        # DynamoDB has no offset and no cheap count: walk the user's index entries once,
        # counting all and keeping the requested page. Entries are small (a projection).
        summaries: list[SessionSummary] = []
        total = 0
        pages = self._client.get_paginator("query").paginate(
            TableName=self.table_name,
            IndexName=USER_SESSIONS_INDEX,
            KeyConditionExpression="user_id = :user",
            ExpressionAttributeValues=_item({":user": user_id}),
            ScanIndexForward=False,
        )
        for page in pages:
            for raw in page["Items"]:
                if offset <= total < offset + limit:
                    summaries.append(_session(_plain(raw)).summary())
                total += 1
        return summaries, total

    def _delete(self, session_id: str, user_id: str | None) -> bool:
        # The META item goes first, under the owner check: from then on the session is not
        # found, and what follows only cleans up.
        values = _item({":user": user_id}) if user_id else None
        try:
            self._client.delete_item(
                TableName=self.table_name,
                Key=_item(_key(session_id, META)),
                ConditionExpression=(
                    f"{_EXISTS} AND {_OWNED_BY_CALLER_OR_NOBODY}"
                    if user_id
                    else f"{_EXISTS} AND attribute_not_exists(user_id)"
                ),
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        pages = self._client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=_item({":pk": _pk(session_id)}),
            ProjectionExpression="PK, SK",
            ConsistentRead=True,
        )
        self._delete_keys([key for page in pages for key in page["Items"]])
        return True

    def _truncate(self, session_id: str, keep: int) -> bool:
        # The counter moves back first, so an append racing this writes from `keep` on and
        # is not deleted below; deleting the items after it can then only remove old ones.
        counters = self._update_meta(
            session_id,
            "SET next_sequence = :keep, updated_at = :now",
            {":keep": keep, ":now": _iso(utcnow())},
        )
        if counters is None:
            return False
        pages = self._client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="PK = :pk AND SK >= :first",
            ExpressionAttributeValues=_item(
                {":pk": _pk(session_id), ":first": f"{MESSAGE_PREFIX}{keep:010d}"}
            ),
            ProjectionExpression="PK, SK",
            ConsistentRead=True,
        )
        doomed = [
            k for page in pages for k in page["Items"] if k["SK"]["S"].startswith(MESSAGE_PREFIX)
        ]
        self._delete_keys(doomed)
        return True

    def _delete_keys(self, keys: list[dict[str, Any]]) -> None:
        for start in range(0, len(keys), _BATCH_ITEMS):
            requests = {
                self.table_name: [
                    {"DeleteRequest": {"Key": key}} for key in keys[start : start + _BATCH_ITEMS]
                ]
            }
            attempt = 0
            while requests:
                requests = self._client.batch_write_item(RequestItems=requests).get(
                    "UnprocessedItems"
                )
                if requests:  # throttled: back off before sending the rest again
                    time.sleep(min(0.05 * 2**attempt, 2.0))
                    attempt += 1

    def _add_usage(self, session_id: str, usage: Usage) -> None:
        counters = self._update_meta(
            session_id,
            "SET updated_at = :now ADD usage_count :one",
            {":now": _iso(utcnow()), ":one": 1},
        )
        if counters is None:
            raise SessionNotFound(session_id)
        number = int(counters["usage_count"]) - 1
        item = {**_key(session_id, f"{USAGE_PREFIX}{number:010d}"), "body": usage.model_dump_json()}
        self._client.put_item(TableName=self.table_name, Item=_item(item))

    def _update_tool_message(
        self, session_id: str, tool_call_id: str, content: str, if_pending: bool
    ) -> bool:
        # Find, then compare-and-set the message body: a retry happens only when another
        # writer changed that very message in between, so this cannot spin.
        while True:
            found = self._find_tool_message(session_id, tool_call_id)
            if found is None:
                return False
            old = found["body"]
            message = ChatMessage.model_validate_json(old)
            if if_pending and not is_pending_result(message.content):
                return False
            message = message.model_copy(update={"content": content})
            try:
                self._client.update_item(
                    TableName=self.table_name,
                    Key=_item(_key(session_id, found["SK"])),
                    UpdateExpression="SET body = :new",
                    ConditionExpression="body = :old",
                    ExpressionAttributeValues=_item({":new": _dump(message), ":old": old}),
                )
            except ClientError as exc:
                if _condition_failed(exc):
                    continue
                raise
            touched = self._update_meta(
                session_id, "SET updated_at = :now", {":now": _iso(utcnow())}
            )
            return touched is not None

    def _find_tool_message(self, session_id: str, tool_call_id: str) -> dict[str, Any] | None:
        """The last message item answering `tool_call_id` (newest first, across pages)."""
        pages = self._client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :messages)",
            FilterExpression="tool_call_id = :call",
            ExpressionAttributeValues=_item(
                {":pk": _pk(session_id), ":messages": MESSAGE_PREFIX, ":call": tool_call_id}
            ),
            ProjectionExpression="SK, body",
            ScanIndexForward=False,
            ConsistentRead=True,
        )
        for page in pages:
            for raw in page["Items"]:
                return _plain(raw)
        return None

    def _update_meta(
        self,
        session_id: str,
        update: str,
        values: dict[str, Any],
        condition: str | None = _EXISTS,
    ) -> dict[str, Any] | None:
        """UpdateItem on the META item → the updated attributes, or None when `condition`
        does not hold (by default: the session does not exist)."""
        try:
            reply = self._client.update_item(
                TableName=self.table_name,
                Key=_item(_key(session_id, META)),
                UpdateExpression=update,
                ExpressionAttributeValues=_item(values),
                ReturnValues="UPDATED_NEW",
                **({"ConditionExpression": condition} if condition else {}),
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return None
            raise
        return _plain(reply.get("Attributes", {}))


def dynamodb_client() -> Any:
    """A low-level client of the configured endpoint, with the SDK's standard retries."""
    return boto3.client(
        "dynamodb",
        endpoint_url=get_settings().dynamodb_endpoint_url,
        config=Config(retries={"mode": "standard"}),
    )


def _pk(session_id: str) -> str:
    return f"SESSION#{session_id}"


def _key(session_id: str, sort_key: str) -> dict[str, str]:
    return {"PK": _pk(session_id), "SK": sort_key}


def _message_item(session_id: str, message: ChatMessage) -> dict[str, Any]:
    item = {**_key(session_id, f"{MESSAGE_PREFIX}{message.sequence:010d}"), "body": _dump(message)}
    if message.role == "tool" and message.tool_call_id:
        item["tool_call_id"] = message.tool_call_id  # lets update_tool_message filter
    return _item(item)


def _transaction_chunks(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Groups within TransactWriteItems' limits (100 items, 4 MB); one call's messages
    normally fit in one, so they are saved together or not at all."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for item in items:
        item_size = len(item["body"]["S"].encode()) + 200
        if chunk and (len(chunk) == _TRANSACTION_ITEMS or size + item_size > _TRANSACTION_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk


def _session(meta: dict[str, Any]) -> ChatSession:
    return ChatSession(
        session_id=meta["session_id"],
        user_id=meta.get("user_id"),
        title=meta.get("title"),
        created_at=datetime.fromisoformat(meta["created_at"]),
        updated_at=datetime.fromisoformat(meta["updated_at"]),
    )


def _dump(message: ChatMessage) -> str:
    # The sort key carries the sequence; storing it in the body too would let them disagree.
    return message.model_dump_json(exclude={"sequence"})


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _iso(moment: datetime) -> str:
    # Fixed width, so ISO strings sort like the times they name (the index sorts on it).
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
