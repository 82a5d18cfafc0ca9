"""An incident as an OCSF Detection Finding (class 2004, category Findings), for SIEMs and
Amazon Security Lake custom sources.

OCSF 1.1.0 (https://schema.ocsf.io/1.1.0/classes/detection_finding; github.com/ocsf/ocsf-schema,
tag v1.1.0, `events/findings/detection_finding.json`): the version Security Lake documents
for custom sources; later 1.x versions keep these attributes. Times are `timestamp_t`,
milliseconds since the epoch. The activity follows the incident (Create when it opens, Close
when Security Hub's status would be RESOLVED or SUPPRESSED, Update otherwise), and
`status_id` is `findings.workflow_status` in OCSF's words.
"""

from __future__ import annotations

from typing import Any

from chalicelib import __version__
from chalicelib.incidents.model import Incident
from chalicelib.outputs import facts
from chalicelib.outputs.findings import finding_id, remediation_text, workflow_status
from chalicelib.outputs.resources import resource_of

OCSF_VERSION = "1.1.0"
CATEGORY_UID, CATEGORY_NAME = 2, "Findings"
CLASS_UID, CLASS_NAME = 2004, "Detection Finding"
ACTIVITIES = {1: "Create", 2: "Update", 3: "Close"}
SEVERITIES = {"low": (2, "Low"), "medium": (3, "Medium"), "high": (4, "High"), "critical": (5, "Critical")}
STATUSES = {
    "NEW": (1, "New"),
    "NOTIFIED": (2, "In Progress"),
    "SUPPRESSED": (3, "Suppressed"),
    "RESOLVED": (4, "Resolved"),
}
ANALYTIC_RULE = 1
AWS_ACCOUNT = 10


def _ms(value: str | None) -> int | None:
    moment = facts.parse_time(value)
    return int(moment.timestamp() * 1000) if moment else None


def activity_id(incident: Incident) -> int:
    if workflow_status(incident) in ("RESOLVED", "SUPPRESSED"):
        return 3
    return 1 if len(incident.history) <= 1 else 2


def to_ocsf(incident: Incident, stage: str) -> dict[str, Any]:
    event = incident.event
    activity = activity_id(incident)
    severity_id, severity = SEVERITIES.get(incident.severity, (99, "Other"))
    status_id, status = STATUSES[workflow_status(incident)]
    resource = resource_of(event)
    modified = int(facts.changed_at(incident).timestamp() * 1000)
    created = _ms(incident.created_at)
    happened = _ms(event.time)
    call = {"operation": event.name, "service": {"name": event.source}}
    finding_info: dict[str, Any] = {
        "uid": finding_id(stage, incident),
        "title": incident.title or incident.playbook_id,
        "desc": f"{event.actor} called {event.name} on {resource.name or 'a resource'}",
        "types": [event.name],
        "analytic": {
            "uid": incident.playbook_id,
            "name": incident.playbook_id,
            "type_id": ANALYTIC_RULE,
            "type": "Rule",
        },
        "modified_time": modified,
    }
    if created is not None:
        finding_info["created_time"] = created
    if happened is not None:
        finding_info["first_seen_time"] = finding_info["last_seen_time"] = happened
    cloud: dict[str, Any] = {"provider": "AWS", "region": event.region}
    if event.account:
        cloud["account"] = {"uid": event.account, "type_id": AWS_ACCOUNT, "type": "AWS Account"}
    evidence: dict[str, Any] = {
        "actor": {"user": {"uid": event.actor_arn or event.actor, "name": event.actor}},
        "api": call,
    }
    if event.source_ip:
        evidence["src_endpoint"] = {"ip": event.source_ip}
    return {
        "activity_id": activity,
        "activity_name": ACTIVITIES[activity],
        "category_uid": CATEGORY_UID,
        "category_name": CATEGORY_NAME,
        "class_uid": CLASS_UID,
        "class_name": CLASS_NAME,
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": f"{CLASS_NAME}: {ACTIVITIES[activity]}",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "time": modified,
        "message": f"{incident.title}: incident {incident.state.value}",
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "trailguard", "vendor_name": "trailguard", "version": __version__},
            "uid": f"{finding_id(stage, incident)}/{incident.history_count}",
            "original_time": event.time,
        },
        "finding_info": finding_info,
        "cloud": cloud,
        "api": call,
        "resources": [
            {
                "uid": resource.id,
                "type": resource.type,
                **({"name": resource.name} if resource.name else {}),
                **({"region": resource.region} if resource.region else {}),
                "cloud_partition": resource.partition,
            }
        ],
        "remediation": {"desc": remediation_text(incident)},
        "evidences": [evidence],
        "unmapped": {
            "trailguard": {
                "stage": stage,
                "incident": incident.id,
                "state": incident.state.value,
                "mode": incident.mode,
                "eventID": event.event_id,
            }
        },
    }
