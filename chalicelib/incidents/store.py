"""Where incidents (and remembered documents: last known configurations, decisions the
sweep honours) are kept.

The responder and the lifecycle only know the `IncidentStore` interface. Two rules make
at-least-once delivery and double clicks harmless:

- `create` succeeds once per incident id, atomically: the same event delivered twice, or
  to two Lambdas at once, opens one incident;
- `save` writes only if the stored version and state are still the ones the caller read,
  so of two workers moving the same incident, one wins and the other gets `StaleIncident`.

A remembered document is changed by `amend`, on the same principle: written only if
nobody wrote it since it was read.

`MemoryStore` serves replay, the CLI and tests; `DynamoStore` serves deployed stages,
one table, with a sparse index of open incidents and a TTL on finished ones.

DynamoDB keeps at most 400 KB per item. An incident's body is kept compressed once it is
large, and both stores refuse an incident that would still take more than `MAX_ITEM_BYTES`
(`IncidentTooLarge`, before anything is sent), so that the lifecycle can fail what cannot
be recorded in the open, instead of DynamoDB failing it half-way.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from chalicelib.aws.dynamodb import decode_body, encode_body, item_size
from chalicelib.incidents.model import OPEN_STATES, Containment, Incident, State

LISTED_STATES = OPEN_STATES | {State.NOTIFIED, State.SIMULATED}
"""States the open index also holds, for people listing incidents (a notice nobody
acknowledged yet, what a dry run would have done): they expire like finished ones, and
nothing in trailguard acts on them."""

DEFAULT_RETENTION_DAYS = 90
OPEN_INDEX = "open"
UNANNOUNCED = "unannounced"
"""The open index's key for a finished incident whose message is still due."""
PROPOSED_CONTAINMENT = "containment-proposed"
"""The open index's key for a remediated incident whose containment waits for a person: the
sweep expires those as it expires proposals, without reading every remediated incident."""
TTL_ATTRIBUTE = "expiresAt"


MAX_ITEM_BYTES = 300_000
"""The most one incident may take in the table, as DynamoDB counts it: well under its 400 KB
limit (its index holds a copy of the item, under the same limit)."""


class StaleIncident(Exception):
    """Someone else changed the incident since it was read; nothing was written."""


class IncidentTooLarge(Exception):
    """The incident would not fit in one item; nothing was written."""

    def __init__(self, incident_id: str, size: int | None, reason: str = "") -> None:
        self.incident_id = incident_id
        self.size = size
        taken = f"takes {size:,} bytes" if size is not None else "is too large"
        super().__init__(
            f"incident {incident_id} {taken} in the table{reason}; one incident may take at most {MAX_ITEM_BYTES:,}"
        )


