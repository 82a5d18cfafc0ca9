"""Findings as events: GuardDuty, Security Hub (ASFF) and CloudTrail Insights read from the real
shapes in tests/data/findings (sources in its README), and refused with a clear reason when
they cannot be trusted to mean what they say."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.events import event as events
from chalicelib.events.finding import (
    GUARDDUTY,
    INSIGHTS,
    SECURITY_HUB,
    Finding,
    finding_access_key,
    finding_instance,
    finding_principal,
    finding_role,
    finding_severity,
    finding_user,
    insight_principal,
)
from chalicelib.events.record import CloudTrailEvent, EventError

pytestmark = pytest.mark.unit

FINDINGS = Path(__file__).parents[1] / "data" / "findings"


def load(name: str) -> Any:
    return json.loads((FINDINGS / name).read_text())


def test_a_guardduty_envelope_is_read_as_a_finding_about_the_instance_in_the_finding_s_account():
    raw = load("guardduty/GuardDutyFinding--c7n-Backdoor-EC2-CnCActivity.B-DNS.json")
    finding = events.from_eventbridge(raw)
    assert isinstance(finding, Finding) and finding.kind == GUARDDUTY
    assert (finding.source, finding.name) == ("guardduty", "Backdoor:EC2/C&CActivity.B!DNS")
    assert finding.event_id == "b4b01b60fc24a199139f8f5f490edd81"
    # The delegated administrator's bus (the envelope's account) receives the members' findings:
    # the account to act in is the one the finding names.
    assert (raw["account"], finding.account) == ("101010101111", "883606788610")
    assert finding.resource == finding_instance(finding.record) == "i-99999999"
    summary = finding.summary()
    assert summary.from_finding and summary.type == "GuardDutyFinding"
    assert summary.finding_severity == finding_severity(finding.record)


def test_a_guardduty_sample_finding_is_quiet():
    finding = events.from_eventbridge(
        load("guardduty/GuardDutyFinding--c7n-UnauthorizedAccess-IAMUser-TorIPCaller.json")
    )
    assert isinstance(finding, Finding)
    assert finding.quiet is not None and "sample finding" in finding.quiet
    assert finding.source_ip == "198.51.100.0"
    assert (finding_user(finding.record), finding_access_key(finding.record)) == (
        "GeneratedFindingUserName",
        "GeneratedFindingAccessKeyId",
    )
    assert finding.actor.label == "IAMUser GeneratedFindingUserName"


def test_instance_credentials_used_outside_aws_name_the_instance_role():
    finding = events.from_eventbridge(load("guardduty/reconstructed-InstanceCredentialExfiltration.OutsideAWS.json"))
    assert isinstance(finding, Finding) and finding.quiet is None
    assert finding_role(finding.record) == "app-server"
    assert finding_user(finding.record) is None
    assert finding.actor.role_name == "app-server"
    assert finding.actor.role_arn == "arn:aws:iam::123456789012:role/app-server"
    assert finding_severity(finding.record) == "HIGH"


def test_the_principal_to_deny_is_the_finding_s_role_or_user_in_the_finding_s_account():
    s3 = events.from_eventbridge(load("guardduty/reconstructed-Exfiltration.S3-AnomalousBehavior.json"))
    assert finding_principal(s3.record) == "arn:aws:iam::123456789012:role/reporting"
    user = copy.deepcopy(s3.record)
    user["resource"]["accessKeyDetails"].update(userName="mallory", userType="IAMUser")
    assert finding_principal(user) == "arn:aws:iam::123456789012:user/mallory"
    lam = events.from_eventbridge(load("guardduty/reconstructed-Backdoor.Lambda-CCActivity.B.json"))
    assert finding_principal(lam.record) is None  # about a function, not a principal
    root = copy.deepcopy(s3.record)
    root["resource"]["accessKeyDetails"].update(userName="Root", userType="Root")
    assert finding_principal(root) is None


def test_the_caller_to_deny_is_the_session_s_role_as_aws_asserts_it_or_the_user():
    from chalicelib.aws.quirks import actor_arn

    issuer = {"type": "Role", "arn": "arn:aws:iam::123456789012:role/apps/app-server", "userName": "app-server"}
    session = {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::123456789012:assumed-role/app-server/i-0a1b2c3d4e5f67890",
        "sessionContext": {"sessionIssuer": issuer},
    }
    assert actor_arn(session) == "arn:aws:iam::123456789012:role/apps/app-server"  # with its path
    user = {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/mallory", "userName": "mallory"}
    assert actor_arn(user) == "arn:aws:iam::123456789012:user/mallory"
    assert actor_arn({"type": "Root", "arn": "arn:aws:iam::123456789012:root"}) is None
    assert actor_arn({"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}) is None


@pytest.mark.parametrize(
    ("number", "label"), [(10, "CRITICAL"), (9, "CRITICAL"), (8.9, "HIGH"), (7, "HIGH"), (5, "MEDIUM"), (1, "LOW")]
)
def test_guardduty_severity_follows_its_documented_ranges(number, label):
    assert finding_severity({"severity": number}) == label


def test_a_bare_attack_sequence_is_recognised_as_a_guardduty_finding():
    finding = events.from_any(load("guardduty/AttackSequence-IAM-CompromisedCredentials--panther.json"))
    assert isinstance(finding, Finding) and finding.kind == GUARDDUTY
    assert finding.name == "AttackSequence:IAM/CompromisedCredentials"
    assert finding.severity == "CRITICAL"
    assert finding.time.year == 2025  # GuardDuty's "2025-02-25 20:40:06.721" is read as ISO 8601


def test_a_security_hub_event_is_its_one_asff_finding():
    raw = load("securityhub/SecurityHubFindingsImported--asr-afsbp-ec2.7-failed.json")
    finding = events.from_eventbridge(raw)
    assert isinstance(finding, Finding) and finding.kind == SECURITY_HUB
    assert finding.record is raw["detail"]["findings"][0]
    assert finding.name == "securityhub"  # no ProductName: the product in its ProductArn
    assert finding.account == "111111111111"
    assert finding.resource == "AWS::::Account:111111111111"


def test_a_security_hub_event_with_more_than_one_finding_is_refused():
    raw = load("securityhub/SecurityHubFindingsImported--asr-afsbp-ec2.7-failed.json")
    raw["detail"]["findings"].append(copy.deepcopy(raw["detail"]["findings"][0]))
    with pytest.raises(EventError, match="exactly one finding"):
        events.from_eventbridge(raw)


def test_a_guardduty_finding_in_asff_names_its_region_and_instance():
    finding = events.from_any(load("securityhub/ASFF--awsdocs-guardduty-finding-in-asff.json"))
    assert isinstance(finding, Finding) and finding.kind == SECURITY_HUB
    assert finding.region == "us-east-1"  # no Region field: read from the ProductArn
    assert finding.severity == "MEDIUM"


def test_a_finding_imported_by_the_account_itself_is_not_a_detector_s_verdict():
    raw = load("securityhub/SecurityHubFindingsImported--asr-afsbp-ec2.7-failed.json")
    raw["detail"]["findings"][0]["ProductArn"] = (
        "arn:aws:securityhub:us-east-1:111111111111:product/111111111111/default"
    )
    finding = events.from_eventbridge(raw)
    assert isinstance(finding, Finding) and finding.quiet is not None and "not a detector" in finding.quiet


def test_an_insights_record_is_named_by_its_type_and_only_its_start_is_answered():
    record = load("insights/InsightRecord--awsdocs-ApiCallRateInsight-start.json")
    finding = events.from_any(record)
    assert isinstance(finding, Finding) and finding.kind == INSIGHTS
    assert (finding.source, finding.name, finding.account) == (
        "cloudtrail-insights",
        "ApiCallRateInsight",
        "123456789012",
    )
    assert finding.quiet is None
    ended = {**record, "insightDetails": {**record["insightDetails"], "state": "End"}}
    assert "end of the unusual activity" in (Finding.from_record(INSIGHTS, ended).quiet or "")


def test_an_insight_spread_over_several_principals_names_none():
    record = load("insights/InsightRecord--streamalert-ApiCallRateInsight-codedeploy.json")
    assert insight_principal(record) is None  # three roles, a fifth each
    attributions = record["insightDetails"]["insightContext"]["attributions"]
    attributions[0]["insight"] = attributions[0]["insight"][:1]
    assert insight_principal(record) == "arn:aws:sts::012345678901:assumed-role/CodeDeployRole1"
    assert finding_role(record) == "CodeDeployRole1"


def test_a_cloudtrail_record_is_still_a_cloudtrail_event(datasets):
    record = json.loads(next((datasets / "stratus-detonation-logs").glob("*.json")).read_text())[0]
    assert isinstance(events.from_any(record), CloudTrailEvent)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda raw: raw["detail"].pop("id"), "missing field 'id'"),
        (lambda raw: raw["detail"].update(severity="8"), "severity must be a number"),
        (lambda raw: raw.update(source="my.app"), "GuardDuty Finding events come from aws.guardduty"),
        (lambda raw: raw["detail"].update(updatedAt="yesterday"), "is not an ISO 8601 time"),
        (lambda raw: raw.update(detail=[]), "detail must be an object"),
    ],
)
def test_a_finding_that_cannot_be_trusted_is_refused_saying_why(change, problem):
    raw = load("guardduty/reconstructed-InstanceCredentialExfiltration.OutsideAWS.json")
    change(raw)
    with pytest.raises(EventError, match=problem):
        events.from_eventbridge(raw)
