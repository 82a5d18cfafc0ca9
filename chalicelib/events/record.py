"""The CloudTrail event model: one shape for a record, whatever envelope it came in.

Playbooks, guards and messages all read events through `CloudTrailEvent`, so that the
quirks of real records (assumed-role sessions, null parameters, missing optional fields)
are handled here once. A record that cannot be trusted to mean what it says is refused
with `EventError`, which names what is wrong and where it was found.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.text import cut

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
_ACCOUNT_ID = re.compile(r"[0-9]{12}")

# Fields every real CloudTrail record carries and that trailguard cannot do without:
# the identity of the call (for duplicates), what was called, when and where.
_REQUIRED_TEXT = ("eventID", "eventName", "eventSource", "eventTime", "awsRegion")
_OPTIONAL_TEXT = (
    "errorCode",
    "errorMessage",
    "sourceIPAddress",
    "userAgent",
    "recipientAccountId",
    "eventType",
)
_OPTIONAL_OBJECT = ("requestParameters", "responseElements", "additionalEventData")


class EventError(ValueError):
    """Input that is not a usable CloudTrail event.

    `where` says where it was found ("trail.json.gz record 12", "EventBridge event abc"),
    `problem` what is wrong with it; `str()` gives both on one line for logs and CLIs.
    """

    def __init__(self, problem: str, where: str | None = None) -> None:
        self.problem = problem
        self.where = where
        super().__init__(f"{where}: {problem}" if where else problem)

    def __reduce__(self) -> tuple[type[EventError], tuple[str, str | None]]:
        # Readers in other processes (parallel replay) send errors back pickled.
        return (EventError, (self.problem, self.where))

    def located(self, where: str) -> EventError:
        """The same problem, placed (used by readers that know the file and record)."""
        return EventError(self.problem, where)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(value), type(value).__name__)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made the call, as far as CloudTrail tells."""

    type: str | None
    arn: str | None
    account: str | None
    name: str | None
    role_arn: str | None = None
    role_name: str | None = None
    session_name: str | None = None

    @property
    def label(self) -> str:
        """The shortest text that identifies the actor for a person reading a message."""
        if self.role_name:
            session = f"/{self.session_name}" if self.session_name else ""
            return f"role {self.role_name}{session}"
        if self.type == "Root":
            return "root user"
        if self.name:
            return f"{(self.type or 'principal')} {self.name}"
        return self.arn or self.type or "unknown principal"


def _actor_from(identity: Mapping[str, Any]) -> Actor:
    kind = identity.get("type")
    arn = identity.get("arn")
    account = identity.get("accountId")
    session = identity.get("sessionContext") or {}
    issuer = session.get("sessionIssuer") if isinstance(session, dict) else None
    issuer = issuer if isinstance(issuer, dict) else {}

    if kind == "AssumedRole" or (isinstance(arn, str) and ":assumed-role/" in arn):
        # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION; the issuer carries the role's own
        # ARN (with its path). Hand-written records sometimes lack the issuer or session.
        # AWS's own documentation prints an AssumedRole whose arn is an IAM user's (the GuardDuty
        # guide's CreateThreatIntelSet): no session is read from that.
        parts = arn.split(":assumed-role/", 1)[1].split("/") if isinstance(arn, str) and ":assumed-role/" in arn else []
        role_name = issuer.get("userName") or (parts[0] if parts else None)
        session_name = parts[1] if len(parts) > 1 else None
        return Actor(
            type=kind,
            arn=arn,
            account=account,
            name=session_name,
            role_arn=issuer.get("arn"),
            role_name=role_name,
            session_name=session_name,
        )
    if kind == "AWSService":
        return Actor(type=kind, arn=arn, account=account, name=identity.get("invokedBy"))
    name = identity.get("userName")
    if name is None and isinstance(arn, str) and "/" in arn:
        name = arn.rsplit("/", 1)[1]
    return Actor(type=kind, arn=arn, account=account, name=name)


