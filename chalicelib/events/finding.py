"""Verdicts AWS's own detectors deliver: GuardDuty findings, Security Hub findings (ASFF) and
CloudTrail Insights events, each read into one model (`Finding`) that the decision path uses
as it uses a CloudTrail record (`Event`).

A finding is not an API call, and is not dressed as one: its `record` is the finding as the
detector wrote it (what playbook expressions run over: `type`, `severity`, `resource...` for
GuardDuty; `Severity.Label`, `Types`, `Resources` for ASFF; `insightDetails` for Insights),
and the few things the decision path asks of any event (an identity for duplicates, what it
is, when, where, about whom) are read from the fields each detector documents:

- GuardDuty ("GuardDuty Finding", source aws.guardduty): the finding is the event's `detail`;
  its `id` is stable across updates of the same finding (one incident per finding), its
  `type` is what a playbook's `events:` names.
- Security Hub ("Security Hub Findings - Imported", source aws.securityhub): `detail.findings`
  holds exactly one ASFF finding ("Each event sends a single finding", Security Hub's
  EventBridge event formats); its `ProductName` is what `events:` names.
- CloudTrail Insights ("AWS Insight via CloudTrail"): the Insights record is the `detail`; its
  `insightDetails.insightType` (ApiCallRateInsight, ApiErrorRateInsight) is what `events:` names.

Where a detector runs for a whole organization, the delegated administrator's bus receives
the members' findings: the account to act in is the one the finding names (`accountId`,
`AwsAccountId`, `recipientAccountId`), which AWS writes, not the envelope's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.events.record import Actor, EventError, EventSummary, actor_from_arn, summary_of

GUARDDUTY = "guardduty"
SECURITY_HUB = "securityhub"
INSIGHTS = "cloudtrail-insights"
KINDS = (GUARDDUTY, SECURITY_HUB, INSIGHTS)
"""What a playbook's `when.source` names for a finding (a CloudTrail eventSource ends in
.amazonaws.com, so the two never meet)."""

DETAIL_TYPES = {
    "GuardDuty Finding": GUARDDUTY,
    "Security Hub Findings - Imported": SECURITY_HUB,
    "AWS Insight via CloudTrail": INSIGHTS,
}
KIND_DETAIL_TYPES = {kind: detail_type for detail_type, kind in DETAIL_TYPES.items()}
EVENTBRIDGE_SOURCES = {GUARDDUTY: "aws.guardduty", SECURITY_HUB: "aws.securityhub"}
"""The envelope's source, as each service documents it. Insights' is not documented: its
pattern, like the API calls', requires a source AWS alone can use (`aws.` prefix)."""

EVENT_TYPES = {GUARDDUTY: "GuardDutyFinding", SECURITY_HUB: "SecurityHubFinding", INSIGHTS: "AwsCloudTrailInsight"}
"""The summary's eventType for each kind (Insights records carry this one themselves)."""

_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
_CUSTOM_PRODUCT = re.compile(r"arn:aws[a-z-]*:securityhub:[^:]*:[0-9]{12}:product/[0-9]{12}/default")

GUARDDUTY_FIELDS = frozenset(
    {
        "schemaVersion",
        "accountId",
        "region",
        "partition",
        "id",
        "arn",
        "type",
        "resource",
        "service",
        "severity",
        "confidence",
        "createdAt",
        "updatedAt",
        "title",
        "description",
        "associatedAttackSequenceArn",
    }
)
"""Top-level fields of a GuardDuty finding (GuardDuty API reference, Finding)."""

