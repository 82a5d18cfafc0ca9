"""Exceptions: a change people marked as expected, for one playbook on one resource, with an
owner, a reason and an expiry.

While one is in force, the playbook's events on that resource (in its account and region)
are told, never acted on: the ceiling is `notify` (`respond.controls`), so an exception
can quiet trailguard, never blind it. Each lasts at most the settings' `exceptions.max_days`
(30); some playbooks may be kept out of them (`exceptions.never`). When one expires, the
posture sweep checks the resource again with the playbook's own steps (`check`), and
opens an incident if it is still unsafe; an exception may be revoked before.

They are kept beside the incidents, in the same table (`exc-…` items), sealed by the acting
roles exactly as incidents are: the public Slack endpoint's role cannot write them at all
(its table permission covers `inc-*` items only), so a click only asks for one (recorded on
the incident), and the worker makes it after checking who asked. The command line asks the
same way. The one of a playbook and resource is found by its id (`exception_id`), one read
per planned event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.aws.dynamodb import decode_body, encode_body
from chalicelib.aws.seals import Refusals, Sealer, message
from chalicelib.playbooks.plan import PlannedStep

EXCEPTION_PREFIX = "exc-"
LISTED = "exception"
"""The open index's key of an exception the sweep has not re-checked yet."""
UNSEALED_FIELDS = frozenset({"version", "seal"})


class StaleException(Exception):
    """Someone else changed the exception since it was read; nothing was written."""


def exception_id(playbook_id: str, account: str | None, region: str, resource: str) -> str:
    """The exception of one playbook on one resource: the same id whenever it is made again."""
    digest = hashlib.sha256(f"{playbook_id}\n{account}\n{region}\n{resource}".encode()).hexdigest()
    return f"{EXCEPTION_PREFIX}{digest[:20]}"


