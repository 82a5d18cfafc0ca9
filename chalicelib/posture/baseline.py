"""The baseline: every trail that exists, checked against what the organization declares a
trail must be, each deviation turned into a synthetic event for the SAME playbooks.

A weak trail that was created weak never produced an event any playbook answered: nobody
stopped it, it simply never recorded enough. So `trailguard baseline` (and each sweep) reads
every trail of every account and region in scope, with its bucket and key, and compares
them with the baseline of the settings file (`baseline:`, every check on by default). Each
deviation becomes the record of the call that would have made it (an `UpdateTrail` turning
log file validation off, a `PutBucketVersioning` suspending versioning, a
`DeleteBucketPolicy`...), marked as the sweep's (`eventType: TrailguardSweep`), and goes
through the decision path like a live event: what a playbook does about an attack it does
about the same weakness found at rest, with the same undo. A deviation no playbook answers
(no customer key, no organization trail) is reported as such.

The checks read only (describe, get); the report says what trailguard would do (the
playbooks' decisions); with `--fix` (and on the sweep) the decisions are carried out, in
the modes the playbooks and the organization's ceilings give.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.aws.resource_policies import cloudtrail_can_write, public_statements
from chalicelib.aws.retrying import error_code
from chalicelib.events.record import CloudTrailEvent
from chalicelib.events.synthetic import sweep_record
from chalicelib.organization.baseline import Baseline


@dataclass
class Deviation:
    account: str
    region: str
    trail: str
    check: str
    found: str
    """What the trail (or its bucket) shows instead of the baseline."""
    call: tuple[str, str, dict[str, Any]] | None = None
    """The call (source, event name, request) that would have made the deviation; None:
    nothing a playbook answers."""
    decision: str = "told only: no playbook answers it"
    """What trailguard would do (or did): the playbooks' decisions, filled by the caller."""
    incidents: list[str] = field(default_factory=list)

    def event(self, now: dt.datetime) -> CloudTrailEvent | None:
        if self.call is None:
            return None
        source, name, request = self.call
        finding = f"baseline {self.check}: {self.found} (trail {self.trail})"
        record = sweep_record(
            self.account, self.region, source, name, request, finding, f"baseline@{self.check}@{self.trail}", now
        )
        record["additionalEventData"] = {
            "trailguardSweep": f"no CloudTrail event was received; the baseline found {finding}"
        }
        return CloudTrailEvent.from_record(record, "the baseline")

    def to_dict(self) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "account": self.account,
            "region": self.region,
            "trail": self.trail,
            "check": self.check,
            "found": self.found,
            "decision": self.decision,
        }
        if self.call is not None:
            shape["event"] = f"{self.call[0]}:{self.call[1]}"
        if self.incidents:
            shape["incidents"] = self.incidents
        return shape


def _get(call: Any, *missing: str, **params: Any) -> Any:
    """A read whose "there is none" error codes mean None."""
    try:
        return call(**params)
    except Exception as error:
        if error_code(error) in missing:
            return None
        raise


def check_region(
    clients: Any, account: str, region: str, baseline: Baseline, data_event_buckets: list[str]
) -> tuple[list[Deviation], bool]:
    """The deviations of every trail whose home is this account and region, and whether an
    organization trail is among the trails visible there."""
    cloudtrail = clients.client("cloudtrail", account, region)
    visible = cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]
    organization_trail = any(t.get("IsOrganizationTrail") for t in visible)
    found: list[Deviation] = []
    for trail in visible:
        if trail.get("HomeRegion") != region or trail["TrailARN"].split(":")[4] != account:
            continue  # a shadow of a trail checked in its own home
        found += check_trail(clients, cloudtrail, account, region, trail, baseline, data_event_buckets)
    return found, organization_trail


