"""Events out: a `trailguard Incident State Change` event each time an incident comes to rest,
its detail as the documented, versioned schema says, put on the stage's bus and received by
a rule (moto's EventBridge delivering to SQS); a refusal in PutEvents' answer is an error."""

from __future__ import annotations

import json
from typing import Any

import boto3
import jsonschema
import pytest

from chalicelib.incidents.model import State
from chalicelib.outputs.events import DETAIL_TYPE, EventRejected, IncidentEvents, check_source, state_change_entry
from tests.conftest import ACCOUNT, REGION, ROOT, envelope, record
from tests.outputs.conftest import TRAIL, sample

pytestmark = pytest.mark.integration

SCHEMA = json.loads((ROOT / "docs" / "schemas" / "incident-state-change.v1.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


@pytest.fixture
def received(runtime, restart) -> Any:
    """The app restarted with events out on its default bus (stage `prod`); `received()` is
    every event a rule on that bus delivered to a queue since the last call."""
    restart(events_out="default", stage="prod")
    sqs, events = boto3.client("sqs", region_name=REGION), boto3.client("events", region_name=REGION)
    url = sqs.create_queue(QueueName="received")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["trailguard"], "detail-type": [DETAIL_TYPE], "detail": {"schemaVersion": [{"prefix": "1."}]}}
    events.put_rule(Name="all-incidents", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="all-incidents", Targets=[{"Id": "queue", "Arn": arn}])

    def take() -> list[dict[str, Any]]:
        found = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    return take


def stop_logging(client) -> str:
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL}))
    [incident] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
    return str(incident["id"])


def test_the_schema_is_itself_valid_and_versioned():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["schemaVersion"] == {"const": "1.0"}


def test_an_event_is_put_on_each_state_change_with_the_documented_schema(received, client, press, make_trail):
    incident = stop_logging(client)  # no trail yet: the step fails
    make_trail(TRAIL).stop_logging(Name=TRAIL)
    press("retry", incident)
    press("undo", incident)
    events = received()
    details = [event["detail"] for event in events]
    assert [d["incident"]["state"] for d in details] == ["failed", "remediated", "undone"]
    assert [d["incident"]["previousState"] for d in details] == ["remediating", "remediating", "undoing"]
    assert [d["incident"]["transition"] for d in details] == ["fail", "finish", "finish_undo"]
    sequences = [d["incident"]["sequence"] for d in details]
    assert sequences == sorted(set(sequences))  # with the id, names one change: a consumer's idempotency key
    for event, detail in zip(events, details, strict=True):
        assert list(VALIDATOR.iter_errors(detail)) == []
        assert (event["source"], event["detail-type"], event["region"]) == ("trailguard", DETAIL_TYPE, REGION)
        assert event["resources"] == [f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{TRAIL}"]
        assert detail["stage"] == "prod" and detail["incident"]["id"] == incident
        assert detail["event"]["account"] == ACCOUNT and detail["event"]["eventName"] == "StopLogging"
    assert details[0]["incident"]["steps"][0]["status"] == "failed" and details[0]["incident"]["error"]
    assert details[1]["incident"]["secondsToRemediate"] >= 0 and details[2]["incident"]["secondsToRemediate"] is None


@pytest.mark.parametrize("state", [s for s in State if s not in (State.REMEDIATING, State.UNDOING)], ids=str)
def test_every_resting_state_renders_to_the_schema(state):
    detail = json.loads(state_change_entry(sample(state), "prod")["Detail"])
    assert list(VALIDATOR.iter_errors(detail)) == []


def test_the_schema_refuses_what_it_does_not_document():
    detail = json.loads(state_change_entry(sample(State.REMEDIATED), "prod")["Detail"])
    detail["incident"]["surprise"] = 1
    assert list(VALIDATOR.iter_errors(detail))


def test_a_custom_source_may_not_pose_as_aws():
    with pytest.raises(ValueError, match=r"may not be empty or begin with 'aws\.'"):
        check_source("aws.trailguard")


def test_a_refused_entry_is_an_error_though_the_call_succeeded():
    class Refusing:
        calls = 0

        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            self.calls += 1
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try later"}]}

    refusing = Refusing()
    with pytest.raises(EventRejected, match="InternalFailure: try later"):
        IncidentEvents(lambda: refusing, "prod").put(sample(State.REMEDIATED))
    assert refusing.calls == 2  # a retryable refusal is tried once more


def test_events_go_on_the_bus_the_stage_names(aws):
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name="security")
    event_id = IncidentEvents(lambda: events, "prod", "security").put(sample(State.FAILED))
    assert event_id
    # AWS refuses the entry (or, moto, the call): either way an error the outputs count
    with pytest.raises(Exception, match="no-such-bus does not exist"):
        IncidentEvents(lambda: events, "prod", "no-such-bus").put(sample(State.FAILED))