ASFF_FIELDS = frozenset(
    {
        "SchemaVersion",
        "Id",
        "ProductArn",
        "ProductName",
        "CompanyName",
        "Region",
        "GeneratorId",
        "AwsAccountId",
        "AwsAccountName",
        "Types",
        "FirstObservedAt",
        "LastObservedAt",
        "CreatedAt",
        "UpdatedAt",
        "ProcessedAt",
        "Severity",
        "Confidence",
        "Criticality",
        "Title",
        "Description",
        "Remediation",
        "SourceUrl",
        "ProductFields",
        "UserDefinedFields",
        "Malware",
        "Network",
        "NetworkPath",
        "Process",
        "Threats",
        "ThreatIntelIndicators",
        "Resources",
        "Compliance",
        "VerificationState",
        "WorkflowState",
        "Workflow",
        "RecordState",
        "RelatedFindings",
        "Note",
        "Vulnerabilities",
        "PatchSummary",
        "Action",
        "FindingProviderFields",
        "Sample",
        "GeneratorDetails",
        "Detection",
    }
)
"""Top-level fields of an ASFF finding (AWS Security Finding Format, Security Hub user guide)."""


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(value), type(value).__name__)


def _text(record: Mapping[str, Any], key: str, where: str | None) -> str:
    value = record.get(key)
    if value is None:
        raise EventError(f"missing field {key!r}", where)
    if not isinstance(value, str) or not value:
        raise EventError(f"{key} must be a non-empty string, got {_type_name(value)}", where)
    return value


def _time(text: str, key: str, where: str | None) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise EventError(f"{key} {text!r} is not an ISO 8601 time", where) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


