"""Decisions the posture sweep honours.

The sweep finds what no event told it: a trail not logging, a named trail gone, a watched
key disabled or pending deletion. When people undo trailguard's answer to one of those
(or deny its proposal), they decided to leave the resource as it is, and the sweep must
not answer it again the next time it looks. Each such decision is recorded here, in one
document per account and region, under the finding and the resource (a trail's name, a
key's id: what an event's name or ARN and the sweep's ARN both come down to). It lasts
until the sweep sees the resource safe again: a trail found logging and later stopped
again is a new finding.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from chalicelib.clock import timestamp
from chalicelib.events.record import EventSummary
from chalicelib.memory import trails
from chalicelib.memory.rules import Memory

TRAIL_NOT_LOGGING = "trail-not-logging"
TRAIL_MISSING = "trail-missing"
KEY_DISABLED = "key-disabled"
KEY_PENDING_DELETION = "key-pending-deletion"

FINDINGS: Mapping[tuple[str, str], str] = {
    ("cloudtrail.amazonaws.com", "StopLogging"): TRAIL_NOT_LOGGING,
    ("cloudtrail.amazonaws.com", "DeleteTrail"): TRAIL_MISSING,
    ("kms.amazonaws.com", "DisableKey"): KEY_DISABLED,
    ("kms.amazonaws.com", "ScheduleKeyDeletion"): KEY_PENDING_DELETION,
}
"""The calls whose effect the sweep also finds, and the finding each is."""


def document_key(account: str, region: str) -> str:
    return f"accepted#{account}#{region}"


def locate(finding: str, name_or_arn: str, account: str, region: str) -> tuple[str, str, str]:
    """(account, region, resource) of a trail by name or ARN, or of a key by id or ARN."""
    if finding in (TRAIL_NOT_LOGGING, TRAIL_MISSING):
        return trails.locate(name_or_arn, account, region)
    parts = name_or_arn.split(":", 5)
    if name_or_arn.startswith("arn:") and len(parts) == 6 and parts[5].startswith("key/"):
        return parts[4], parts[3], parts[5][len("key/") :]
    return account, region, name_or_arn


def _entry(finding: str, resource: str) -> str:
    return f"{finding}#{resource}"


def record(memory: Memory, incident_id: str, event: EventSummary, who: str, now: dt.datetime) -> str | None:
    """Record that people left the resource of the incident opened on `event` as it is (it
    was undone or denied), if the sweep checks that kind of resource; returns the finding
    recorded."""
    finding = FINDINGS.get((event.source, event.name))
    resource = event.resource
    if finding is None or not isinstance(resource, str):
        return None
    account, region, name = locate(finding, resource, event.account or "", event.region)
    entry = _entry(finding, name)
    decision = {"Incident": incident_id, "By": who, "At": timestamp(now)}

    def change(stored: dict[str, Any] | None) -> dict[str, Any]:
        return {"Decisions": {**(stored or {}).get("Decisions", {}), entry: decision}}

    memory.amend(document_key(account, region), change)
    return entry


class Decisions:
    """The decisions recorded for one account and region, as the sweep reads them once per
    look, and the ones it found no longer apply (`safe_again`), forgotten by `forget_safe`."""

    def __init__(self, memory: Memory, account: str, region: str, seen_at: dt.datetime) -> None:
        self.memory = memory
        self.account = account
        self.region = region
        self.seen_at = seen_at.replace(microsecond=0)
        """When the sweep started looking (to the second, as decisions are recorded): a
        decision recorded since may be about a change the sweep did not see, so it is not
        forgotten on what it saw."""
        stored = memory.recall(document_key(account, region)) or {}
        self.entries: dict[str, dict[str, Any]] = dict(stored.get("Decisions", {}))
        self._safe: set[str] = set()

    def accepted(self, finding: str, name_or_arn: str) -> dict[str, Any] | None:
        """The decision to leave this finding as it is, if people made one."""
        return self.entries.get(self._entry(finding, name_or_arn))

    def safe_again(self, finding: str, name_or_arn: str) -> None:
        """The resource was seen without this finding: a decision about it has served."""
        entry = self._entry(finding, name_or_arn)
        if entry in self.entries:
            self._safe.add(entry)

    def forget_safe(self) -> list[str]:
        """Forget the decisions that served (each only if recorded before the sweep looked)."""
        if not self._safe:
            return []
        forgotten: list[str] = []

        def change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
            forgotten.clear()
            decisions = dict((stored or {}).get("Decisions", {}))
            for entry in self._safe:
                if entry in decisions and dt.datetime.fromisoformat(decisions[entry]["At"]) < self.seen_at:
                    forgotten.append(entry)
                    del decisions[entry]
            return {"Decisions": decisions} if forgotten else None

        self.memory.amend(document_key(self.account, self.region), change)
        return sorted(forgotten)

    def _entry(self, finding: str, name_or_arn: str) -> str:
        return _entry(finding, locate(finding, name_or_arn, self.account, self.region)[2])
