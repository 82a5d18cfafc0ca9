"""Findings out: each incident becomes a Security Hub finding (ASFF) in its own account and
region, imported once and updated in place, its workflow status following the incident;
an OCSF Detection Finding tells the same story.

Through the app's handlers (chalice.test.Client), with trailguard's own clients on moto.
moto 5.2 implements BatchImportFindings (checking little of ASFF beyond `Resources`) and
GetFindings, but not BatchUpdateFindings: `WorkflowUpdates` stands in for that one call,
after botocore has checked the request against Security Hub's API model, and sets the
stored finding's Workflow as AWS documents. ASFF's required fields and limits are checked
here."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import boto3
import botocore.exceptions
import pytest

from chalicelib.incidents.model import State
from chalicelib.metrics import Metrics
from chalicelib.outputs import ocsf
from chalicelib.outputs.fanout import Outputs
from chalicelib.outputs.findings import FindingRejected, SecurityHubFindings, to_asff, workflow_status
from tests.conftest import ACCOUNT, REGION, envelope, member_session, record, recording_clients
from tests.emf import metric_lines
from tests.outputs.conftest import TRAIL, sample

pytestmark = pytest.mark.integration

MEMBER = "210987654321"
ASFF_REQUIRED = (
    "AwsAccountId CreatedAt Description GeneratorId Id ProductArn Resources SchemaVersion Severity Title Types "
    "UpdatedAt"
).split()
TYPE_PATTERN = re.compile(
    r"^(Software and Configuration Checks|TTPs|Effects|Unusual Behaviors|Sensitive Data Identifications)(/[^/]+){0,2}$"
)
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class WorkflowUpdates:
    """BatchUpdateFindings on moto's stored findings, attached to every client trailguard
    makes (`recording_clients`); `requests` is what trailguard sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call.securityhub.BatchUpdateFindings", self._update)
        return client

    def _update(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        from moto.securityhub.models import securityhub_backends

        assert (params["method"], params["url_path"]) == ("PATCH", "/findings/batchupdate")
        request = json.loads(params["body"])
        self.requests.append(request)
        processed = []
        for ident in request["FindingIdentifiers"]:
            _, _, _, region, account, _ = ident["ProductArn"].split(":", 5)
            stored = {f.id: f for f in securityhub_backends[account][region].findings}
            stored[ident["Id"]].data["Workflow"] = {"Status": request["Workflow"]["Status"]}
            stored[ident["Id"]].data["Note"] = request["Note"]
            processed.append(ident)
        return _Answered(), {"ProcessedFindings": processed, "UnprocessedFindings": []}


class _Answered:
    status_code = 200


@pytest.fixture
def hub(runtime, restart) -> WorkflowUpdates:
    """The app restarted with Security Hub on (stage `prod`), its clients on moto."""
    updates = WorkflowUpdates()
    restart(security_hub=True, stage="prod", clients=recording_clients(updates))
    return updates


def findings(account: str = ACCOUNT, region: str = REGION) -> list[dict[str, Any]]:
    from moto.securityhub.models import securityhub_backends

    return [dict(f.data) for f in securityhub_backends[account][region].findings]


@pytest.fixture
def trail(make_trail):
    cloudtrail = make_trail(TRAIL)
    cloudtrail.stop_logging(Name=TRAIL)
    return cloudtrail


def stop_logging(client, **fields: Any) -> str:
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL}, **fields))
    [incident] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
    return str(incident["id"])


