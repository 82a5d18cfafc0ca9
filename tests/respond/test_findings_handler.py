"""Findings through the same decision path as API calls: the rules' handler (Chalice's test
client, moto) and `replay`, reading the real finding shapes of tests/data/findings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from click.testing import CliRunner

import app as chalice_app
from chalicelib.respond.handler import eventbridge_rules
from trailguard.cli import main

pytestmark = pytest.mark.integration

FINDINGS = Path(__file__).parents[1] / "data" / "findings"


@pytest.fixture
def client(aws, restart):
    restart()
    with Client(chalice_app.app) as test_client:
        yield test_client


def insight_envelope(state: str = "Start") -> dict[str, Any]:
    """The Insights record of AWS's CloudTrail guide, moved to IAM with one principal making
    most of the calls, in the envelope EventBridge documents for "AWS Insight via CloudTrail"."""
    record = json.loads((FINDINGS / "insights/InsightRecord--awsdocs-ApiCallRateInsight-start.json").read_text())
    record["insightDetails"].update(state=state, eventSource="iam.amazonaws.com", eventName="CreateAccessKey")
    record["insightDetails"]["insightContext"]["attributions"] = [
        {
            "attribute": "userIdentityArn",
            "insight": [{"value": "arn:aws:iam::123456789012:user/mallory", "average": 600}],
            "baseline": [],
        }
    ]
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "AWS Insight via CloudTrail",
        "source": "aws.cloudtrail",
        "account": "123456789012",
        "time": record["eventTime"],
        "region": "us-east-1",
        "resources": [],
        "detail": record,
    }


def _rule_for(detail_type: str) -> str:
    [name] = [
        r.name for r in eventbridge_rules(chalice_app.runtime.catalog) if r.pattern["detail-type"] == [detail_type]
    ]
    return name


def test_an_insight_opens_a_notice_about_the_principal_through_the_handler(client):
    function = _rule_for("AWS Insight via CloudTrail")
    response = client.lambda_.invoke(function, insight_envelope())
    assert response.payload["status"] == "handled", response.payload
    [incident] = response.payload["incidents"]
    assert (incident["playbook"], incident["state"]) == ("insights-iam-kms-call-rate", "notified")
    stored = chalice_app.runtime.incidents.load(incident["id"])
    assert stored.event.from_finding and stored.event.actor == "IAMUser mallory"
    assert stored.event.actor_arn == "arn:aws:iam::123456789012:user/mallory"
    again = client.lambda_.invoke(function, insight_envelope())
    assert again.payload["incidents"][0]["duplicate"] is True


def test_the_end_of_an_insight_is_skipped_saying_why(client):
    response = client.lambda_.invoke(_rule_for("AWS Insight via CloudTrail"), insight_envelope("End"))
    assert response.payload["status"] == "skipped" and response.payload["skipped"] == "quiet-finding"
    assert "end of the unusual activity" in response.payload["reason"]


def test_a_malformed_finding_is_rejected_not_retried(client):
    event = insight_envelope()
    del event["detail"]["insightDetails"]
    response = client.lambda_.invoke(_rule_for("AWS Insight via CloudTrail"), event)
    assert response.payload["status"] == "rejected"
    assert "insightDetails must be an object" in response.payload["reason"]


def test_replay_reads_findings_in_eventbridge_envelopes_and_bare(tmp_path):
    bare = insight_envelope()["detail"] | {"eventID": "bare-insight-0001"}
    path = tmp_path / "findings.jsonl"
    path.write_text("\n".join(json.dumps(item) for item in (insight_envelope(), bare, insight_envelope("End"))))
    result = CliRunner().invoke(main, ["replay", str(path), "--format", "jsonl"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["eventName"], [m["playbook"] for m in line["matches"]]) for line in lines] == [
        ("ApiCallRateInsight", ["insights-iam-kms-call-rate"]),
        ("ApiCallRateInsight", ["insights-iam-kms-call-rate"]),
    ]
    assert "replay: 3 events read, 2 matched, 1 skipped by guards, 0 malformed" in result.stderr


def test_an_insight_is_attached_to_the_open_incidents_of_its_principal(client):
    from tests.conftest import envelope, record

    stopped = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))  # by mallory
    [other] = client.lambda_.invoke("respond_to_cloudtrail", stopped).payload["incidents"]
    response = client.lambda_.invoke(_rule_for("AWS Insight via CloudTrail"), insight_envelope())
    [insight] = response.payload["incidents"]
    history = chalice_app.runtime.incidents.load(other["id"]).history
    [attached] = [entry for entry in history if entry.what == "insight"]
    assert attached.who == "trailguard" and insight["id"] in (attached.detail or "")
    assert "ApiCallRateInsight" in (attached.detail or "")


def securityhub_envelope(finding: dict[str, Any]) -> dict[str, Any]:
    """A "Security Hub Findings - Imported" event as Security Hub documents it: one finding."""
    return {
        "version": "0",
        "id": "3f8c2b1e-0d4a-4c0e-9a51-2b7f6c9d8e10",
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": "123456789012",
        "time": "2021-09-28T16:10:00Z",
        "region": "us-east-2",
        "resources": [finding["ProductFields"]["aws/securityhub/FindingId"]] if "ProductFields" in finding else [],
        "detail": {"findings": [finding]},
    }


def test_a_critical_security_hub_control_finding_is_told_and_guardduty_s_copy_is_not(client):
    control = json.loads((FINDINGS / "securityhub/ASFF--awsdocs-control-afsbp.json").read_text())
    rule = _rule_for("Security Hub Findings - Imported")
    medium = client.lambda_.invoke(rule, securityhub_envelope(control)).payload
    assert medium["incidents"] == [], medium  # AWS's example is MEDIUM: not told

    control["Severity"] = {"Label": "CRITICAL", "Normalized": 90, "Original": "CRITICAL"}
    response = client.lambda_.invoke(rule, securityhub_envelope(control)).payload
    [incident] = response["incidents"]
    assert (incident["playbook"], incident["state"]) == ("securityhub-high-severity-finding", "notified")

    copy = json.loads((FINDINGS / "securityhub/ASFF--awsdocs-guardduty-finding-in-asff.json").read_text())
    copy["Severity"] = {"Label": "HIGH", "Normalized": 70}
    told = client.lambda_.invoke(rule, securityhub_envelope(copy)).payload
    assert told["incidents"] == [], told  # GuardDuty's own rule answers it