def actor_from_arn(arn: str) -> Actor:
    """The actor an ARN names (an assumed-role session, a user, a role, the root user), for
    verdicts that name a principal by ARN alone (CloudTrail Insights' attributions)."""
    account = arn.split(":")[4] if arn.count(":") >= 5 else None
    if ":assumed-role/" in arn:
        return _actor_from({"type": "AssumedRole", "arn": arn, "accountId": account})
    if ":role/" in arn:
        name = arn.rsplit("/", 1)[-1]
        return Actor("AssumedRole", None, account, None, role_arn=arn, role_name=name)
    if arn.endswith(":root"):
        return Actor("Root", arn, account, None)
    return _actor_from({"type": "IAMUser" if ":user/" in arn else None, "arn": arn, "accountId": account})


@dataclass(frozen=True, slots=True)
class CloudTrailEvent:
    """A CloudTrail record (the `detail` of an EventBridge event), checked on construction.

    `record` is the record exactly as CloudTrail wrote it: playbook expressions run over it,
    so a playbook author can rely on CloudTrail's own documentation of the fields.
    """

    record: Mapping[str, Any]
    where: str | None = None
    delivered_for: str | None = None
    """The account EventBridge delivered the event for (its envelope's `account`), when it
    came through EventBridge: AWS sets it, so it is where trailguard may act."""

    def __post_init__(self) -> None:
        _check_record(self.record, self.where)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_record(cls, record: Any, where: str | None = None) -> CloudTrailEvent:
        """A bare CloudTrail record, as in S3 log files and the `detail` of EventBridge."""
        return cls(record, where)

    @classmethod
    def from_eventbridge(cls, envelope: Any, where: str | None = None) -> CloudTrailEvent:
        """An "AWS API Call via CloudTrail" event as EventBridge delivers it.

        Only AWS can put events whose source starts with `aws.` on a bus, so an envelope
        with any other source is refused: it did not come from CloudTrail.
        """
        if not isinstance(envelope, dict):
            raise EventError(f"expected an EventBridge event object, got {_type_name(envelope)}", where)
        where = where or f"EventBridge event {envelope.get('id', '(no id)')}"
        detail_type = envelope.get("detail-type")
        if detail_type != CLOUDTRAIL_DETAIL_TYPE:
            raise EventError(f"detail-type is {detail_type!r}, expected {CLOUDTRAIL_DETAIL_TYPE!r}", where)
        source = envelope.get("source")
        if not isinstance(source, str) or not source.startswith("aws."):
            raise EventError(f"source is {source!r}; CloudTrail events come from an 'aws.*' source", where)
        if "detail" not in envelope:
            raise EventError("missing field 'detail'", where)
        delivered_for = envelope.get("account")
        if delivered_for is not None and not (isinstance(delivered_for, str) and _ACCOUNT_ID.fullmatch(delivered_for)):
            raise EventError(f"account is {delivered_for!r}; expected a 12-digit AWS account id", where)
        detail = envelope["detail"]
        recipient = detail.get("recipientAccountId") if isinstance(detail, dict) else None
        if delivered_for is not None and recipient is not None and recipient != delivered_for:
            # The record is the caller's to shape only through real calls, but a forwarding
            # rule or a bus policy gone wrong could carry another account's record: act only
            # where AWS says the event happened.
            raise EventError(
                f"the record names account {recipient!r} but EventBridge delivered it for account "
                f"{delivered_for}; trailguard acts only in the account the event came from",
                where,
            )
        return cls(detail, where, delivered_for)

    @classmethod
    def from_any(cls, data: Any, where: str | None = None) -> CloudTrailEvent:
        """An EventBridge envelope or a bare record, whichever `data` is."""
        if isinstance(data, dict) and "detail-type" in data:
            return cls.from_eventbridge(data, where)
        return cls.from_record(data, where)

    # -- accessors ------------------------------------------------------------------------

    @property
    def event_id(self) -> str:
        return self.record["eventID"]

    @property
    def name(self) -> str:
        return self.record["eventName"]

    @property
    def source(self) -> str:
        return self.record["eventSource"]

    @property
    def region(self) -> str:
        return self.record["awsRegion"]

    @property
    def time(self) -> dt.datetime:
        """When the call was made, in UTC."""
        return _parse_time(self.record["eventTime"], self.where)

    @property
    def account(self) -> str | None:
        """The account whose resources the call touched (where a remediation must act): the
        record's recipient, else the account EventBridge delivered it for, else the caller's."""
        recipient = self.record.get("recipientAccountId") or self.delivered_for
        if recipient:
            return str(recipient)
        caller = self.actor.account
        return caller if isinstance(caller, str) and _ACCOUNT_ID.fullmatch(caller) else None

    @property
    def actor(self) -> Actor:
        return _actor_from(self.record["userIdentity"])

    @property
    def source_ip(self) -> str | None:
        return self.record.get("sourceIPAddress")

    @property
    def user_agent(self) -> str | None:
        return self.record.get("userAgent")

    @property
    def error_code(self) -> str | None:
        return self.record.get("errorCode")

    @property
    def failed(self) -> bool:
        """The call was refused or failed: it changed nothing, so nothing needs undoing."""
        return bool(self.record.get("errorCode"))

    @property
    def read_only(self) -> bool:
        return self.record.get("readOnly") is True

    @property
    def request_parameters(self) -> Mapping[str, Any]:
        return self.record.get("requestParameters") or {}

    @property
    def response_elements(self) -> Mapping[str, Any]:
        return self.record.get("responseElements") or {}

    @property
    def resource(self) -> str | None:
        """The name of what the call acted on, for a person reading a message.

        CloudTrail has no one field for it: this is the first request parameter among the
        names AWS APIs give their target (a trail's `name`, a `bucketName`, a `keyId`...).
        """
        request = self.request_parameters
        for key in _RESOURCE_PARAMETERS:
            value = request.get(key)
            if isinstance(value, str) and value:
                return value
        return None

    def summary(self) -> EventSummary:
        """The few fields an incident keeps and a message shows, whatever the record's size
        (each text cut to SUMMARY_TEXT_LIMIT characters: the caller chooses a user agent)."""
        return summary_of(self, self.record.get("eventType"), self.record["eventTime"])