def test_moto_does_not_implement_batch_update_findings(aws):
    """Why `WorkflowUpdates` stands in: if moto learns the call, drop the stand-in."""
    with pytest.raises(botocore.exceptions.ClientError, match="Not yet implemented"):
        boto3.client("securityhub", region_name=REGION).batch_update_findings(
            FindingIdentifiers=[{"Id": "x", "ProductArn": f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/x/default"}],
            Workflow={"Status": "RESOLVED"},
        )


def test_an_incident_is_imported_once_and_its_workflow_follows_it(hub, client, press, trail):
    incident = stop_logging(client)
    [finding] = findings()
    assert finding["Id"] == f"trailguard/prod/{incident}" and finding["Workflow"] == {"Status": "RESOLVED"}
    assert finding["ProductFields"]["trailguard/State"] == "remediated"
    assert "cloudtrail.start_logging: applied" in finding["Remediation"]["Recommendation"]["Text"]
    press("undo", incident)
    [finding] = findings()  # the same finding, updated in place
    assert finding["Workflow"] == {"Status": "SUPPRESSED"} and finding["ProductFields"]["trailguard/State"] == "undone"
    assert hub.requests[-1]["Note"] == {
        "Text": "trailguard: incident undone (finish_undo by trailguard)",
        "UpdatedBy": "trailguard",
    }


def test_a_proposal_is_notified_then_resolved_or_suppressed_as_people_decide(approve_mode, hub, client, press, trail):
    approved, denied = stop_logging(client), stop_logging(client)
    assert {f["Id"]: f["Workflow"]["Status"] for f in findings()} == {
        f"trailguard/prod/{approved}": "NOTIFIED",
        f"trailguard/prod/{denied}": "NOTIFIED",
    }
    press("approve", approved)
    press("deny", denied)
    assert {f["Id"]: f["Workflow"]["Status"] for f in findings()} == {
        f"trailguard/prod/{approved}": "RESOLVED",
        f"trailguard/prod/{denied}": "SUPPRESSED",
    }


def test_a_member_accounts_finding_is_imported_from_that_account_through_the_member_role(hub, client, aws):
    """With the default product, Security Hub takes a finding only from its own account."""
    session = member_session(MEMBER)
    session.client("s3").create_bucket(Bucket="member-logs")
    session.client("cloudtrail").create_trail(Name=TRAIL, S3BucketName="member-logs")
    import app

    assumed: list[str] = []
    app.runtime.clients._home_session().events.register(
        "before-parameter-build.sts.AssumeRole", lambda params, **_: assumed.append(params["RoleArn"])
    )
    incident = stop_logging(client, recipientAccountId=MEMBER)
    assert findings() == []  # nothing in the central account
    [finding] = findings(MEMBER)
    assert finding["AwsAccountId"] == MEMBER and finding["Id"] == f"trailguard/prod/{incident}"
    assert finding["ProductArn"] == f"arn:aws:securityhub:{REGION}:{MEMBER}:product/{MEMBER}/default"
    assert finding["Workflow"] == {"Status": "RESOLVED"}
    assert assumed and set(assumed) == {f"arn:aws:iam::{MEMBER}:role/trailguard-remediator"}


def test_a_refused_finding_is_counted_and_the_incident_goes_on(caplog):
    import logging

    class Refusing:
        def client(self, service: str, account: str | None, region: str) -> Any:
            return self

        def batch_import_findings(self, Findings: list[dict[str, Any]]) -> dict[str, Any]:
            return {
                "FailedCount": 1,
                "SuccessCount": 0,
                "FailedFindings": [{"Id": Findings[0]["Id"], "ErrorCode": "x"}],
            }

    caplog.set_level(logging.INFO, logger="trailguard")
    incident = sample(State.REMEDIATED)
    with pytest.raises(FindingRejected, match="Security Hub refused finding trailguard/prod/"):
        SecurityHubFindings("prod", Refusing()).publish(incident)
    Outputs(Metrics("prod"), {"securityhub": SecurityHubFindings("prod", Refusing())}).rested(incident)
    [failed] = metric_lines(caplog, "output failed")
    assert failed["Output"] == "securityhub" and "refused finding" in failed["reason"]


# -- the finding itself, for every state an incident rests in -------------------------------


RESTING = [state for state in State if state not in (State.REMEDIATING, State.UNDOING)]


@pytest.mark.parametrize("state", RESTING, ids=str)
def test_each_finding_has_what_asff_requires_within_its_limits(state):
    finding = to_asff(sample(state), "prod")
    assert not [key for key in ASFF_REQUIRED if not finding.get(key)]
    assert "Workflow" not in finding  # BatchImportFindings cannot change it after creation: never sent
    assert finding["ProductArn"] == f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
    assert finding["GeneratorId"] == "trailguard/playbook/cloudtrail-stop-logging"
    assert (
        finding["Severity"]
        == finding["FindingProviderFields"]["Severity"]
        == {"Label": "CRITICAL", "Original": "critical"}
    )
    assert all(TYPE_PATTERN.match(t) for t in finding["Types"]) and len(finding["Types"]) <= 50
    assert all(ISO_Z.match(finding[k]) for k in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt"))
    assert finding["CreatedAt"] <= finding["UpdatedAt"]
    assert finding["Resources"] == [
        {
            "Type": "AwsCloudTrailTrail",
            "Id": f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{TRAIL}",
            "Partition": "aws",
            "Region": REGION,
        }
    ]
    assert finding["Action"]["AwsApiCallAction"]["RemoteIpDetails"] == {"IpAddressV4": "203.0.113.7"}
    assert len(finding["Title"]) <= 256 and len(finding["Description"]) <= 1024
    assert len(finding["Remediation"]["Recommendation"]["Text"]) <= 512
    assert len(finding["ProductFields"]) <= 50 and all(isinstance(v, str) for v in finding["ProductFields"].values())


def test_long_texts_are_cut_to_asffs_limits():
    incident = dataclasses.replace(sample(State.FAILED, applied=False), title="t" * 2000, error="e" * 5000)
    finding = to_asff(incident, "prod")
    assert len(finding["Title"]) <= 256 and len(finding["Remediation"]["Recommendation"]["Text"]) <= 512


@pytest.mark.parametrize(
    "state, applied, expected",
    [
        (State.PROPOSED, False, "NOTIFIED"),
        (State.REMEDIATING, False, "NOTIFIED"),
        (State.FAILED, False, "NOTIFIED"),
        (State.EXPIRED, False, "NOTIFIED"),
        (State.NOTIFIED, False, "NOTIFIED"),
        (State.SIMULATED, False, "NOTIFIED"),
        (State.UNDOING, True, "NOTIFIED"),
        (State.REMEDIATED, True, "RESOLVED"),
        (State.ACKNOWLEDGED, True, "RESOLVED"),
        (State.ACKNOWLEDGED, False, "SUPPRESSED"),
        (State.DENIED, False, "SUPPRESSED"),
        (State.UNDONE, False, "SUPPRESSED"),
    ],
)
def test_workflow_status_of_every_state(state, applied, expected):
    assert workflow_status(sample(state, applied)) == expected


def test_an_incident_without_an_account_gets_a_clear_error():
    incident = sample(State.REMEDIATED)
    fields = incident.event.to_dict()
    fields["account"] = None
    from chalicelib.events.record import EventSummary

    with pytest.raises(ValueError, match="names no account"):
        to_asff(dataclasses.replace(incident, event=EventSummary(fields)), "prod")


# -- OCSF --------------------------------------------------------------------------------

OCSF_REQUIRED = {
    # OCSF 1.1.0: base_event, classification, occurrence, the cloud profile, finding, detection_finding
    "": [
        "activity_id",
        "category_uid",
        "class_uid",
        "type_uid",
        "time",
        "severity_id",
        "metadata",
        "finding_info",
        "cloud",
    ],
    "metadata": ["product", "version"],
    "metadata.product": ["vendor_name"],
    "finding_info": ["uid", "title"],
    "finding_info.analytic": ["type_id"],
    "cloud": ["provider"],
    "remediation": ["desc"],
    "api": ["operation"],
}


def _at(document: dict[str, Any], path: str) -> dict[str, Any]:
    for key in filter(None, path.split(".")):
        document = document[key]
    return document


@pytest.mark.parametrize("state", RESTING, ids=str)
def test_the_ocsf_detection_finding_has_the_required_attributes_of_1_1_0(state):
    rendered = ocsf.to_ocsf(sample(state), "prod")
    for path, required in OCSF_REQUIRED.items():
        assert not [key for key in required if _at(rendered, path).get(key) in (None, "")], path
    assert (rendered["class_uid"], rendered["category_uid"], rendered["metadata"]["version"]) == (2004, 2, "1.1.0")
    assert rendered["type_uid"] == rendered["class_uid"] * 100 + rendered["activity_id"]
    assert rendered["severity_id"] == 5 and rendered["status_id"] in {1, 2, 3, 4}
    assert all(
        isinstance(rendered["finding_info"][k], int) for k in ("created_time", "modified_time", "first_seen_time")
    )
    assert rendered["resources"][0]["uid"] == f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{TRAIL}"
    assert rendered["cloud"]["account"] == {"uid": ACCOUNT, "type_id": 10, "type": "AWS Account"}
    json.dumps(rendered)  # plain JSON


def test_the_ocsf_activity_and_status_follow_the_incident():
    opened = dataclasses.replace(sample(State.PROPOSED), history=sample(State.PROPOSED).history[:1])
    assert (ocsf.to_ocsf(opened, "prod")["activity_name"], ocsf.to_ocsf(opened, "prod")["status"]) == (
        "Create",
        "In Progress",
    )
    assert ocsf.to_ocsf(sample(State.FAILED), "prod")["activity_name"] == "Update"
    assert [ocsf.to_ocsf(sample(s, False), "prod")["status"] for s in (State.DENIED, State.REMEDIATED)] == [
        "Suppressed",
        "Resolved",
    ]
    assert ocsf.to_ocsf(sample(State.REMEDIATED), "prod")["activity_name"] == "Close"