def check_trail(
    clients: Any,
    cloudtrail: Any,
    account: str,
    region: str,
    trail: Mapping[str, Any],
    baseline: Baseline,
    data_event_buckets: list[str],
) -> list[Deviation]:
    arn, name = trail["TrailARN"], trail["Name"]
    on = baseline.checks
    found: list[Deviation] = []

    def deviation(check: str, what: str, call: tuple[str, str, dict[str, Any]] | None = None) -> None:
        if check in on:
            found.append(Deviation(account, region, name, check, what, call))

    ct = "cloudtrail.amazonaws.com"
    if not trail.get("IsMultiRegionTrail"):
        deviation(
            "multi_region",
            "records its home region only",
            (ct, "UpdateTrail", {"name": arn, "isMultiRegionTrail": False}),
        )
    if not trail.get("LogFileValidationEnabled"):
        deviation(
            "log_file_validation",
            "log file validation off",
            (ct, "UpdateTrail", {"name": arn, "enableLogFileValidation": False}),
        )
    if not trail.get("KmsKeyId"):
        deviation("kms_customer_key", "log files encrypted with S3's own keys only")
    selectors = cloudtrail.get_event_selectors(TrailName=arn)
    request = {"trailName": arn}
    if selectors.get("AdvancedEventSelectors"):
        request["advancedEventSelectors"] = _camel(selectors["AdvancedEventSelectors"])
    else:
        request["eventSelectors"] = _camel(selectors.get("EventSelectors") or [])
    from chalicelib.aws.quirks import management_event_gaps

    # No selector at all is CloudTrail's default: every management event, read and write.
    gaps = (
        management_event_gaps(request)
        if selectors.get("AdvancedEventSelectors") or selectors.get("EventSelectors")
        else []
    )
    if gaps:
        deviation(
            "management_events",
            f"management events not all recorded: {', '.join(gaps)}",
            (ct, "PutEventSelectors", request),
        )
    missing = [bucket for bucket in data_event_buckets if bucket not in json.dumps(selectors)]
    if missing:
        deviation("data_events", f"no S3 data events for {', '.join(missing)}")
    insights = _get(cloudtrail.get_insight_selectors, "InsightNotEnabledException", TrailName=arn) or {}
    if not insights.get("InsightSelectors"):
        deviation("insights", "Insights off", (ct, "PutInsightSelectors", {"trailName": arn, "insightSelectors": []}))
    bucket = trail.get("S3BucketName")
    if bucket:
        found += _check_bucket(clients, account, region, name, bucket, baseline, deviation)
    return found


def _check_bucket(
    clients: Any, account: str, region: str, trail: str, bucket: str, baseline: Baseline, deviation: Any
) -> list[Deviation]:
    """The bucket's checks (read in the trail's account: a bucket in another account, an
    organization trail's log archive, is read there by its own sweep)."""
    s3 = clients.client("s3", account, region)
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as error:
        if error_code(error) in ("403", "AccessDenied", "Forbidden"):
            return []  # another account's bucket: checked where it lives
        raise
    src = "s3.amazonaws.com"
    policy_text = (_get(s3.get_bucket_policy, "NoSuchBucketPolicy", Bucket=bucket) or {}).get("Policy")
    policy = json.loads(policy_text) if policy_text else None
    if policy is not None and public_statements(policy, [account], []):
        deviation(
            "bucket_not_public",
            "the bucket policy opens it to everyone",
            (src, "PutBucketPolicy", {"bucketName": bucket, "bucketPolicy": policy}),
        )
    if not cloudtrail_can_write(policy):
        call = (
            (src, "PutBucketPolicy", {"bucketName": bucket, "bucketPolicy": policy})
            if policy is not None
            else (src, "DeleteBucketPolicy", {"bucketName": bucket})
        )
        deviation("bucket_writable_by_cloudtrail", "the bucket policy does not let CloudTrail write", call)
    logging_status = s3.get_bucket_logging(Bucket=bucket)
    if not logging_status.get("LoggingEnabled"):
        deviation(
            "access_logging",
            "server access logging off",
            (src, "PutBucketLogging", {"bucketName": bucket, "BucketLoggingStatus": {}}),
        )
    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    if versioning != "Enabled":
        deviation(
            "versioning",
            f"versioning {versioning or 'never enabled'}",
            (src, "PutBucketVersioning", {"bucketName": bucket, "VersioningConfiguration": {"Status": "Suspended"}}),
        )
    rules = (_get(s3.get_bucket_lifecycle_configuration, "NoSuchLifecycleConfiguration", Bucket=bucket) or {}).get(
        "Rules", []
    )
    short = [
        rule
        for rule in rules
        if rule.get("Status") == "Enabled"
        and rule.get("Expiration")
        and int(rule["Expiration"].get("Days", 0)) < baseline.lifecycle_min_days
    ]
    if short:
        days = min(int(rule["Expiration"].get("Days", 0)) for rule in short)
        deviation(
            "lifecycle",
            f"log files deleted after {days} days (baseline: {baseline.lifecycle_min_days})",
            (src, "PutBucketLifecycle", {"bucketName": bucket, "LifecycleConfiguration": {"Rule": rules}}),
        )
    lock = (_get(s3.get_object_lock_configuration, "ObjectLockConfigurationNotFoundError", Bucket=bucket) or {}).get(
        "ObjectLockConfiguration"
    ) or {}
    retention = (lock.get("Rule") or {}).get("DefaultRetention") or {}
    if retention.get("Mode") != "COMPLIANCE":
        deviation(
            "object_lock",
            "no Object Lock retention in compliance mode",
            (src, "PutObjectLockConfiguration", {"bucketName": bucket, "ObjectLockConfiguration": lock}),
        )
    return []