class UnreadableIncident(Exception):
    """An item of the table that is not an incident trailguard can read (damaged, or not
    written by trailguard); `key` is its pk."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(f"incident {key} cannot be read: {reason}")


class IncidentStore(Protocol):
    def create(self, incident: Incident) -> bool:
        """Record a new incident; False (and nothing written) if its id already exists."""

    def save(self, incident: Incident) -> None:
        """Write the incident if the stored version is `incident.version`; else StaleIncident."""

    def get(self, incident_id: str) -> Incident | None:
        """The incident, None if there is none; UnreadableIncident if its item is damaged."""

    def open_incidents(
        self, states: Iterable[State] = OPEN_STATES, *, unreadable: list[UnreadableIncident] | None = None
    ) -> list[Incident]:
        """Incidents in `states` (open states, or LISTED_STATES), oldest first. A damaged item
        is added to `unreadable` and the others are listed; without that list it is raised."""

    def unannounced(self, *, unreadable: list[UnreadableIncident] | None = None) -> list[Incident]:
        """Incidents whose message does not show their latest change (`notification_due`)."""

    def proposed_containments(self, *, unreadable: list[UnreadableIncident] | None = None) -> list[Incident]:
        """Remediated incidents whose containment waits for a person, oldest first."""


class MemoryStore:
    """Incidents in a dict, for one process; safe to use from several threads.

    It keeps serialized copies, as a database would, so that two holders of the same
    incident can conflict exactly as they would against DynamoDB.
    """

    def __init__(self) -> None:
        self._incidents: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def create(self, incident: Incident) -> bool:
        with self._lock:
            if incident.id in self._incidents:
                return False
            check_size(incident)
            incident.version = 1
            incident.stored_state = incident.state
            self._incidents[incident.id] = incident.to_dict()
            return True

    def save(self, incident: Incident) -> None:
        with self._lock:
            stored = self._incidents.get(incident.id)
            if (
                stored is None
                or stored["version"] != incident.version
                or stored["state"] != _value(incident.stored_state)
            ):
                raise StaleIncident(incident.id)
            check_size(incident)
            incident.version += 1
            incident.stored_state = incident.state
            self._incidents[incident.id] = incident.to_dict()

    def get(self, incident_id: str) -> Incident | None:
        with self._lock:
            stored = self._incidents.get(incident_id)
        return _loaded(stored) if stored else None

    def open_incidents(
        self, states: Iterable[State] = OPEN_STATES, *, unreadable: list[UnreadableIncident] | None = None
    ) -> list[Incident]:
        wanted = {State(state).value for state in states}
        with self._lock:
            found = [_loaded(data) for data in self._incidents.values() if data["state"] in wanted]
        return sorted(found, key=lambda incident: incident.created_at)

    def unannounced(self, *, unreadable: list[UnreadableIncident] | None = None) -> list[Incident]:
        with self._lock:
            found = [_loaded(data) for data in self._incidents.values()]
        return sorted((i for i in found if i.notification_due), key=lambda incident: incident.created_at)

    def proposed_containments(self, *, unreadable: list[UnreadableIncident] | None = None) -> list[Incident]:
        return [i for i in self.open_incidents([State.REMEDIATED]) if _containment_proposed(i)]


def _containment_proposed(incident: Incident) -> bool:
    return incident.state is State.REMEDIATED and incident.containment is Containment.PROPOSED


def _loaded(data: Mapping[str, Any]) -> Incident:
    incident = Incident.from_dict(data)
    incident.stored_state = incident.state
    return incident


def _value(state: State | None) -> str | None:
    return state.value if state is not None else None


# -- items as DynamoDB holds them -----------------------------------------------------------


def incident_item(incident: Incident, expires_at: int, writer: str) -> dict[str, Any]:
    """The item that holds an incident: the body (the whole incident) and, beside it, the
    attributes that conditions, the open index and TTL read, and the token of this write."""
    item: dict[str, Any] = {
        "pk": {"S": incident.id},
        "state": {"S": incident.state.value},
        "version": {"N": str(incident.version)},
        "createdAt": {"S": incident.created_at},
        "body": encode_body(incident.to_dict()),
        "writer": {"S": writer},
    }
    if incident.notification_due:  # open or finished: the sweep reads this key alone for messages
        item["openState"] = {"S": UNANNOUNCED}
    elif _containment_proposed(incident):  # the sweep expires it; a remediated one it never reads
        item["openState"] = {"S": PROPOSED_CONTAINMENT}
    elif incident.state in LISTED_STATES:  # the open states and what people may still look at
        item["openState"] = {"S": incident.state.value}
    if incident.state not in OPEN_STATES:
        item[TTL_ATTRIBUTE] = {"N": str(expires_at)}
    return item


def check_size(incident: Incident, item: Mapping[str, Any] | None = None) -> None:
    """Raise IncidentTooLarge if the incident (as `item`, else as DynamoStore would write
    it) would not fit in one item of the table."""
    item = item or incident_item(incident, int(time.time()), uuid.uuid4().hex)
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise IncidentTooLarge(incident.id, size)


def _read_incident(item: Mapping[str, Any]) -> Incident:
    key = item.get("pk", {}).get("S", "(no pk)")
    try:
        return _loaded(decode_body(item["body"]))
    except Exception as error:  # whatever is wrong with it, it must not hide the other items
        reason = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
        raise UnreadableIncident(key, reason) from None


def table_definition(name: str) -> dict[str, Any]:
    """The one DynamoDB table: incidents and remembered documents by `pk`, open ones indexed."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "openState", "AttributeType": "S"},
            {"AttributeName": "createdAt", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": OPEN_INDEX,
                "KeySchema": [
                    {"AttributeName": "openState", "KeyType": "HASH"},
                    {"AttributeName": "createdAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


class DynamoStore:
    """Incidents in DynamoDB. Each item holds the incident as JSON (`body`, compressed when
    large) plus the attributes the conditions, the open-incident index and TTL need.

    `openState` is set while an incident's message is due (to `unannounced`, whatever its
    state), else while it is open or listed (to its state), so the index holds only what
    someone may act on (a sparse index); `expiresAt` is set once it is finished, so DynamoDB
    deletes it `retention_days` later.

    What the sweep reads stays flat in the age of the deployment: it queries the proposals
    (they expire within their timeout), the busy incidents (a worker's lease) and the
    `unannounced` key (Slack's backlog), never the remediated and failed incidents nobody
    acknowledged, which pile up for as long as the stage runs.

    Every write carries a token of its own (`writer`). botocore sends a write again when
    its answer is lost (a timeout, a 5xx), though DynamoDB may have carried it out: the
    second attempt's condition then fails on our own item. The failed condition returns
    the item, and a matching token tells our own write from someone else's.
    """

    def __init__(self, client: Any, table: str, retention_days: int = DEFAULT_RETENTION_DAYS) -> None:
        self.client = client
        self.table = table
        self.retention_seconds = retention_days * 86400

    def create(self, incident: Incident) -> bool:
        incident.version = 1
        try:
            self._put(incident, ConditionExpression="attribute_not_exists(pk)")
        except StaleIncident:
            incident.version = 0
            return False
        except Exception:
            incident.version = 0
            raise
        incident.stored_state = incident.state
        return True

    def save(self, incident: Incident) -> None:
        read_version = incident.version
        incident.version = read_version + 1
        try:
            self._put(
                incident,
                ConditionExpression="#version = :read AND #state = :state",
                ExpressionAttributeNames={"#version": "version", "#state": "state"},
                ExpressionAttributeValues={
                    ":read": {"N": str(read_version)},
                    ":state": {"S": _value(incident.stored_state) or ""},
                },
            )
        except Exception:
            incident.version = read_version
            raise
        incident.stored_state = incident.state

    def _put(self, incident: Incident, **condition: Any) -> None:
        """Write the incident under `condition`: StaleIncident if someone else's item fails
        it, IncidentTooLarge if it cannot fit (checked before it is sent)."""
        writer = uuid.uuid4().hex
        item = incident_item(incident, int(time.time()) + self.retention_seconds, writer)
        check_size(incident, item)
        try:
            self.client.put_item(
                TableName=self.table, Item=item, ReturnValuesOnConditionCheckFailure="ALL_OLD", **condition
            )
        except self.client.exceptions.ConditionalCheckFailedException as error:
            found = error.response.get("Item") or {}
            if found.get("writer", {}).get("S") != writer:
                raise StaleIncident(incident.id) from None
        except self.client.exceptions.ClientError as error:
            details = error.response.get("Error", {})
            if details.get("Code") == "ValidationException" and "size" in str(details.get("Message", "")).lower():
                raise IncidentTooLarge(incident.id, None, f" (DynamoDB refused it: {details.get('Message')})") from None
            raise

    def get(self, incident_id: str) -> Incident | None:
        item = self.client.get_item(TableName=self.table, Key={"pk": {"S": incident_id}}, ConsistentRead=True).get(
            "Item"
        )
        return _read_incident(item) if item else None

    def open_incidents(
        self, states: Iterable[State] = OPEN_STATES, *, unreadable: list[UnreadableIncident] | None = None
    ) -> list[Incident]:
        wanted = {State(state) for state in states}
        found = {incident.id: incident for state in wanted for incident in self._query_open(state.value, unreadable)}
        keys = [UNANNOUNCED, PROPOSED_CONTAINMENT] if State.REMEDIATED in wanted else [UNANNOUNCED]
        found.update(  # one whose message is due, or whose containment waits, is indexed as such
            (incident.id, incident)
            for key in keys
            for incident in self._query_open(key, unreadable)
            if incident.state in wanted
        )
        return sorted(found.values(), key=lambda incident: incident.created_at)

    def _query_open(self, key: str, unreadable: list[UnreadableIncident] | None) -> list[Incident]:
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table,
            IndexName=OPEN_INDEX,
            KeyConditionExpression="openState = :key",
            ExpressionAttributeValues={":key": {"S": key}},
        )
        found: list[Incident] = []
        for page in pages:
            for item in page["Items"]:
                try:
                    found.append(_read_incident(item))
                except UnreadableIncident as problem:
                    if unreadable is None:
                        raise
                    unreadable.append(problem)
        return found

    def unannounced(self, *, unreadable: list[UnreadableIncident] | None = None) -> list[Incident]:
        candidates = self._query_open(UNANNOUNCED, unreadable)
        return sorted((i for i in candidates if i.notification_due), key=lambda incident: incident.created_at)

    def proposed_containments(self, *, unreadable: list[UnreadableIncident] | None = None) -> list[Incident]:
        """Those indexed as waiting, and those whose message is due (indexed as such) that wait."""
        found = {
            incident.id: incident
            for key in (PROPOSED_CONTAINMENT, UNANNOUNCED)
            for incident in self._query_open(key, unreadable)
            if _containment_proposed(incident)
        }
        return sorted(found.values(), key=lambda incident: incident.created_at)
