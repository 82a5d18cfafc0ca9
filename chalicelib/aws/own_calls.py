"""The request ids of the write calls trailguard made in member accounts.

A member account's administrator controls the member role: they can rewrite its trust,
assume it under trailguard's session name and stop a trail. The role's name and account
then look exactly like trailguard's. What they cannot forge is the request id AWS gave
the calls trailguard itself made, which CloudTrail writes into each record (`requestID`).
So trailguard notes the id of every write call it makes through a member role, and the
loop guard (`respond.guards.OwnIdentities`) skips a member-role call only when its id is here.

The ids are kept two days (DynamoDB TTL): CloudTrail delivers a record to EventBridge
within minutes, and to S3 (replay) much later, where nothing acts anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("trailguard")

KEEP_SECONDS = 2 * 86400
KEY_PREFIX = "call#"
_READ_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search", "Check", "Select")


def changes_something(operation: str) -> bool:
    """Whether an API operation may change a resource (reads are not noted: nothing to skip)."""
    return not operation.startswith(_READ_PREFIXES)


class MemoryOwnCalls:
    """The ids in this process (replay, the CLI and tests: one process makes and sees the calls)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def record(self, request_id: str) -> None:
        with self._lock:
            self._ids.add(request_id)

    def made(self, request_id: str) -> bool:
        with self._lock:
            return request_id in self._ids


class DynamoOwnCalls:
    """The ids in trailguard's table, one small item each (`call#ID`), expiring on their own.

    The rules' handler that sees the record runs in another container than the worker that
    made the call, so the ids live where both can read them.
    """

    def __init__(self, client: Callable[[], Any], table: str) -> None:
        self._client = client
        self.table = table

    def record(self, request_id: str) -> None:
        self._client().put_item(
            TableName=self.table,
            Item={"pk": {"S": KEY_PREFIX + request_id}, "expiresAt": {"N": str(int(time.time()) + KEEP_SECONDS)}},
        )

    def made(self, request_id: str) -> bool:
        item = self._client().get_item(
            TableName=self.table, Key={"pk": {"S": KEY_PREFIX + request_id}}, ConsistentRead=True
        )
        return "Item" in item


def note_write_calls(client: Any, record: Callable[[str], None]) -> None:
    """Have `client` note the request id of every write call that succeeds.

    A failure to note one is logged, never raised: the remediation matters more, and the
    worst outcome is that trailguard answers its own call once more (its playbooks are
    idempotent and the incident says who made the call).
    """

    def after_call(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        if not changes_something(model.name) or getattr(http_response, "status_code", 500) >= 300:
            return
        request_id = (parsed or {}).get("ResponseMetadata", {}).get("RequestId")
        if not request_id:
            return
        try:
            record(request_id)
        except Exception as error:
            log.warning("could not note the request id of trailguard's own %s call: %s", model.name, error)

    client.meta.events.register("after-call", after_call)