def _camel(selectors: list[Any]) -> list[Any]:
    """Event selectors as CloudTrail records them in requestParameters (first letter lower case)."""
    if isinstance(selectors, list):
        return [_camel(item) for item in selectors]
    if isinstance(selectors, dict):
        return {key[:1].lower() + key[1:]: _camel(value) for key, value in selectors.items()}
    return selectors


@dataclass
class BaselineReport:
    deviations: list[Deviation] = field(default_factory=list)
    trails: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trails": self.trails,
            "deviations": [d.to_dict() for d in self.deviations],
            "errors": self.errors,
        }


class BaselineCheck:
    """Every trail in scope against the organization's baseline; each deviation decided by
    the playbooks (`fix`: carried out, else only said)."""

    def __init__(
        self,
        *,
        responder: Any,
        clients: Any,
        places: Any,
        baseline: Baseline,
        data_event_buckets: list[str],
        fix: bool = False,
    ) -> None:
        self.responder = responder
        self.clients = clients
        self.places = places
        self.baseline = baseline
        self.data_event_buckets = data_event_buckets
        self.fix = fix

    def run(self) -> BaselineReport:
        from chalicelib.memory import trails

        report = BaselineReport()
        incidents = self.responder.incidents
        now = incidents.clock()
        organization_trail = False
        places = list(self.places())
        for account, region in places:
            try:
                client = self.clients.client("cloudtrail", account, region)
                if incidents.memory is not None:  # the audit chain knows each trail's bucket and key
                    trails.remember_all(incidents.memory, client, account, region)
                found, has_organization_trail = check_region(
                    self.clients, account, region, self.baseline, self.data_event_buckets
                )
            except Exception as error:
                from chalicelib.aws.errors import describe_error

                report.errors.append(f"{account}/{region}: {describe_error(error)}")
                continue
            organization_trail = organization_trail or has_organization_trail
            report.trails += len({d.trail for d in found}) if found else 0
            for deviation in found:
                self._decide(deviation, now)
            report.deviations += found
        if "organization_trail" in self.baseline.checks and places and not organization_trail:
            account, region = places[0]
            report.deviations.append(
                Deviation(account, region, "-", "organization_trail", "no organization trail is visible in scope")
            )
        return report

    def check_place(self, account: str, region: str) -> list[Deviation]:
        """One account and region's deviations, decided (the sweep's part; the organization
        trail is a question for the whole scope, asked by `run`)."""
        found, _ = check_region(self.clients, account, region, self.baseline, self.data_event_buckets)
        now = self.responder.incidents.clock()
        for deviation in found:
            self._decide(deviation, now)
        return found

    def _decide(self, deviation: Deviation, now: dt.datetime) -> None:
        from chalicelib.respond.responder import decide

        event = deviation.event(now)
        if event is None:
            return
        responder = self.responder
        if self.fix:
            decision, outcomes = responder.respond(event)
            deviation.incidents = [outcome.incident.id for outcome in outcomes]
            said = [f"{o.playbook.id}: {o.incident.mode} -> {o.incident.state.value}" for o in outcomes]
            answered = {o.playbook.id for o in outcomes}
            said += [
                f"{plan.playbook.id}: nothing to propose (nothing remembered to put back)"
                for plan in decision.plans
                if plan.playbook.id not in answered
            ]
        else:
            decision = decide(responder.catalog, event, responder.own, responder.lists, responder.controls)
            said = []
            for plan in decision.plans:
                assessed = responder.incidents.assess(plan)
                if assessed is None:
                    said.append(f"{plan.playbook.id}: nothing to propose (nothing remembered to put back)")
                    continue
                steps = ", ".join(step.action for step in assessed.steps) or "tell"
                said.append(f"{plan.playbook.id}: {assessed.mode} ({steps})")
        if decision.skip is not None:
            said.append(f"skipped: {decision.skip.reason}")
        if said:
            deviation.decision = "; ".join(said)
        elif decision.rejections:
            deviation.decision = "left alone: " + "; ".join(f"{p.id} ({why})" for p, why in decision.rejections)


def table(report: BaselineReport) -> str:
    """The report for a terminal: one line per deviation."""
    headers = ("ACCOUNT", "REGION", "TRAIL", "CHECK", "FOUND", "TRAILGUARD")
    rows = [(d.account, d.region, d.trail, d.check, d.found, d.decision) for d in report.deviations]
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers) - 1)]
    lines = [
        "  ".join(str(v).ljust(w) for v, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in [headers, *rows]
    ]
    lines.append(f"{len(report.deviations)} deviation(s) in {report.trails} trail(s)")
    lines += [f"error: {error}" for error in report.errors]
    return "\n".join(lines)