@dataclass(frozen=True, slots=True)
class Finding:
    """One detector verdict, checked on construction (see the module's docstring)."""

    kind: str
    record: Mapping[str, Any]
    where: str | None = None
    delivered_for: str | None = None
    """The account whose bus received it (the envelope's `account`): the detector's
    administrator account for an organization's members."""

    def __post_init__(self) -> None:
        _CHECKS[self.kind](self.record, self.where)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_eventbridge(cls, envelope: Mapping[str, Any], where: str | None = None) -> Finding:
        """A finding as EventBridge delivers it; only AWS can put an `aws.*` source on a bus."""
        where = where or f"EventBridge event {envelope.get('id', '(no id)')}"
        detail_type = envelope.get("detail-type")
        kind = DETAIL_TYPES.get(detail_type) if isinstance(detail_type, str) else None
        if kind is None:
            raise EventError(f"detail-type is {detail_type!r}, expected one of {sorted(DETAIL_TYPES)}", where)
        source = envelope.get("source")
        expected = EVENTBRIDGE_SOURCES.get(kind)
        if not isinstance(source, str) or not source.startswith("aws.") or (expected and source != expected):
            raise EventError(
                f"source is {source!r}; {detail_type} events come from {expected or 'an aws.* source'}", where
            )
        detail = envelope.get("detail")
        if not isinstance(detail, dict):
            raise EventError(f"detail must be an object, got {_type_name(detail)}", where)
        delivered_for = envelope.get("account")
        if delivered_for is not None and not (isinstance(delivered_for, str) and _ACCOUNT_ID.fullmatch(delivered_for)):
            raise EventError(f"account is {delivered_for!r}; expected a 12-digit AWS account id", where)
        if kind == SECURITY_HUB:
            findings = detail.get("findings")
            if not isinstance(findings, list) or len(findings) != 1:
                count = len(findings) if isinstance(findings, list) else _type_name(findings)
                raise EventError(
                    f"detail.findings must hold exactly one finding (Security Hub sends one), got {count}", where
                )
            return cls(kind, findings[0], where, delivered_for)
        return cls(kind, detail, where, delivered_for)

    @classmethod
    def from_record(cls, kind: str, record: Any, where: str | None = None) -> Finding:
        """A bare finding (GuardDuty's, an ASFF object, an Insights record), as files hold them."""
        if not isinstance(record, dict):
            raise EventError(f"expected a finding object, got {_type_name(record)}", where)
        return cls(kind, record, where)

    # -- what the decision path asks of any event -----------------------------------------

    @property
    def event_id(self) -> str:
        """The finding's own id: GuardDuty and Security Hub keep it across updates of the
        same finding, so an update is a duplicate of the incident the first one opened."""
        key = {GUARDDUTY: "id", SECURITY_HUB: "Id", INSIGHTS: "eventID"}[self.kind]
        return str(self.record[key])

    @property
    def name(self) -> str:
        """What a playbook's `events:` lists: the GuardDuty finding type, the Security Hub
        product name, the Insights type."""
        if self.kind == GUARDDUTY:
            return str(self.record["type"])
        if self.kind == SECURITY_HUB:
            name = self.record.get("ProductName")
            return name if isinstance(name, str) and name else str(self.record["ProductArn"]).rsplit("/", 1)[-1]
        return str(self.record["insightDetails"]["insightType"])

    @property
    def source(self) -> str:
        return self.kind

    @property
    def region(self) -> str:
        key = {GUARDDUTY: "region", SECURITY_HUB: "Region", INSIGHTS: "awsRegion"}[self.kind]
        value = self.record.get(key)
        if isinstance(value, str) and value:
            return value
        # ASFF's Region is optional; the ProductArn names the region the finding was imported in
        # (AWS's own guide prints one with an extra colon: the part shaped like a region is read).
        parts = str(self.record["ProductArn"]).split(":")
        return next((part for part in parts if _REGION.fullmatch(part)), parts[3])

    @property
    def account(self) -> str | None:
        key = {GUARDDUTY: "accountId", SECURITY_HUB: "AwsAccountId", INSIGHTS: "recipientAccountId"}[self.kind]
        value = self.record.get(key) or self.delivered_for
        return str(value) if isinstance(value, str) and _ACCOUNT_ID.fullmatch(value) else None

    @property
    def time(self) -> dt.datetime:
        return _time(self._time_text, "time", self.where)

    @property
    def _time_text(self) -> str:
        key = {GUARDDUTY: "updatedAt", SECURITY_HUB: "UpdatedAt", INSIGHTS: "eventTime"}[self.kind]
        return str(self.record[key])

    @property
    def actor(self) -> Actor:
        """The principal the finding is about, as the detector names it (a GuardDuty access
        key's user, an ASFF access key's principal, the ARN behind most of an insight's calls)."""
        if self.kind == GUARDDUTY:
            return _guardduty_actor(self.record, self.account)
        if self.kind == SECURITY_HUB:
            return _asff_actor(self.record, self.account)
        arn = insight_principal(self.record)
        return actor_from_arn(arn) if arn else Actor(None, None, self.account, None)

    @property
    def failed(self) -> bool:
        return False

    @property
    def read_only(self) -> bool:
        return False

    @property
    def error_code(self) -> str | None:
        return None

    @property
    def source_ip(self) -> str | None:
        if self.kind == GUARDDUTY:
            action = _dig(self.record, "service", "action") or {}
            for key in ("awsApiCallAction", "networkConnectionAction", "portProbeAction", "kubernetesApiCallAction"):
                address = _dig(action, key, "remoteIpDetails", "ipAddressV4")
                if isinstance(address, str):
                    return address
            return None
        if self.kind == SECURITY_HUB:
            address = _dig(self.record, "Network", "SourceIpV4")
            return address if isinstance(address, str) else None
        return None

    @property
    def user_agent(self) -> str | None:
        agent = (
            _dig(self.record, "service", "action", "awsApiCallAction", "userAgent") if self.kind == GUARDDUTY else None
        )
        return agent if isinstance(agent, str) else None

    @property
    def resource(self) -> str | None:
        """What the finding is about, by name: an instance, an access key, a bucket, a role."""
        if self.kind == GUARDDUTY:
            return finding_instance(self.record) or finding_access_key(self.record) or _guardduty_other(self.record)
        if self.kind == SECURITY_HUB:
            resources = self.record.get("Resources")
            first = resources[0] if isinstance(resources, list) and resources else None
            value = first.get("Id") if isinstance(first, Mapping) else None
            return value if isinstance(value, str) else None
        details = self.record.get("insightDetails") or {}
        return f"{details.get('eventSource')} {details.get('eventName')}"

    @property
    def title(self) -> str | None:
        value = self.record.get({GUARDDUTY: "title", SECURITY_HUB: "Title", INSIGHTS: "_"}[self.kind])
        if self.kind == INSIGHTS:
            details = self.record.get("insightDetails") or {}
            value = f"unusual {_insight_words(details.get('insightType'))} of {details.get('eventName')}"
        return value if isinstance(value, str) else None

    @property
    def severity(self) -> str | None:
        return finding_severity(self.record)

    @property
    def quiet(self) -> str | None:
        """Why the detector itself says there is nothing to answer (a sample finding, an
        archived or resolved one, the end of an unusual period), or None."""
        record = self.record
        if self.kind == GUARDDUTY:
            if _dig(record, "service", "additionalInfo", "sample") is True:
                return "a GuardDuty sample finding (CreateSampleFindings): nothing happened"
            if _dig(record, "service", "archived") is True:
                return "the GuardDuty finding is archived"
            return None
        if self.kind == SECURITY_HUB:
            if record.get("Sample") is True:
                return "a Security Hub sample finding"
            if record.get("RecordState") == "ARCHIVED":
                return "the Security Hub finding is archived"
            status = _dig(record, "Workflow", "Status")
            if status in ("RESOLVED", "SUPPRESSED"):
                return f"the Security Hub finding's workflow status is {status}"
            if isinstance(record.get("ProductArn"), str) and _CUSTOM_PRODUCT.fullmatch(record["ProductArn"]):
                return (
                    "the finding was imported into Security Hub by a principal of the account (its product is the "
                    "account's own default product), not by AWS or a partner product: it is not a detector's verdict"
                )
            return None
        if (record.get("insightDetails") or {}).get("state") != "Start":
            return "the Insights event marks the end of the unusual activity; its start was answered"
        return None

    def summary(self) -> EventSummary:
        """What an incident keeps of the finding, in the fields every incident has, plus the
        finding's title and severity."""
        return summary_of(
            self, EVENT_TYPES[self.kind], self._time_text, findingTitle=self.title, findingSeverity=self.severity
        )


