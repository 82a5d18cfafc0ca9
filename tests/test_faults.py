"""Faults at every boundary, through the deployed wiring (the app's handlers, DynamoDB in
moto, the Slack stub): AWS throttling, 5xx, AccessDenied in a member account, expired
credentials, DynamoDB conditional-check failures and throttling, Slack 429 / 5xx /
timeouts, and a Lambda killed in the middle of a plan.

For each: the incident's final state says what happened, a later retry (Lambda's, the
sweep's, or a person's click) finishes the job, nothing is lost and nothing runs twice.
Errors are injected at botocore's `before-send` (conftest's `Faults`), so moto never
sees an injected call.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest

from chalicelib.incidents.model import State
from chalicelib.playbooks.catalog import Catalog
from tests.conftest import (
    ACCOUNT,
    FAULTS_SURVIVED,
    REGION,
    Clock,
    Faults,
    envelope,
    member_session,
    record,
    recording_clients,
)

pytestmark = pytest.mark.integration

MEMBER = "111122223333"


class LambdaKilled(BaseException):
    """What a Lambda timeout is to the code it stops: nothing after it runs, no handler catches it."""


@pytest.fixture
def faults(instant_backoff) -> Faults:
    return Faults()


@pytest.fixture
def runtime(runtime, faults, restart):
    """The deployed runtime, restarted with every AWS client it makes given `faults` to inject."""
    return restart(clients=recording_clients(faults, member_role=runtime.settings.member_role))


@pytest.fixture
def clock(runtime) -> Clock:
    moved = Clock()
    runtime.incidents.clock = moved
    return moved


def _stop_logging(client: Any, trail: str = "main", account: str = ACCOUNT, **fields: Any) -> dict[str, Any]:
    event = envelope(
        record("StopLogging", "cloudtrail.amazonaws.com", {"name": trail}, recipientAccountId=account, **fields)
    )
    payload: dict[str, Any] = client.lambda_.invoke("respond_to_cloudtrail", event).payload
    return payload


def _sweep(client: Any) -> None:
    scheduled = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    client.lambda_.invoke("posture_sweep", scheduled)


def _logging(trail: str = "main", session: Any = None) -> bool:
    cloudtrail = (session or boto3).client("cloudtrail", region_name=REGION)
    return bool(cloudtrail.get_trail_status(Name=trail)["IsLogging"])


def _survived(name: str) -> None:
    FAULTS_SURVIVED[name] += 1  # printed at the end of the run (conftest)


START = ("cloudtrail", "StartLogging")


@pytest.mark.parametrize(
    "code, status, name",
    [
        ("ThrottlingException", 400, "throttling"),
        ("InternalFailure", 500, "5xx"),
        ("ServiceUnavailableException", 503, "5xx"),
    ],
)
def test_transient_aws_errors_are_retried_by_botocore_and_the_step_runs_once(
    client, runtime, faults, make_trail, code, status, name
):
    make_trail("main")
    faults.add(*START, code, status=status, times=2)
    (incident,) = _stop_logging(client)["incidents"]
    assert incident["state"] == "remediated" and _logging()
    assert (faults.injected[START], faults.succeeded[START]) == (2, 1)
    _survived(f"{name} (retried)")


@pytest.mark.parametrize(
    "code, status, name",
    [
        ("ThrottlingException", 400, "throttling"),
        ("InternalFailure", 500, "5xx"),
        ("ExpiredTokenException", 400, "expired credentials"),
    ],
)
def test_persistent_aws_errors_fail_the_incident_and_a_retry_click_finishes_it(
    client, press, runtime, faults, make_trail, code, status, name
):
    make_trail("main")
    faults.add(*START, code, status=status, times=50)
    (incident,) = _stop_logging(client)["incidents"]
    stored = runtime.incidents.get(incident["id"])
    assert stored.state is State.FAILED and code in stored.steps[0].error
    assert stored.steps[0].before == {"Trail": "main", "IsLogging": False}  # the snapshot is kept for undo
    assert faults.injected[START] == (1 if name == "expired credentials" else 5)  # bounded, never forever
    assert not _logging()
    faults.clear()
    assert press("retry", incident["id"]).status_code == 200
    assert runtime.incidents.get(incident["id"]).state is State.REMEDIATED and _logging()
    assert faults.succeeded[START] == 1
    _survived(f"{name} (persistent)")


@pytest.fixture
def member_trail(aws):
    """A trail in a member account, made through moto's STS as that account."""
    session = member_session(MEMBER)
    session.client("s3").create_bucket(Bucket="member-trail-logs")
    session.client("cloudtrail").create_trail(Name="member", S3BucketName="member-trail-logs")
    return session


