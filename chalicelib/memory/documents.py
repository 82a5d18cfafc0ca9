"""Where remembered documents are kept: a trail's last known configuration, the flow logs and
Config channels trailguard may put back, the decisions the sweep honours.

A document is changed by `amend`: a read, then a write only if nobody wrote it since (else
read and changed again), so that two writers at the same moment cannot lose each other.
`MemoryDocuments` serves replay, the CLI and tests; `DynamoDocuments` serves deployed
stages, in the incidents' table (one item per key, beside the incidents).

The acting roles read and write them through `SealedDocuments`: what they write is sealed
(see `aws.seals`), and a document whose seal does not hold is refused, never used nor
resealed, although the Slack endpoint's role cannot write these items at all (its table
permission is limited to incident keys): a forged one would make a later restore re-create
a trail that delivers to someone else's bucket.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, Protocol

from chalicelib.aws.dynamodb import decode_body, encode_body
from chalicelib.aws.seals import Refusals, Sealer, message

AMEND_ATTEMPTS = 5
"""Reads and conditional writes an `amend` tries before giving up (others kept writing)."""
DOCUMENT_SEAL = "seal"
"""Where a remembered document keeps its seal."""


class BusyDocument(Exception):
    """Others changed a remembered document at every attempt to amend it; nothing was written."""


Change = Callable[[dict[str, Any] | None], dict[str, Any] | None]
"""Given a remembered document as stored (None: there is none), the document to write
instead, or None to leave it as it is. It may be called more than once (when another
writer got in first), so it must only read."""


class Documents(Protocol):
    def remember(self, key: str, value: dict[str, Any]) -> None:
        """Keep a small document (a trail's last known configuration) under `key`."""

    def recall(self, key: str) -> dict[str, Any] | None: ...

    def amend(self, key: str, change: Change) -> dict[str, Any] | None:
        """Replace the document under `key` by `change(stored)`, atomically: written only if
        nobody wrote it since it was read (else read and changed again). Returns the document
        as stored afterwards."""


class MemoryDocuments:
    """Documents in a dict, for one process; serialized copies, as a database keeps them."""

    def __init__(self) -> None:
        self._documents: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()  # reentrant: an amend reads the document it changes

    def remember(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._documents[key] = json.loads(json.dumps(value, default=str))

    def recall(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            stored = self._documents.get(key)
            return json.loads(json.dumps(stored)) if stored is not None else None

    def amend(self, key: str, change: Change) -> dict[str, Any] | None:
        with self._lock:
            new = change(self.recall(key))
            if new is not None:
                self._documents[key] = json.loads(json.dumps(new, default=str))
            return self.recall(key)


class DynamoDocuments:
    """Documents as items of the incidents' table: the document (`body`) under its key, with
    the `version` its conditional writes read."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def remember(self, key: str, value: dict[str, Any]) -> None:
        self.client.put_item(TableName=self.table, Item={"pk": {"S": key}, "body": encode_body(value)})

    def recall(self, key: str) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
        if not item:
            return None
        value: dict[str, Any] = decode_body(item["body"])
        return value

    def amend(self, key: str, change: Change) -> dict[str, Any] | None:
        """A consistent read, then a put conditional on the document's `version` (absent
        before its first amend)."""
        for _ in range(AMEND_ATTEMPTS):
            item = self.client.get_item(TableName=self.table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
            stored = decode_body(item["body"]) if item else None
            version = int(item["version"]["N"]) if item and "version" in item else 0
            new = change(stored)
            if new is None:
                return stored
            condition: dict[str, Any] = (
                {"ConditionExpression": "attribute_not_exists(#version)"}
                if version == 0
                else {
                    "ConditionExpression": "#version = :read",
                    "ExpressionAttributeValues": {":read": {"N": str(version)}},
                }
            )
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item={
                        "pk": {"S": key},
                        "version": {"N": str(version + 1)},
                        "body": encode_body(new),
                    },
                    ExpressionAttributeNames={"#version": "version"},
                    **condition,
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                continue
            return json.loads(json.dumps(new, default=str))
        raise BusyDocument(f"{key} changed at each of {AMEND_ATTEMPTS} attempts to amend it")


def seal_document(sealer: Sealer, key: str, value: dict[str, Any]) -> dict[str, Any]:
    content = {name: item for name, item in value.items() if name != DOCUMENT_SEAL}
    return {**content, DOCUMENT_SEAL: sealer.seal(message("memory", key, content))}


def document_problem(sealer: Sealer, key: str, document: dict[str, Any]) -> str | None:
    content = {name: item for name, item in document.items() if name != DOCUMENT_SEAL}
    if DOCUMENT_SEAL not in document:
        return "it carries no seal"
    if not sealer.verify(message("memory", key, content), document[DOCUMENT_SEAL]):
        return "its seal does not match what it holds"
    return None


class SealedDocuments:
    """The documents as the acting roles use them: every write sealed, every read checked
    (`ChangedOutsideTrailguard` for what fails, logged and kept in `refusals`)."""

    def __init__(self, inner: Documents, sealer: Sealer, refusals: Refusals | None = None) -> None:
        self.inner = inner
        self.sealer = sealer
        self.refusals = refusals or Refusals()

    def remember(self, key: str, value: dict[str, Any]) -> None:
        self.inner.remember(key, seal_document(self.sealer, key, value))

    def recall(self, key: str) -> dict[str, Any] | None:
        return self._checked(key, self.inner.recall(key))

    def amend(self, key: str, change: Change) -> dict[str, Any] | None:
        """The inner store's conditional amend, on the document as trailguard sealed it: a
        stored document that fails its check is refused (never resealed), and what the
        change writes is sealed."""

        def sealed_change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
            new = change(self._checked(key, stored))
            return seal_document(self.sealer, key, new) if new is not None else None

        return self._checked(key, self.inner.amend(key, sealed_change))

    def _checked(self, key: str, document: dict[str, Any] | None) -> dict[str, Any] | None:
        if document is None:
            return None
        problem = document_problem(self.sealer, key, document)
        if problem is not None:
            raise self.refusals.refuse("remembered configuration", key, problem)
        return {name: item for name, item in document.items() if name != DOCUMENT_SEAL}