# -- the checks, one per kind -------------------------------------------------------------------


def _check_guardduty(record: Mapping[str, Any], where: str | None) -> None:
    for key in ("id", "type", "accountId", "region", "updatedAt"):
        _text(record, key, where)
    _time(record["updatedAt"], "updatedAt", where)
    severity = record.get("severity")
    if isinstance(severity, bool) or not isinstance(severity, (int, float)):
        raise EventError(f"severity must be a number, got {_type_name(severity)}", where)
    for key in ("resource", "service"):
        value = record.get(key)
        if value is not None and not isinstance(value, dict):
            raise EventError(f"{key} must be an object, got {_type_name(value)}", where)


def _check_asff(record: Mapping[str, Any], where: str | None) -> None:
    for key in ("Id", "ProductArn", "AwsAccountId", "UpdatedAt"):
        _text(record, key, where)
    _time(record["UpdatedAt"], "UpdatedAt", where)
    if len(str(record["ProductArn"]).split(":")) < 6:
        raise EventError(f"ProductArn {record['ProductArn']!r} is not an ARN", where)
    for key in ("Severity", "Workflow", "Network"):
        value = record.get(key)
        if value is not None and not isinstance(value, dict):
            raise EventError(f"{key} must be an object, got {_type_name(value)}", where)
    resources = record.get("Resources")
    if resources is not None and not isinstance(resources, list):
        raise EventError(f"Resources must be an array, got {_type_name(resources)}", where)


def _check_insight(record: Mapping[str, Any], where: str | None) -> None:
    for key in ("eventID", "eventTime", "awsRegion"):
        _text(record, key, where)
    _time(record["eventTime"], "eventTime", where)
    if record.get("eventType") != "AwsCloudTrailInsight":
        raise EventError(f"eventType is {record.get('eventType')!r}, expected 'AwsCloudTrailInsight'", where)
    details = record.get("insightDetails")
    if not isinstance(details, dict):
        raise EventError(f"insightDetails must be an object, got {_type_name(details)}", where)
    for key in ("state", "eventSource", "eventName", "insightType"):
        _text(details, key, f"{where}: insightDetails" if where else "insightDetails")