class Summarised(Protocol):
    """What every event the decision path answers tells of itself (`summary_of`)."""

    @property
    def event_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def account(self) -> str | None: ...
    @property
    def region(self) -> str: ...
    @property
    def actor(self) -> Actor: ...
    @property
    def resource(self) -> str | None: ...
    @property
    def source_ip(self) -> str | None: ...
    @property
    def user_agent(self) -> str | None: ...


def summary_of(event: Summarised, event_type: Any, event_time: Any, **more: Any) -> EventSummary:
    """The fields every incident keeps of its event, a record's or a finding's (`more`: a
    kind's own, such as a finding's title), each text cut to SUMMARY_TEXT_LIMIT characters."""
    actor = event.actor
    summary = {
        "eventID": event.event_id,
        "eventName": event.name,
        "eventSource": event.source,
        "eventType": event_type,
        "eventTime": event_time,
        "account": event.account,
        "region": event.region,
        "actor": actor.label,
        "actorArn": actor.arn,
        "session": actor.session_name,
        "resource": event.resource,
        "sourceIPAddress": event.source_ip,
        "userAgent": event.user_agent,
        **more,
    }
    return EventSummary(
        {key: cut(value, SUMMARY_TEXT_LIMIT) if isinstance(value, str) else value for key, value in summary.items()}
    )


SUMMARY_TEXT_LIMIT = 1000
SWEEP_EVENT_TYPE = "TrailguardSweep"
"""The eventType of the records the posture sweep writes (`synthetic.sweep_record`)."""
FINDING_EVENT_TYPES = frozenset({"GuardDutyFinding", "SecurityHubFinding", "AwsCloudTrailInsight"})
"""The eventType an incident's summary keeps for a detector's verdict (`finding.EVENT_TYPES`)."""


