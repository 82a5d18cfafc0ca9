"""The Chalice wiring: handlers run through chalice.test.Client against moto."""

from __future__ import annotations

import pytest
from chalice.test import Client

import app as chalice_app
from tests.conftest import envelope, record, stratus_record

pytestmark = pytest.mark.integration


@pytest.fixture
def client(aws):
    # The runtime keeps its responder (and boto3 clients) for the life of a container;
    # each test is a fresh container inside its own moto.
    chalice_app.runtime.reset()
    with Client(chalice_app.app) as test_client:
        yield test_client
    chalice_app.runtime.reset()


@pytest.fixture
def stopped_trail(make_trail):
    return make_trail("stratus-red-team-ct-stop-trail-buykxbqejv")


def test_one_rule_per_pattern_all_running_the_same_handler():
    rules = chalice_app.runtime.eventbridge_rules()
    registered = {config.name: config for config in chalice_app.app.event_sources if config.name != "posture_sweep"}
    assert set(registered) == {rule.name for rule in rules}
    for rule in rules:
        assert registered[rule.name].event_pattern == rule.pattern
        assert registered[rule.name].handler_string == "app.respond_to_cloudtrail"


def test_a_real_stop_logging_event_is_remediated_through_the_handler(client, stopped_trail, datasets):
    event = envelope(stratus_record(datasets, "aws.defense-evasion.cloudtrail-stop", "StopLogging"))
    response = client.lambda_.invoke("respond_to_cloudtrail", event)
    assert response.payload["status"] == "handled"
    [incident] = response.payload["incidents"]
    assert incident["playbook"] == "cloudtrail-stop-logging"
    assert incident["state"] == "remediated" and incident["duplicate"] is False
    assert stopped_trail.get_trail_status(Name="stratus-red-team-ct-stop-trail-buykxbqejv")["IsLogging"] is True


def test_a_second_delivery_is_a_duplicate(client, stopped_trail, datasets):
    event = envelope(stratus_record(datasets, "aws.defense-evasion.cloudtrail-stop", "StopLogging"))
    client.lambda_.invoke("respond_to_cloudtrail", event)
    again = client.lambda_.invoke("respond_to_cloudtrail", event)
    assert again.payload["incidents"][0]["duplicate"] is True


def test_a_failed_call_is_skipped(client, stopped_trail):
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, errorCode="AccessDenied"))
    response = client.lambda_.invoke("respond_to_cloudtrail", event)
    assert response.payload["status"] == "skipped" and response.payload["skipped"] == "failed-call"
    assert response.payload["incidents"] == []


@pytest.mark.parametrize(
    "event,reason",
    [
        (
            {
                "detail-type": "AWS API Call via CloudTrail",
                "source": "aws.cloudtrail",
                "detail": {"eventName": "StopLogging"},
            },
            "missing field 'eventID'",
        ),
        (
            envelope(record("StopLogging", "cloudtrail.amazonaws.com"), source="attacker.custom"),
            "source is 'attacker.custom'",
        ),
        ({"hello": "world"}, "detail-type is None"),
        (
            {"detail-type": "AWS API Call via CloudTrail", "source": "aws.s3", "detail": "not a record"},
            "expected a CloudTrail record object, got string",
        ),
    ],
)
def test_malformed_or_spoofed_events_are_rejected_without_an_exception(client, event, reason):
    response = client.lambda_.invoke("respond_to_cloudtrail", event)
    assert response.payload["status"] == "rejected"
    assert reason in response.payload["reason"]
