"""At-least-once delivery through the real handler, with incidents in DynamoDB (moto):
one incident and one remediation per event, however often and however concurrently it comes.
Also the trail-configuration events the handler watches, and a DeleteTrail put right."""

from __future__ import annotations

import threading

import boto3
import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.incidents.model import State
from tests.conftest import REGION, TABLE, envelope, record, stratus_record

pytestmark = pytest.mark.integration


@pytest.fixture
def client(dynamo_store, integrity_key, calls, restart):
    restart(table=TABLE, integrity_key=integrity_key)
    with Client(chalice_app.app) as test_client:
        yield test_client


@pytest.fixture
def cloudtrail_calls(client, calls):
    """Every call trailguard's CloudTrail client sends, in order."""
    calls.attach(chalice_app.runtime.clients.client("cloudtrail", None, REGION))
    return calls


def _stop_event(datasets):
    return envelope(stratus_record(datasets, "aws.defense-evasion.cloudtrail-stop", "StopLogging"))


TRAIL = "stratus-red-team-ct-stop-trail-buykxbqejv"


def test_three_deliveries_make_one_incident_and_one_remediation(client, make_trail, cloudtrail_calls, datasets):
    cloudtrail = make_trail(TRAIL)
    event = _stop_event(datasets)
    payloads = [client.lambda_.invoke("respond_to_cloudtrail", event).payload for _ in range(3)]
    assert [p["incidents"][0]["duplicate"] for p in payloads] == [False, True, True]
    assert cloudtrail_calls.writes() == ["StartLogging"]
    assert cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is True
    [incident] = chalice_app.runtime.incidents.open_incidents()
    assert incident.state is State.REMEDIATED and incident.id == payloads[0]["incidents"][0]["id"]


def test_concurrent_deliveries_make_one_incident_and_one_remediation(client, make_trail, cloudtrail_calls, datasets):
    make_trail(TRAIL)
    event = _stop_event(datasets)
    barrier, payloads = threading.Barrier(6), []

    def deliver():
        barrier.wait()
        payloads.append(chalice_app.respond_to_cloudtrail(event))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(p["incidents"][0]["duplicate"] for p in payloads) == [False] + [True] * 5
    assert cloudtrail_calls.writes() == ["StartLogging"]
    assert len(chalice_app.runtime.incidents.open_incidents()) == 1


def _trail(cloudtrail, name):
    """describe_trails and get_event_selectors, as a person would compare them."""
    selectors = cloudtrail.get_event_selectors(TrailName=name)
    selectors.pop("ResponseMetadata")
    return cloudtrail.describe_trails(trailNameList=[name])["trailList"], selectors


def test_a_deleted_trail_is_restored_from_what_the_handler_remembered(client, make_trail, datasets):
    cloudtrail = make_trail("audit")
    cloudtrail.put_event_selectors(
        TrailName="audit",
        EventSelectors=[
            {
                "ReadWriteType": "All",
                "IncludeManagementEvents": True,
                "ExcludeManagementEventSources": [],
                "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::payroll/"]}],
            }
        ],
    )
    cloudtrail.start_logging(Name="audit")
    # The selectors change arrives as an event; nothing is wrong with it, so it is remembered.
    change = record(
        "PutEventSelectors",
        "cloudtrail.amazonaws.com",
        {
            "trailName": "audit",
            "eventSelectors": [{"readWriteType": "All", "includeManagementEvents": True, "dataResources": []}],
        },
    )
    assert client.lambda_.invoke("respond_to_cloudtrail", envelope(change)).payload["incidents"] == []
    before = _trail(cloudtrail, "audit")
    cloudtrail.delete_trail(Name="audit")

    deletion = stratus_record(datasets, "aws.defense-evasion.cloudtrail-delete", "DeleteTrail")
    deletion["requestParameters"] = {"name": "audit"}
    payload = client.lambda_.invoke("respond_to_cloudtrail", envelope(deletion)).payload
    [summary] = payload["incidents"]
    assert (summary["playbook"], summary["state"]) == ("cloudtrail-trail-deleted", "remediated")
    assert _trail(cloudtrail, "audit") == before
    step = chalice_app.runtime.incidents.get(summary["id"]).steps[0]
    assert step.note.startswith("re-created from the configuration remembered at ")
    assert cloudtrail.get_trail_status(Name="audit")["IsLogging"] is True


def test_a_deleted_trail_never_seen_fails_and_says_why(client, aws, datasets):
    deletion = stratus_record(datasets, "aws.defense-evasion.cloudtrail-delete", "DeleteTrail")
    [summary] = client.lambda_.invoke("respond_to_cloudtrail", envelope(deletion)).payload["incidents"]
    assert summary["state"] == "failed"
    incident = chalice_app.runtime.incidents.get(summary["id"])
    assert "was ever remembered" in incident.error and "re-create the trail by hand" in incident.error
    assert boto3.client("cloudtrail", region_name=REGION).describe_trails()["trailList"] == []


def test_writes_per_incident_are_the_documented_three(client, make_trail, calls, datasets):
    """docs/incidents.md: open, snapshot before the change, result."""
    make_trail(TRAIL)
    calls.attach(chalice_app.runtime.unsealed_store.client)
    client.lambda_.invoke("respond_to_cloudtrail", _stop_event(datasets))
    assert calls.writes() == ["PutItem", "PutItem", "PutItem"]