_CHECKS = {GUARDDUTY: _check_guardduty, SECURITY_HUB: _check_asff, INSIGHTS: _check_insight}


# -- the fields people match on (the domain functions read these) ---------------------------------

_SEVERITY_LABELS = ((9.0, "CRITICAL"), (7.0, "HIGH"), (4.0, "MEDIUM"), (1.0, "LOW"))


def finding_severity(finding: Any) -> str | None:
    """The finding's severity as a label, CRITICAL, HIGH, MEDIUM or LOW (or INFORMATIONAL for
    ASFF): GuardDuty's number by its documented ranges (9-10 critical, 7-8.9 high, 4-6.9
    medium, 1-3.9 low), ASFF's `Severity.Label`."""
    if not isinstance(finding, Mapping):
        return None
    label = _dig(finding, "Severity", "Label")
    if isinstance(label, str):
        return label
    number = finding.get("severity")
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return None
    return next((name for floor, name in _SEVERITY_LABELS if number >= floor), None)


def _access_key_details(finding: Mapping[str, Any]) -> Mapping[str, Any]:
    details = _dig(finding, "resource", "accessKeyDetails")
    if isinstance(details, Mapping):
        return details
    for resource in finding.get("Resources") or []:
        if isinstance(resource, Mapping) and resource.get("Type") == "AwsIamAccessKey":
            key = _dig(resource, "Details", "AwsIamAccessKey") or {}
            if isinstance(key, Mapping):
                return {
                    "userName": key.get("PrincipalName") or key.get("UserName"),
                    "userType": key.get("PrincipalType"),
                    "accessKeyId": _asff_key_id(resource),
                    "principalId": key.get("PrincipalId"),
                }
    return {}


def _asff_key_id(resource: Mapping[str, Any]) -> str | None:
    value = resource.get("Id")
    if isinstance(value, str) and re.fullmatch(r"(AKIA|ASIA)[A-Z0-9]{12,}", value):
        return value
    return None


def finding_role(finding: Any) -> str | None:
    """The IAM role whose credentials the finding is about (GuardDuty `accessKeyDetails` of
    userType AssumedRole or Role; an ASFF access key of PrincipalType AssumedRole or an
    AwsIamRole resource; an insight's assumed-role principal), by name; None otherwise."""
    if not isinstance(finding, Mapping):
        return None
    details = _access_key_details(finding)
    if details.get("userType") in ("AssumedRole", "Role") and isinstance(details.get("userName"), str):
        return str(details["userName"])
    for resource in finding.get("Resources") or []:
        if isinstance(resource, Mapping) and resource.get("Type") == "AwsIamRole":
            name = _dig(resource, "Details", "AwsIamRole", "RoleName")
            if isinstance(name, str):
                return name
    arn = insight_principal(finding)
    return actor_from_arn(arn).role_name if arn else None


def finding_user(finding: Any) -> str | None:
    """The IAM user the finding is about (GuardDuty `accessKeyDetails` of userType IAMUser,
    an ASFF access key of an IAMUser or an AwsIamUser resource, an insight's IAM user), by name."""
    if not isinstance(finding, Mapping):
        return None
    details = _access_key_details(finding)
    if details.get("userType") == "IAMUser" and isinstance(details.get("userName"), str):
        return str(details["userName"])
    for resource in finding.get("Resources") or []:
        if isinstance(resource, Mapping) and resource.get("Type") == "AwsIamUser":
            name = _dig(resource, "Details", "AwsIamUser", "UserName")
            if isinstance(name, str):
                return name
    arn = insight_principal(finding)
    if arn and ":user/" in arn:
        return arn.rsplit("/", 1)[-1]
    return None


