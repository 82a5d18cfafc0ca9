"""The state-change hook: other tools hear of an incident once per state it rests in, after
the write that made it so, never from a write the store refused (a second delivery, a
double click), and never from the public endpoint; the worker tells the state a click
chose, and the sweep does when the hand-over to the worker failed. An output that fails
changes nothing about the incident and is counted.

Through the app's own handlers (chalice.test.Client), moto and the local Slack stub, with
the stage's events going to a queue on moto's default bus."""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
import pytest

from chalicelib.incidents.changes import StateChanges
from chalicelib.incidents.model import State
from chalicelib.outputs.events import DETAIL_TYPE
from tests.conftest import APPROVER, REGION, envelope, record, signed_click
from tests.emf import metric_lines

pytestmark = pytest.mark.integration

TRAIL = "main"


@pytest.fixture
def told(runtime, restart, caplog) -> Any:
    """The app restarted with events out on (stage `test`); `told()` is the states of the
    events a rule on the default bus received since the last call."""
    caplog.set_level(logging.INFO, logger="trailguard")
    restart(events_out="default", stage="test")
    sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", region_name=REGION)
    url = sqs.create_queue(QueueName="incident-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="incidents", EventPattern=json.dumps({"source": ["trailguard"], "detail-type": [DETAIL_TYPE]}))
    events.put_targets(Rule="incidents", Targets=[{"Id": "queue", "Arn": arn}])

    def received() -> list[tuple[str, str]]:
        found = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                detail = json.loads(message["Body"])["detail"]["incident"]
                found.append((detail["state"], detail["by"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    return received


@pytest.fixture
def trail(make_trail):
    cloudtrail = make_trail(TRAIL)
    cloudtrail.stop_logging(Name=TRAIL)
    return cloudtrail


def stop_logging(client, event: dict | None = None) -> str:
    event = event or envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL}))
    [incident] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
    return str(incident["id"])


def settled(caplog) -> list[str]:
    return [line["State"] for line in metric_lines(caplog, "incident settled")]


def test_an_auto_remediation_is_told_once_however_often_the_event_comes(told, client, trail, caplog):
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL}))
    stop_logging(client, event)
    stop_logging(client, event)  # EventBridge delivers at least once: the store refuses the second
    assert told() == [("remediated", "trailguard")]
    [opened] = metric_lines(caplog, "incident opened")
    assert (opened["Playbook"], opened["Mode"], opened["Stage"]) == ("cloudtrail-stop-logging", "auto", "test")
    [remediated] = metric_lines(caplog, "incident settled")
    assert remediated["State"] == "remediated" and remediated["TimeToRemediate"] >= 0


def test_a_double_click_is_told_once(told, client, slack_stub, trail, caplog):
    incident = stop_logging(client)
    button = slack_stub.button_value(incident, "undo")
    for _ in range(2):  # the same button twice: the second press finds the incident moved on
        body, headers = signed_click("undo", button)
        assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 200
    assert told() == [("remediated", "trailguard"), ("undone", "trailguard")]
    assert settled(caplog) == ["remediated", "undone"]


def test_the_state_a_click_chose_is_told_by_the_worker_not_the_public_endpoint(told, client, press, trail, runtime):
    import app

    incident = stop_logging(client)
    told()
    endpoint_door = app.runtime.claims
    assert endpoint_door.changes is not app.runtime.incidents.changes  # the endpoint's door tells nobody
    press("acknowledge", incident)
    assert told() == [("acknowledged", f"slack:{APPROVER}")]


def test_approve_mode_tells_the_proposal_and_then_what_people_decided(told, client, press, trail, approve_mode):
    first = stop_logging(client)
    second = stop_logging(client)
    assert told() == [("proposed", "trailguard"), ("proposed", "trailguard")]
    press("approve", first)
    press("deny", second)
    assert told() == [("remediated", "trailguard"), ("denied", f"slack:{APPROVER}")]


def test_a_failure_counts_its_failed_steps_and_a_retry_its_remediation(told, client, press, make_trail, caplog):
    incident = stop_logging(client)  # no trail: the step fails
    [failed] = metric_lines(caplog, "incident settled")
    assert failed["State"] == "failed" and failed["RemediationStepsFailed"] == 1 and "TimeToRemediate" not in failed
    make_trail(TRAIL).stop_logging(Name=TRAIL)
    press("retry", incident)
    assert told() == [("failed", "trailguard"), ("remediated", "trailguard")]
    assert settled(caplog) == ["failed", "remediated"]


def test_a_click_whose_hand_over_failed_is_told_by_the_sweep(told, client, press, trail, restart, caplog):
    import app

    incident = stop_logging(client)
    told()
    restart(slack_worker="trailguard-test-no-such-worker")  # dispatch to a Lambda that does not exist
    press("acknowledge", incident)
    assert app.runtime.claims.get(incident).state is State.ACKNOWLEDGED
    assert told() == []  # nobody but the worker may tell it
    report = app.runtime.sweep().handle()
    assert told() == [("acknowledged", f"slack:{APPROVER}")]
    assert app.runtime.incidents.get(incident).sealed_state is State.ACKNOWLEDGED  # sealed as the worker would
    assert incident in report["delivered"]
    app.runtime.sweep().handle()
    assert told() == []  # once


class Broken(StateChanges):
    def rested(self, incident: Any) -> None:
        raise RuntimeError("the output's endpoint is down")


def test_an_output_that_fails_is_counted_and_changes_nothing_else(told, client, trail, caplog):
    import app

    app.runtime.changes.outputs = {"securityhub": Broken(), **app.runtime.changes.outputs}
    incident = stop_logging(client)
    assert app.runtime.incidents.get(incident).state is State.REMEDIATED
    assert told() == [("remediated", "trailguard")]  # the next output is still told
    [failed] = metric_lines(caplog, "output failed")
    assert failed["Output"] == "securityhub" and failed["OutputsFailed"] == 1 and failed["incident"] == incident
    assert "the output's endpoint is down" in failed["reason"]


def test_a_message_slack_did_not_take_is_counted_delivered_later_and_not_told_again(
    told, client, trail, slack_stub, caplog
):
    """Bringing a message up to date (`notify`) is not a change of state: the sweep's
    redelivery tells nobody again. The backlog it leaves is measured by each sweep."""
    import app

    slack_stub.fail("chat.postMessage", status=429, times=6)  # slack_sdk's 3 attempts, twice
    incident = stop_logging(client)
    assert told() == [("remediated", "trailguard")]
    app.runtime.sweep().handle()  # Slack still refuses
    app.runtime.sweep().handle()  # now it takes the message
    assert app.runtime.incidents.get(incident).notification_due is False
    assert told() == [] and settled(caplog) == ["remediated"]
    assert [line["incident"] for line in metric_lines(caplog, "slack delivery failed")] == [incident, incident]
    pending, cleared = metric_lines(caplog, "slack backlog")
    assert pending["SlackDeliveriesPending"] == 1 and pending["OldestPendingDeliveryAge"] >= 0
    assert (cleared["SlackDeliveriesPending"], cleared["OldestPendingDeliveryAge"]) == (0, 0)