def test_access_denied_in_a_member_account_fails_clearly_and_a_retry_finishes_once_the_role_is_fixed(
    client, press, runtime, faults, member_trail
):
    faults.add("sts", "AssumeRole", "AccessDenied", times=50)
    (incident,) = _stop_logging(client, "member", account=MEMBER)["incidents"]
    stored = runtime.incidents.get(incident["id"])
    assert stored.state is State.FAILED
    assert stored.steps[0].error.startswith(
        f"cannot assume arn:aws:iam::{MEMBER}:role/trailguard-remediator: AccessDenied"
    )
    assert not _logging("member", member_trail)
    faults.clear()  # the StackSet reached the account
    runtime.clients._sessions.pop(MEMBER, None)  # as a new container would
    assert press("retry", incident["id"]).status_code == 200
    assert runtime.incidents.get(incident["id"]).state is State.REMEDIATED and _logging("member", member_trail)
    assert faults.succeeded[START] == 1
    _survived("AccessDenied in a member account")


def test_a_conditional_check_failure_on_a_state_change_runs_nothing_twice(client, runtime, faults, make_trail):
    """Another writer (a second Lambda with the same event) moved the incident first."""
    make_trail("main")
    faults.add("dynamodb", "PutItem", "ConditionalCheckFailedException", after=1, times=1)
    payload = _stop_logging(client)
    again = _stop_logging(client, eventID=payload["eventID"])  # the redelivery EventBridge makes anyway
    (incident,) = again["incidents"]
    assert runtime.incidents.get(incident["id"]).state in (State.REMEDIATED, State.REMEDIATING)
    assert faults.succeeded[START] <= 1
    if runtime.incidents.get(incident["id"]).state is State.REMEDIATING:
        runtime.incidents.clock = Clock(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
        _sweep(client)
    assert runtime.incidents.get(incident["id"]).state is State.REMEDIATED and _logging()
    assert faults.succeeded[START] == 1
    _survived("DynamoDB conditional-check failure")


def test_dynamodb_throttling_is_absorbed_and_a_table_that_stays_throttled_makes_lambda_retry(
    client, runtime, faults, make_trail
):
    make_trail("main")
    faults.add("dynamodb", "PutItem", "ProvisionedThroughputExceededException", times=2)
    (first,) = _stop_logging(client, "main")["incidents"]
    assert first["state"] == "remediated"
    _survived("DynamoDB throttling (retried)")
    # Throttled past botocore's retries while opening: the handler fails, so Lambda delivers
    # the event again; nothing was changed in AWS before the incident was recorded.
    boto3.client("cloudtrail", region_name=REGION).stop_logging(Name="main")
    faults.add("dynamodb", "PutItem", "ProvisionedThroughputExceededException", times=50)
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    sent_before = faults.succeeded[START]
    with pytest.raises(Exception, match="ProvisionedThroughputExceeded"):
        client.lambda_.invoke("respond_to_cloudtrail", event)
    assert faults.succeeded[START] == sent_before and not _logging()
    faults.clear()
    (again,) = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]  # Lambda's retry
    assert again["state"] == "remediated" and again["duplicate"] is False and _logging()
    assert faults.succeeded[START] == sent_before + 1
    _survived("DynamoDB throttling (persistent)")