def finding_principal(finding: Any) -> str | None:
    """The ARN of the IAM role or user the finding is about (`finding_role`, `finding_user`),
    in the finding's account: `arn:aws:iam::<accountId>:role/<name>` (the action that denies
    it reads the role's path from IAM); an insight's principal as attributed; None otherwise."""
    attributed = insight_principal(finding)
    if attributed is not None or not isinstance(finding, Mapping):
        return attributed
    account = finding.get("accountId") or finding.get("AwsAccountId")
    partition = finding.get("partition") if isinstance(finding.get("partition"), str) else "aws"
    if not isinstance(account, str) or not account:
        return None
    role, user = finding_role(finding), finding_user(finding)
    if role:
        return f"arn:{partition}:iam::{account}:role/{role}"
    return f"arn:{partition}:iam::{account}:user/{user}" if user else None


def finding_access_key(finding: Any) -> str | None:
    """The access key id the finding is about, if it names one."""
    if not isinstance(finding, Mapping):
        return None
    key = _access_key_details(finding).get("accessKeyId")
    return key if isinstance(key, str) else None


def finding_instance(finding: Any) -> str | None:
    """The EC2 instance the finding is about (GuardDuty `resource.instanceDetails.instanceId`,
    an ASFF AwsEc2Instance resource's id, whose ARN ends in the instance id)."""
    if not isinstance(finding, Mapping):
        return None
    instance = _dig(finding, "resource", "instanceDetails", "instanceId")
    if isinstance(instance, str):
        return instance
    for resource in finding.get("Resources") or []:
        if isinstance(resource, Mapping) and resource.get("Type") == "AwsEc2Instance":
            value = resource.get("Id")
            if isinstance(value, str):
                return value.rsplit("/", 1)[-1]
    return None


def insight_principal(finding: Any) -> str | None:
    """The principal (an ARN) behind most of an insight's unusual calls: the top
    `userIdentityArn` attribution, when it made at least half of them; None otherwise, and
    for anything but an Insights record."""
    attributions = _dig(finding, "insightDetails", "insightContext", "attributions")
    if not isinstance(attributions, list):
        return None
    for attribution in attributions:
        if not isinstance(attribution, Mapping) or attribution.get("attribute") != "userIdentityArn":
            continue
        values = [item for item in attribution.get("insight") or [] if isinstance(item, Mapping)]
        averages = [item.get("average") for item in values]
        if not values or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in averages):
            return None
        total = sum(averages)  # type: ignore[arg-type]
        top = values[0]
        share = top["average"] / total if total else 0
        return str(top["value"]) if isinstance(top.get("value"), str) and share >= 0.5 else None
    return None


def _guardduty_actor(record: Mapping[str, Any], account: str | None) -> Actor:
    details = _access_key_details(record)
    kind, name = details.get("userType"), details.get("userName")
    if not isinstance(name, str):
        return Actor(kind if isinstance(kind, str) else None, None, account, None)
    if kind in ("AssumedRole", "Role"):
        arn = f"arn:aws:iam::{account}:role/{name}" if account else None
        return Actor("AssumedRole", None, account, None, role_arn=arn, role_name=name)
    if kind == "Root":
        return Actor("Root", f"arn:aws:iam::{account}:root" if account else None, account, None)
    arn = f"arn:aws:iam::{account}:user/{name}" if account and kind == "IAMUser" else None
    return Actor(kind if isinstance(kind, str) else None, arn, account, name)


def _asff_actor(record: Mapping[str, Any], account: str | None) -> Actor:
    role, user = finding_role(record), finding_user(record)
    if role:
        arn = f"arn:aws:iam::{account}:role/{role}" if account else None
        return Actor("AssumedRole", None, account, None, role_arn=arn, role_name=role)
    if user:
        return Actor("IAMUser", f"arn:aws:iam::{account}:user/{user}" if account else None, account, user)
    return Actor(None, None, account, None)


def _guardduty_other(record: Mapping[str, Any]) -> str | None:
    resource = record.get("resource") or {}
    for bucket in resource.get("s3BucketDetails") or []:
        if isinstance(bucket, Mapping) and isinstance(bucket.get("name"), str):
            return str(bucket["name"])
    kind = resource.get("resourceType")
    return kind if isinstance(kind, str) else None


def _insight_words(insight_type: Any) -> str:
    return {"ApiCallRateInsight": "call rate", "ApiErrorRateInsight": "error rate"}.get(str(insight_type), "activity")
