"""Findings out: each incident as a Security Hub finding (ASFF), its workflow status
following the incident.

- `to_asff(incident, stage)` is the finding `BatchImportFindings` takes. Its product is the
  account's own custom product (`arn:<partition>:securityhub:<region>:<account>:product/<account>/default`),
  and with that product AWS requires the calling account to be the finding's
  `AwsAccountId`: a member account's incident is imported from that account, through
  trailguard's member role, in the incident's region (or the stage's
  `TRAILGUARD_SECURITY_HUB_REGION`), and reaches the organization's Security Hub
  administrator through its own aggregation.
- `BatchImportFindings` cannot change `Workflow` (nor Note, VerificationState,
  UserDefinedFields) once a finding exists, and providers are told to update Severity and
  Types through `FindingProviderFields`. So the import never carries `Workflow` (a new
  finding is NEW), and `BatchUpdateFindings` moves it as the incident moves
  (`workflow_status`).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from chalicelib.aws.clients import ClientProvider, partition_of
from chalicelib.incidents.changes import StateChanges
from chalicelib.incidents.model import Incident, State
from chalicelib.outputs import facts
from chalicelib.outputs.resources import resource_of
from chalicelib.text import cut

SCHEMA_VERSION = "2018-10-08"
PRODUCT_NAME = COMPANY_NAME = "trailguard"
SEVERITY_LABELS = {"low": "LOW", "medium": "MEDIUM", "high": "HIGH", "critical": "CRITICAL"}

NOTIFIED_STATES = frozenset(
    {State.PROPOSED, State.REMEDIATING, State.FAILED, State.UNDOING, State.NOTIFIED, State.SIMULATED, State.EXPIRED}
)
"""People were told and someone may still act (an expired proposal: nobody reviewed it)."""
SUPPRESSED_STATES = frozenset({State.DENIED, State.UNDONE})
"""People decided the change stands."""

DEFAULT_TYPES = ("Software and Configuration Checks/AWS Security Best Practices",)
TYPES_BY_SOURCE = {
    "cloudtrail.amazonaws.com": "TTPs/Defense Evasion",
    "config.amazonaws.com": "TTPs/Defense Evasion",
    "guardduty.amazonaws.com": "TTPs/Defense Evasion",
    "route53resolver.amazonaws.com": "TTPs/Defense Evasion",
    "kms.amazonaws.com": "Effects/Data Destruction",
    "s3.amazonaws.com": "Effects/Data Exposure",
    "rds.amazonaws.com": "Effects/Data Exposure",
    "ec2.amazonaws.com": "Effects/Data Exposure",
    "iam.amazonaws.com": "TTPs/Persistence",
    "lambda.amazonaws.com": "TTPs/Persistence",
    "rolesanywhere.amazonaws.com": "TTPs/Persistence",
}
"""A second ASFF type per service, after the best-practice one (playbooks do not name theirs)."""

LIMITS = {"Title": 256, "Description": 1024, "Remediation": 512, "Note": 512, "ProductField": 2048}
"""ASFF's longest texts."""


class FindingRejected(Exception):
    """Security Hub answered 200 but refused the finding (FailedFindings) or its update."""


def workflow_status(incident: Incident) -> str:
    """NEW until people were told; NOTIFIED while someone may still act; RESOLVED when the
    resource was put back (remediated, or acknowledged after a step applied); SUPPRESSED when
    people decided the change stands (denied, undone, or acknowledged with nothing applied)."""
    if incident.state is State.REMEDIATED:
        return "RESOLVED"
    if incident.state is State.ACKNOWLEDGED:
        return "RESOLVED" if facts.anything_applied(incident) else "SUPPRESSED"
    if incident.state in SUPPRESSED_STATES:
        return "SUPPRESSED"
    if incident.state in NOTIFIED_STATES:
        return "NOTIFIED"
    return "NEW"


def product_arn(account: str, region: str) -> str:
    return f"arn:{partition_of(region)}:securityhub:{region}:{account}:product/{account}/default"


def finding_id(stage: str, incident: Incident) -> str:
    return f"trailguard/{stage}/{incident.id}"


def remediation_text(incident: Incident) -> str:
    """What trailguard did or proposes, step by step, as a person reads it."""
    done = "; ".join(f"{s.action}: {s.status.value}" + (f" ({s.error})" if s.error else "") for s in incident.steps)
    planned = ", ".join(step.action for step in incident.plan)
    state = incident.state
    if state is State.PROPOSED:
        text = f"trailguard proposes {planned}; approve or deny it in Slack."
    elif state is State.FAILED:
        text = f"trailguard could not finish: {incident.error or done}. Retry or acknowledge in Slack."
    elif state is State.SIMULATED:
        text = f"Dry run: trailguard would have run {planned}."
    elif state is State.NOTIFIED:
        text = "trailguard told people; the playbook changes nothing."
    else:
        text = f"trailguard {state.value}: {done or planned or 'no steps'}."
    return cut(text, LIMITS["Remediation"])


def types_of(incident: Incident) -> list[str]:
    ttp = TYPES_BY_SOURCE.get(incident.event.source)
    return [*DEFAULT_TYPES, *([ttp] if ttp else [])]