@dataclass
class ExpectedChange:
    """One exception (what the command line and Slack call it)."""

    id: str
    playbook_id: str
    account: str | None
    region: str
    resource: str
    owner: str
    """Who answers for it (a Slack user, an AWS principal, or what `--owner` names)."""
    reason: str
    created_by: str
    created_at: str
    expires_at: str
    incident_id: str | None = None
    """The incident it was made on."""
    source: str = ""
    event_name: str = ""
    plan: list[PlannedStep] = field(default_factory=list)
    """The incident's steps: what the sweep checks the resource with when it expires."""
    revoked_at: str | None = None
    revoked_by: str | None = None
    rechecked_at: str | None = None
    recheck: str | None = None
    """What the sweep found when it expired (safe, still unsafe and which incident, or why it could not tell)."""
    version: int = 0
    seal: str | None = None

    def in_force(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and now < dt.datetime.fromisoformat(self.expires_at)

    @property
    def listed(self) -> bool:
        """Still in the sweep's list: not re-checked (a revoked one needs no re-check)."""
        return self.rechecked_at is None and self.revoked_at is None

    def describe(self) -> str:
        """`exc-… by slack:U0 until 2026-12-01T10:00:00Z: reason (owner …)`, for incidents and messages."""
        owner = f", owner {self.owner}" if self.owner != self.created_by else ""
        return f"{self.id} by {self.created_by} until {self.expires_at}{owner}: {self.reason}"

    def status(self, now: dt.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.in_force(now):
            return "in force"
        return "expired, re-checked" if self.rechecked_at else "expired"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "playbook": self.playbook_id,
            "account": self.account,
            "region": self.region,
            "resource": self.resource,
            "owner": self.owner,
            "reason": self.reason,
            "createdBy": self.created_by,
            "createdAt": self.created_at,
            "expiresAt": self.expires_at,
            "incident": self.incident_id,
            "source": self.source,
            "eventName": self.event_name,
            "plan": [step.to_dict() for step in self.plan],
            "revokedAt": self.revoked_at,
            "revokedBy": self.revoked_by,
            "recheckedAt": self.rechecked_at,
            "recheck": self.recheck,
            "version": self.version,
            "seal": self.seal,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExpectedChange:
        return cls(
            id=data["id"],
            playbook_id=data["playbook"],
            account=data.get("account"),
            region=data["region"],
            resource=data["resource"],
            owner=data["owner"],
            reason=data["reason"],
            created_by=data["createdBy"],
            created_at=data["createdAt"],
            expires_at=data["expiresAt"],
            incident_id=data.get("incident"),
            source=data.get("source", ""),
            event_name=data.get("eventName", ""),
            plan=[PlannedStep.from_dict(step) for step in data.get("plan") or []],
            revoked_at=data.get("revokedAt"),
            revoked_by=data.get("revokedBy"),
            rechecked_at=data.get("recheckedAt"),
            recheck=data.get("recheck"),
            version=int(data.get("version", 0)),
            seal=data.get("seal"),
        )


def _message(change: ExpectedChange) -> bytes:
    return message("exception", change.id, {k: v for k, v in change.to_dict().items() if k not in UNSEALED_FIELDS})


def exception_problem(sealer: Sealer, change: ExpectedChange, key: str | None = None) -> str | None:
    """Why a stored exception cannot be trusted (not written by trailguard's acting roles), or None."""
    if key is not None and change.id != key:
        return f"it is stored under {key} but names itself {change.id}"
    if change.seal is None:
        return "it carries no seal"
    if not sealer.verify(_message(change), change.seal):
        return "its seal does not match what it holds"
    return None


class ExceptionStore(Protocol):
    def put(self, change: ExpectedChange) -> None:
        """Write it if the stored version is `change.version` (0: none stored); else StaleException."""

    def get(self, change_id: str) -> ExpectedChange | None: ...

    def listed(self) -> list[ExpectedChange]:
        """The exceptions not re-checked nor revoked yet, oldest first."""

    def every(self) -> list[ExpectedChange]:
        """Every exception still kept (the finished ones until the table's retention ends), oldest first."""


class MemoryExceptions:
    """Exceptions in a dict, for one process (replay, tests); serialized copies, as a database keeps them."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def put(self, change: ExpectedChange) -> None:
        with self._lock:
            stored = self._items.get(change.id)
            if (stored["version"] if stored else 0) != change.version:
                raise StaleException(change.id)
            change.version += 1
            self._items[change.id] = change.to_dict()

    def get(self, change_id: str) -> ExpectedChange | None:
        with self._lock:
            stored = self._items.get(change_id)
        return ExpectedChange.from_dict(stored) if stored else None

    def listed(self) -> list[ExpectedChange]:
        return [change for change in self.every() if change.listed]

    def every(self) -> list[ExpectedChange]:
        with self._lock:
            found = [ExpectedChange.from_dict(data) for data in self._items.values()]
        return sorted(found, key=lambda c: c.created_at)


class DynamoExceptions:
    """Exceptions as items of the incidents' table: the exception (`body`) under its id, with
    the attributes its conditional writes, the open index (while the sweep must re-check
    it) and TTL (once it cannot matter any more) read."""

    def __init__(self, client: Any, table: str, retention_days: int = 90) -> None:
        self.client = client
        self.table = table
        self.retention_seconds = retention_days * 86400

    def put(self, change: ExpectedChange) -> None:
        read = change.version
        change.version = read + 1
        item: dict[str, Any] = {
            "pk": {"S": change.id},
            "version": {"N": str(change.version)},
            "createdAt": {"S": change.created_at},
            "body": encode_body(change.to_dict()),
            "writer": {"S": uuid.uuid4().hex},
        }
        if change.listed:
            item["openState"] = {"S": LISTED}
        else:
            item["expiresAt"] = {"N": str(int(time.time()) + self.retention_seconds)}
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if read == 0
            else {
                "ConditionExpression": "#version = :read",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":read": {"N": str(read)}},
            }
        )
        try:
            self.client.put_item(TableName=self.table, Item=item, **condition)
        except self.client.exceptions.ConditionalCheckFailedException:
            change.version = read
            raise StaleException(change.id) from None
        except Exception:
            change.version = read
            raise

    def get(self, change_id: str) -> ExpectedChange | None:
        item = self.client.get_item(TableName=self.table, Key={"pk": {"S": change_id}}, ConsistentRead=True).get("Item")
        return ExpectedChange.from_dict(decode_body(item["body"])) if item else None

    def listed(self) -> list[ExpectedChange]:
        from chalicelib.incidents.store import OPEN_INDEX

        pages = self.client.get_paginator("query").paginate(
            TableName=self.table,
            IndexName=OPEN_INDEX,
            KeyConditionExpression="openState = :key",
            ExpressionAttributeValues={":key": {"S": LISTED}},
        )
        return [ExpectedChange.from_dict(decode_body(item["body"])) for page in pages for item in page["Items"]]

    def every(self) -> list[ExpectedChange]:
        """A scan of the table's `exc-…` items: for people listing them (`trailguard exceptions --all`)."""
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.table,
            FilterExpression="begins_with(pk, :prefix)",
            ExpressionAttributeValues={":prefix": {"S": EXCEPTION_PREFIX}},
        )
        found = [ExpectedChange.from_dict(decode_body(item["body"])) for page in pages for item in page["Items"]]
        return sorted(found, key=lambda c: c.created_at)


class SealedExceptions:
    """The exceptions as the acting roles use them: every write sealed, every read checked;
    one that fails is refused (logged, kept in `refusals`) and counts as no exception."""

    def __init__(self, inner: ExceptionStore, sealer: Sealer, refusals: Refusals | None = None) -> None:
        self.inner = inner
        self.sealer = sealer
        self.refusals = refusals or Refusals()

    def put(self, change: ExpectedChange) -> None:
        # The seal covers all but the version (the write is conditional on it) and itself.
        change.seal = self.sealer.seal(_message(change))
        self.inner.put(change)

    def get(self, change_id: str) -> ExpectedChange | None:
        change = self.inner.get(change_id)
        if change is None:
            return None
        problem = exception_problem(self.sealer, change, change_id)
        if problem is not None:
            self.refusals.refuse("exception", change_id, problem)
            return None
        return change

    def listed(self) -> list[ExpectedChange]:
        return [change for change in self.inner.listed() if self._trusted(change)]

    def every(self) -> list[ExpectedChange]:
        return [change for change in self.inner.every() if self._trusted(change)]

    def _trusted(self, change: ExpectedChange) -> bool:
        problem = exception_problem(self.sealer, change)
        if problem is not None:
            self.refusals.refuse("exception", change.id, problem)
        return problem is None


def in_force(changes: Iterable[ExpectedChange], now: dt.datetime) -> list[ExpectedChange]:
    return [change for change in changes if change.in_force(now)]


REQUESTED = "except-requested"
"""The history entry of an incident on which someone asked for an exception (what the
endpoint and the command line write; the worker makes the exception after checking)."""
MADE = "except"
REFUSED = "except-refused"
REVOKED = "revoke-exception"


class ExceptionRefused(Exception):
    """An exception that may not be made (no resource, a playbook kept out, too long); says why."""


class Exceptions:
    """The door to exceptions, beside the incidents' (`Incidents.exceptions`)."""

    def __init__(
        self,
        store: ExceptionStore,
        *,
        clock: Any,
        max_days: int = 30,
        never: Iterable[str] = (),
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_days = max_days
        self.never = frozenset(never)

    def get(self, change_id: str) -> ExpectedChange | None:
        return self.store.get(change_id)

    def listed(self) -> list[ExpectedChange]:
        return self.store.listed()

    def every(self) -> list[ExpectedChange]:
        return self.store.every()

    def active(self, playbook_id: str, event: Any) -> ExpectedChange | None:
        """The exception in force for this playbook and the event's resource, if any (one read)."""
        resource = event.resource
        if not resource:
            return None
        change = self.store.get(exception_id(playbook_id, event.account, event.region, resource))
        return change if change is not None and change.in_force(self.clock()) else None

    def refusal(self, playbook_id: str, resource: str | None, days: int) -> str | None:
        """Why an exception for this may not be made, or None."""
        if not resource:
            return "the event names no resource, so an exception could not be narrowed to one"
        if playbook_id in self.never:
            return f"the organization's settings keep {playbook_id} out of exceptions (exceptions.never)"
        if not 1 <= days <= self.max_days:
            return f"an exception lasts 1 to {self.max_days} days (exceptions.max_days), not {days}"
        return None

    def make(self, incident: Any, *, who: str, owner: str | None, reason: str, days: int) -> ExpectedChange:
        """The exception for the incident's playbook and resource, made (or renewed) for `days`
        from now; ExceptionRefused says why it may not be."""
        from chalicelib.clock import timestamp

        event = incident.event
        problem = self.refusal(incident.playbook_id, event.resource, days)
        if problem is not None:
            raise ExceptionRefused(problem)
        if not reason.strip():
            raise ExceptionRefused("an exception needs a reason")
        now = self.clock()
        change_id = exception_id(incident.playbook_id, event.account, event.region, event.resource)
        for _attempt in range(3):
            stored = self.store.get(change_id)
            change = ExpectedChange(
                id=change_id,
                playbook_id=incident.playbook_id,
                account=event.account,
                region=event.region,
                resource=event.resource,
                owner=owner or who,
                reason=reason.strip(),
                created_by=who,
                created_at=timestamp(now),
                expires_at=timestamp(now + dt.timedelta(days=days)),
                incident_id=incident.id,
                source=event.source,
                event_name=event.name,
                plan=list(incident.plan),
                version=stored.version if stored else 0,
            )
            try:
                self.store.put(change)
            except StaleException:
                continue
            return change
        raise StaleException(change_id)

    def revoke(self, change_id: str, who: str) -> ExpectedChange:
        from chalicelib.clock import timestamp

        change = self.store.get(change_id)
        if change is None:
            raise LookupError(f"no exception {change_id}")
        if change.revoked_at is None:
            change.revoked_at, change.revoked_by = timestamp(self.clock()), who
            self.store.put(change)
        return change

    def rechecked(self, change: ExpectedChange, result: str) -> ExpectedChange:
        """Record what the sweep found when the exception expired; it leaves the sweep's list."""
        from chalicelib.clock import timestamp

        change.rechecked_at, change.recheck = timestamp(self.clock()), result
        self.store.put(change)
        return change