@pytest.mark.parametrize("lost", ["the incident's creation", "the snapshot's write"])
def test_an_answer_lost_after_dynamodb_wrote_is_not_taken_for_a_duplicate(client, runtime, faults, make_trail, lost):
    """DynamoDB wrote, then a 500 lost its answer; botocore's second attempt found our own
    item. This Lambda opened the incident: it remediates now and says so, instead of
    reporting a duplicate and leaving the trail stopped until the sweep."""
    make_trail("main")
    faults.add(
        "dynamodb",
        "PutItem",
        "InternalServerError",
        status=500,
        landed=True,
        after=int(lost != "the incident's creation"),
    )
    (incident,) = _stop_logging(client)["incidents"]
    assert incident["duplicate"] is False and incident["state"] == "remediated" and _logging()
    assert faults.injected[("dynamodb", "PutItem")] == 1 and faults.succeeded[START] == 1
    _survived("DynamoDB answer lost after the write")


TWO_STEPS = """\
id: two-trails
title: Both trails must log
severity: high
when: {source: cloudtrail.amazonaws.com, events: [StopLogging]}
mode: auto
steps:
  - action: cloudtrail.start_logging
    with: {trail: requestParameters.name}
  - action: cloudtrail.start_logging
    with: {trail: "'backup'"}
"""


def test_a_lambda_killed_between_two_steps_is_resumed_by_the_sweep_without_repeating_the_first(
    client, runtime, faults, make_trail, tmp_path, clock, restart
):
    make_trail("main")
    make_trail("backup")
    boto3.client("cloudtrail", region_name=REGION).stop_logging(Name="backup")
    (tmp_path / "two.yaml").write_text(TWO_STEPS)
    runtime = restart(Catalog.load([tmp_path]), clients=runtime.clients)  # the same faults
    runtime.incidents.clock = clock
    faults.add(*START, "", after=1, times=1, error=LambdaKilled)  # the second StartLogging never returns
    with pytest.raises(LambdaKilled):
        _stop_logging(client)
    (stuck,) = runtime.incidents.open_incidents()
    assert stuck.state is State.REMEDIATING and [s.status.value for s in stuck.steps] == ["applied", "applying"]
    assert _logging("main") and not _logging("backup")
    _sweep(client)
    assert runtime.incidents.get(stuck.id).state is State.REMEDIATING  # the lease still holds
    clock.now += dt.timedelta(seconds=runtime.settings.lease_seconds + 1)
    _sweep(client)
    finished = runtime.incidents.get(stuck.id)
    assert finished.state is State.REMEDIATED and _logging("backup")
    assert faults.succeeded[START] == 2  # main once, backup once: nothing ran twice
    _survived("Lambda timeout mid-plan")


@pytest.mark.parametrize("fault", ["429", "503", "timeout"])
def test_slack_failures_keep_the_incident_and_the_sweep_delivers_it(
    client, runtime, slack_stub, make_trail, monkeypatch, fault
):
    from chalicelib.slack import client as slack_client

    make_trail("main")
    monkeypatch.setattr(slack_client, "TIMEOUT_SECONDS", 0.3)
    if fault == "timeout":
        slack_stub.stall("chat.postMessage", seconds=1.0, times=1)  # a timeout is not retried at once
    else:
        slack_stub.fail("chat.postMessage", status=int(fault), times=3, retry_after=0)
    (incident,) = _stop_logging(client)["incidents"]
    stored = runtime.incidents.get(incident["id"])
    assert stored.state is State.REMEDIATED and _logging()  # AWS work is never held back by Slack
    assert stored.notification_due and stored.notification.get("error")
    assert slack_stub.messages == {}
    _sweep(client)
    delivered = runtime.incidents.get(incident["id"])
    assert not delivered.notification_due and len(slack_stub.messages) == 1
    _survived(f"Slack {fault}")
