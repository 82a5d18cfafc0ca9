"""Events out: trailguard's own EventBridge event each time an incident opens or comes to rest,
so that rules (API destinations to Jira, ServiceNow or PagerDuty, a queue, another account's
bus) act on it with no code in trailguard.

    source:      trailguard      (EventBridge refuses a source beginning `aws.` from customers)
    detail-type: trailguard Incident State Change
    detail:      docs/schemas/incident-state-change.v1.json (`schemaVersion` "1.0")

`(incident.id, incident.sequence)` names one change: a consumer drops a second event with
the same pair (trailguard puts each change once, after the write that made it, but
EventBridge delivers at least once). PutEvents answers 200 even when it refused an entry,
so the answer of the entry is read: a retryable refusal is tried once more, any other is
an error (the runtime's outputs count it: OutputsFailed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.incidents.changes import StateChanges
from chalicelib.incidents.model import TRAILGUARD, Incident
from chalicelib.outputs import facts
from chalicelib.outputs.resources import resource_of

SOURCE = "trailguard"
DETAIL_TYPE = "trailguard Incident State Change"
SCHEMA_VERSION = "1.0"
ENTRY_LIMIT_BYTES = 256 * 1024
"""PutEvents' limit for one entry (source, detail-type, detail and resources together)."""
RETRYABLE = frozenset({"InternalFailure", "ThrottlingException"})
EVENT_FIELDS = (
    "eventID",
    "eventName",
    "eventSource",
    "eventTime",
    "account",
    "region",
    "actor",
    "actorArn",
    "resource",
)


class EventRejected(Exception):
    """EventBridge refused the entry; the message has its error code."""


def detail(incident: Incident, stage: str) -> dict[str, Any]:
    """The event's `detail`, as the schema documents it."""
    change = facts.latest(incident)
    previous = facts.previous_state(incident)
    fields = incident.event.to_dict()
    return {
        "schemaVersion": SCHEMA_VERSION,
        "stage": stage,
        "incident": {
            "id": incident.id,
            "playbook": incident.playbook_id,
            "playbookVersion": incident.playbook_version,
            "title": incident.title,
            "severity": incident.severity,
            "mode": incident.mode,
            "state": incident.state.value,
            "sequence": incident.history_count,
            "previousState": previous.value if previous is not None else None,
            "transition": change.what if change else "open",
            "by": change.who if change else TRAILGUARD,
            "at": facts.iso_z(facts.changed_at(incident)),
            "createdAt": facts.iso_z(facts.parse_time(incident.created_at) or facts.changed_at(incident)),
            "error": incident.error,
            "secondsToRemediate": facts.seconds_to_remediate(incident) if facts.just_remediated(incident) else None,
            "steps": [{"action": s.action, "status": s.status.value, "error": s.error} for s in incident.steps],
        },
        "event": {key: fields.get(key) for key in EVENT_FIELDS},
    }


def state_change_entry(incident: Incident, stage: str, bus: str = "default", source: str = SOURCE) -> dict[str, Any]:
    """The PutEvents entry of the incident as it is now."""
    resource = resource_of(incident.event)
    entry: dict[str, Any] = {
        "Source": source,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail(incident, stage), separators=(",", ":"), default=str),
        "Resources": [resource.id] if resource.id.startswith("arn:") else [],
        "EventBusName": bus,
        "Time": facts.changed_at(incident),
    }
    size = len(source) + len(DETAIL_TYPE) + len(entry["Detail"].encode()) + sum(len(r) for r in entry["Resources"])
    if size > ENTRY_LIMIT_BYTES:
        raise EventRejected(f"incident {incident.id}: its event takes {size:,} bytes, over PutEvents' 256 KB")
    return entry


def check_source(source: str) -> str:
    if not source or source.startswith("aws."):
        raise ValueError(f"event source {source!r}: a custom source may not be empty or begin with 'aws.'")
    return source


class IncidentEvents(StateChanges):
    """One PutEvents per state change, on the stage's bus in trailguard's own account."""

    name = "eventbridge"

    def __init__(self, events: Callable[[], Any], stage: str, bus: str = "default", source: str = SOURCE) -> None:
        """`events()` gives the EventBridge client of trailguard's own account (made on first use)."""
        self.events = events
        self.stage = stage
        self.bus = bus
        self.source = check_source(source)

    def rested(self, incident: Incident) -> None:
        self.put(incident)

    def put(self, incident: Incident) -> str:
        """The id EventBridge gave the event; EventRejected if it refused the entry."""
        entry = state_change_entry(incident, self.stage, self.bus, self.source)
        client = self.events()
        for attempt in range(2):
            answer = client.put_events(Entries=[entry])
            result = answer["Entries"][0]
            if not answer.get("FailedEntryCount") and "EventId" in result:
                return str(result["EventId"])
            if result.get("ErrorCode") not in RETRYABLE or attempt:
                raise EventRejected(
                    f"incident {incident.id}: EventBridge refused its event: "
                    f"{result.get('ErrorCode')}: {result.get('ErrorMessage')}"
                )
        raise AssertionError("unreachable")
