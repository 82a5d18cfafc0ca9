"""The worked examples of events out: each API destination's input transformer, run by moto's
EventBridge on an event trailguard put, gives the body Jira, ServiceNow and PagerDuty
document; each rule matches the events it is meant for and no others (moto's pattern
matcher, EventBridge's semantics)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from chalicelib.incidents.model import State
from chalicelib.outputs.events import IncidentEvents, state_change_entry
from tests.conftest import ACCOUNT, REGION, ROOT
from tests.outputs.conftest import sample
from trailguard.generate.destinations import INPUT_TRANSFORMERS, example_template

pytestmark = pytest.mark.integration

PARAMETERS = {
    "JiraProjectKey": "SEC",
    "JiraIssueType": "Task",
    "PagerDutyRoutingKey": "R0UTINGKEY0000000000000000000000",
}


def body_for(transformer_name: str, incident: Any) -> dict[str, Any]:
    """What the transformer makes of the incident's event, as moto's EventBridge delivers it."""
    spec = INPUT_TRANSFORMERS[transformer_name]
    template = spec["InputTemplate"]
    for key, value in PARAMETERS.items():
        template = template.replace("${" + key + "}", value)
    sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", region_name=REGION)
    url = sqs.create_queue(QueueName=transformer_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=transformer_name, EventPattern=json.dumps({"source": ["trailguard"]}))
    transformer = {"InputPathsMap": spec["InputPathsMap"], "InputTemplate": template}
    events.put_targets(Rule=transformer_name, Targets=[{"Id": "1", "Arn": arn, "InputTransformer": transformer}])
    IncidentEvents(lambda: events, "prod").put(incident)
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    body: dict[str, Any] = json.loads(message["Body"])
    return body


def test_jira_gets_a_create_issue_body(aws):
    fields = body_for("jira", sample(State.FAILED, applied=False))["fields"]
    assert fields["project"] == {"key": "SEC"} and fields["issuetype"] == {"name": "Task"}
    assert fields["summary"].startswith("trailguard prod: CloudTrail logging stopped (failed)")
    assert f"IAMUser mallory called StopLogging in {ACCOUNT} {REGION}" in fields["summary"]
    assert fields["labels"] == ["trailguard", "cloudtrail-stop-logging"]


def test_servicenow_gets_a_table_api_incident_body(aws):
    body = body_for("servicenow", sample(State.FAILED, applied=False))
    assert body["correlation_id"] == "inc-0123456789abcdef0123" and body["urgency"] == "1"
    assert body["short_description"].startswith("trailguard prod:")


def test_pagerduty_gets_a_trigger_then_a_resolve_with_one_dedup_key(aws):
    trigger = body_for("pagerduty-trigger", sample(State.PROPOSED))
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == PARAMETERS["PagerDutyRoutingKey"]
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["summary"]
    assert trigger["payload"]["source"] == f"trailguard-prod/{ACCOUNT}/{REGION}"
    resolve = body_for("pagerduty-resolve", sample(State.REMEDIATED))
    assert resolve == {
        "routing_key": PARAMETERS["PagerDutyRoutingKey"],
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }


def test_each_example_rule_matches_what_it_is_for():
    from dataclasses import replace

    from moto.events.models import EventPattern

    rules = {
        name: r["Properties"]["EventPattern"]
        for name, r in example_template("prod")["Resources"].items()
        if r["Type"] == "AWS::Events::Rule"
    }

    def matching(incident: Any) -> set[str]:
        entry = state_change_entry(incident, "prod")
        event = {"source": entry["Source"], "detail-type": entry["DetailType"], "detail": json.loads(entry["Detail"])}
        found = set()
        for name, pattern in rules.items():
            concrete = json.loads(json.dumps(pattern).replace('{"Ref": "Stage"}', '"prod"'))
            if EventPattern.load(json.dumps(concrete)).matches_event(event):
                found.add(name)
        return found

    failed = sample(State.FAILED, applied=False)  # a critical playbook
    assert matching(failed) == {"JiraOnFailureOrProposal", "ServiceNowOnFailure", "PagerDutyTrigger"}
    assert matching(sample(State.REMEDIATED)) == {"PagerDutyResolve"}
    assert matching(replace(failed, severity="medium")) == {"ServiceNowOnFailure"}
    assert matching(sample(State.SIMULATED)) == set()


def test_the_committed_example_routes_the_stage_that_puts_events_out():
    committed = json.loads((ROOT / "deploy" / "event-destinations-prod.json").read_text())
    rules = [r["Properties"] for r in committed["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    assert len(rules) == 4 and all(r["EventBusName"] == "default" for r in rules)
    assert all(target.get("DeadLetterConfig") and target.get("RetryPolicy") for r in rules for target in r["Targets"])
    assert not (ROOT / "deploy" / "event-destinations-dev.json").exists()  # dev puts no events out