def _ipv4(value: str | None) -> bool:
    try:
        return value is not None and ipaddress.ip_address(value).version == 4
    except ValueError:
        return False


def to_asff(incident: Incident, stage: str, region: str | None = None) -> dict[str, Any]:
    """The finding of the incident as it is now, without Workflow (see the module's doc)."""
    event = incident.event
    account = event.account
    if not account:
        raise ValueError(f"incident {incident.id}: its event names no account, which a finding needs")
    where = region or event.region
    resource = resource_of(event)
    created = facts.parse_time(incident.created_at) or facts.changed_at(incident)
    happened = facts.parse_time(event.time)
    severity = {"Label": SEVERITY_LABELS.get(incident.severity, "MEDIUM"), "Original": incident.severity}
    types = types_of(incident)
    product_fields = {
        "trailguard/Stage": stage,
        "trailguard/IncidentId": incident.id,
        "trailguard/Playbook": incident.playbook_id,
        "trailguard/Mode": incident.mode,
        "trailguard/State": incident.state.value,
        "trailguard/EventID": event.event_id,
        "trailguard/Actor": event.actor_arn or event.actor,
    }
    finding: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(stage, incident),
        "ProductArn": product_arn(account, where),
        "ProductName": PRODUCT_NAME,
        "CompanyName": COMPANY_NAME,
        "GeneratorId": f"trailguard/playbook/{incident.playbook_id}",
        "AwsAccountId": account,
        "Region": where,
        "Types": types,
        "CreatedAt": facts.iso_z(created),
        "UpdatedAt": facts.iso_z(max(created, facts.changed_at(incident))),
        "Severity": severity,
        "FindingProviderFields": {"Severity": severity, "Types": types},
        "Title": cut(incident.title or incident.playbook_id, LIMITS["Title"]),
        "Description": cut(
            f"{event.actor} called {event.name} ({event.source}) on {resource.name or 'a resource'} in {account}, "
            f"{event.region}, at {event.time}. Playbook {incident.playbook_id} ({incident.mode}); incident "
            f"{incident.id} is {incident.state.value}.",
            LIMITS["Description"],
        ),
        "Remediation": {"Recommendation": {"Text": remediation_text(incident)}},
        "ProductFields": {
            key: cut(str(value), LIMITS["ProductField"]) for key, value in product_fields.items() if value
        },
        "Resources": [
            {
                "Type": resource.type,
                "Id": resource.id,
                "Partition": resource.partition,
                **({"Region": resource.region} if resource.region else {}),
            }
        ],
        "RecordState": "ACTIVE",
    }
    if happened is not None:
        seen = facts.iso_z(happened)
        finding["FirstObservedAt"] = finding["LastObservedAt"] = seen
        call: dict[str, Any] = {"Api": event.name, "ServiceName": event.source, "FirstSeen": seen, "LastSeen": seen}
        if _ipv4(event.source_ip):
            call["RemoteIpDetails"] = {"IpAddressV4": event.source_ip}
        finding["Action"] = {"ActionType": "AWS_API_CALL", "AwsApiCallAction": call}
    return finding


def workflow_update(incident: Incident, finding: dict[str, Any]) -> dict[str, Any]:
    """The `BatchUpdateFindings` request that moves the finding to the incident's status."""
    change = facts.latest(incident)
    note = f"trailguard: incident {incident.state.value}"
    if change is not None:
        note += f" ({change.what} by {change.who})"
    return {
        "FindingIdentifiers": [{"Id": finding["Id"], "ProductArn": finding["ProductArn"]}],
        "Workflow": {"Status": workflow_status(incident)},
        "Note": {"Text": cut(note, LIMITS["Note"]), "UpdatedBy": "trailguard"},
    }


class SecurityHubFindings(StateChanges):
    """Import the incident's finding each time it comes to rest, then set its workflow status
    (1 call, 2 once people were told). `clients` act in the incident's account: trailguard's
    own role at home, the member role elsewhere."""

    name = "securityhub"

    def __init__(self, stage: str, clients: ClientProvider, region: str | None = None) -> None:
        self.stage = stage
        self.clients = clients
        self.region = region

    def rested(self, incident: Incident) -> None:
        self.publish(incident)

    def publish(self, incident: Incident) -> list[str]:
        """The calls made; FindingRejected if Security Hub refused the finding or its update."""
        finding = to_asff(incident, self.stage, self.region)
        client = self.clients.client("securityhub", finding["AwsAccountId"], finding["Region"])
        answer = client.batch_import_findings(Findings=[finding])
        if answer.get("FailedCount"):
            raise FindingRejected(f"Security Hub refused finding {finding['Id']}: {answer.get('FailedFindings')}")
        calls = ["BatchImportFindings"]
        update = workflow_update(incident, finding)
        if update["Workflow"]["Status"] != "NEW":
            answer = client.batch_update_findings(**update)
            if answer.get("UnprocessedFindings"):
                raise FindingRejected(
                    f"Security Hub did not update finding {finding['Id']}: {answer['UnprocessedFindings']}"
                )
            calls.append(f"BatchUpdateFindings {update['Workflow']['Status']}")
        return calls