class EventSummary:
    """An event as an incident keeps it (`CloudTrailEvent.summary`), read by name.

    A view over the fields as stored, which it hands back unchanged (`to_dict`): the
    incident's seal covers them as written. The identity of the call, what it was, when
    and where are always there; the rest may be null."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._fields = dict(fields)

    @property
    def event_id(self) -> str:
        return str(self._fields["eventID"])

    @property
    def name(self) -> str:
        return str(self._fields["eventName"])

    @property
    def source(self) -> str:
        return str(self._fields["eventSource"])

    @property
    def time(self) -> str:
        return str(self._fields["eventTime"])

    @property
    def region(self) -> str:
        return str(self._fields["region"])

    @property
    def account(self) -> str | None:
        """Where the call acted (see `CloudTrailEvent.account`)."""
        return self._fields.get("account")

    @property
    def type(self) -> str | None:
        return self._fields.get("eventType")

    @property
    def from_sweep(self) -> bool:
        """The posture sweep found this: no CloudTrail event was received."""
        return self.type == SWEEP_EVENT_TYPE

    @property
    def from_finding(self) -> bool:
        """A detector's verdict (GuardDuty, Security Hub, CloudTrail Insights), not an API call."""
        return self.type in FINDING_EVENT_TYPES

    @property
    def finding_title(self) -> str | None:
        return self._fields.get("findingTitle")

    @property
    def finding_severity(self) -> str | None:
        return self._fields.get("findingSeverity")

    @property
    def actor(self) -> str:
        """Who made the call, for a person (`Actor.label`)."""
        return str(self._fields["actor"])

    @property
    def actor_arn(self) -> str | None:
        return self._fields.get("actorArn")

    @property
    def session(self) -> str | None:
        return self._fields.get("session")

    @property
    def resource(self) -> str | None:
        """What the call acted on, by name (see `CloudTrailEvent.resource`)."""
        return self._fields.get("resource")

    @property
    def source_ip(self) -> str | None:
        return self._fields.get("sourceIPAddress")

    @property
    def user_agent(self) -> str | None:
        return self._fields.get("userAgent")

    def to_dict(self) -> dict[str, Any]:
        return dict(self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EventSummary) and other._fields == self._fields

    def __repr__(self) -> str:
        return f"EventSummary({self._fields!r})"


_RESOURCE_PARAMETERS = (
    "name",
    "trailName",
    "bucketName",
    "keyId",
    "groupId",
    "snapshotId",
    "imageId",
    "dBSnapshotIdentifier",
    "dBClusterSnapshotIdentifier",
    "detectorId",
    "configurationRecorderName",
    "deliveryChannelName",
    "userName",
    "roleName",
    "functionName",
    "accessKeyId",
    "flowLogIds",
    "resourceArn",
    "policyArn",
)


def _check_record(record: Any, where: str | None) -> None:
    """Refuse a record whose fields trailguard relies on are missing or of the wrong type."""
    if not isinstance(record, dict):
        raise EventError(f"expected a CloudTrail record object, got {_type_name(record)}", where)
    for key in _REQUIRED_TEXT:
        value = record.get(key)
        if value is None:
            raise EventError(f"missing field {key!r}", where)
        if not isinstance(value, str) or not value:
            raise EventError(f"{key} must be a non-empty string, got {_type_name(value)}", where)
    _parse_time(record["eventTime"], where)
    identity = record.get("userIdentity")
    if identity is None:
        raise EventError("missing field 'userIdentity'", where)
    if not isinstance(identity, dict):
        raise EventError(f"userIdentity must be an object, got {_type_name(identity)}", where)
    for key in _OPTIONAL_TEXT:
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise EventError(f"{key} must be a string, got {_type_name(value)}", where)
    for key in _OPTIONAL_OBJECT:
        value = record.get(key)
        if value is not None and not isinstance(value, dict):
            raise EventError(f"{key} must be an object or null, got {_type_name(value)}", where)
    read_only = record.get("readOnly")
    if read_only is not None and not isinstance(read_only, bool):
        raise EventError(f"readOnly must be true or false, got {_type_name(read_only)}", where)


def _parse_time(text: str, where: str | None) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise EventError(f"eventTime {text!r} is not an ISO 8601 time", where) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
