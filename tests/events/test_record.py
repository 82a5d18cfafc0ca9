"""The event model on real records, in both envelopes, and on malformed input."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from chalicelib.events.record import CloudTrailEvent, EventError
from tests.conftest import envelope, record
from trailguard.eventfiles import read_events

pytestmark = pytest.mark.unit


def _real_records(datasets, folder):
    return list(read_events([datasets / folder]))


@pytest.mark.parametrize("folder,count", [("invictus-aws-2023", 2900), ("stratus-detonation-logs", 310)])
def test_every_real_record_parses(datasets, folder, count):
    events = _real_records(datasets, folder)
    errors = [e for e in events if isinstance(e, EventError)]
    assert errors == []
    assert len(events) == count
    for event in events:
        # Every accessor works on every real record.
        assert event.event_id and event.name and event.source and event.region
        assert isinstance(event.time, dt.datetime) and event.time.tzinfo is not None
        assert event.account and event.account.isdigit()
        assert isinstance(event.request_parameters, dict)
        assert isinstance(event.response_elements, dict)
        assert event.actor.label


@pytest.mark.parametrize("folder", ["streamalert-fixtures", "aws-docs-examples", "false-remediation"])
def test_the_other_datasets_parse_or_are_refused_naming_the_field(datasets, folder):
    """Every record of the other datasets is an event whose accessors all work, or a refusal
    that says why; none raises anything else (the GuardDuty guide's AssumedRole with a user's
    ARN once did, IndexError, in the actor)."""
    items = list(read_events([datasets / folder]))
    events = [item for item in items if isinstance(item, CloudTrailEvent)]
    assert len(events) >= 25  # the publisher-redacted envelopes are refused, rightly
    for item in items:
        if isinstance(item, EventError):
            assert item.problem and item.where
            continue
        assert item.actor.label and item.name and isinstance(item.request_parameters, dict)


def test_an_assumed_role_identity_without_a_session_arn_names_its_issuer(datasets):
    # The GuardDuty user guide's CreateThreatIntelSet record: type AssumedRole, arn an IAM user's.
    [event] = read_events([datasets / "aws-docs-examples" / "guardduty" / "CreateThreatIntelSet--awsdocs-console.json"])
    assert (event.actor.role_name, event.actor.session_name) == ("Alice", None)


def test_invictus_failed_calls_are_flagged(datasets):
    events = _real_records(datasets, "invictus-aws-2023")
    failed = [e for e in events if e.failed]
    assert 250 < len(failed) < 350  # the dataset's README: about 300 carry errorCode
    assert all(e.error_code for e in failed)


def test_panther_fixtures_are_parsed_or_refused_naming_the_field(datasets):
    items = list(read_events([datasets / "panther-fixtures" / "records.json"]))
    assert len(items) == 464
    errors = [e for e in items if isinstance(e, EventError)]
    missing_id = [e for e in errors if e.problem == "missing field 'eventID'"]
    assert len(missing_id) == 54  # the README counts 54 records without eventID
    for error in errors:
        assert error.where.startswith(str(datasets / "panther-fixtures" / "records.json") + " record ")
        assert error.problem.startswith(
            ("missing field '", "readOnly must", "requestParameters must", "responseElements must", "eventTime")
        )


def test_accessors_of_a_real_stop_logging_record(datasets):
    records = json.loads(
        (datasets / "stratus-detonation-logs" / "aws.defense-evasion.cloudtrail-stop.json").read_text()
    )
    event = CloudTrailEvent.from_record(records[0])
    assert event.event_id == "10163ed2-2253-469d-a5ee-cbc6651f8934"
    assert event.name == "StopLogging"
    assert event.source == "cloudtrail.amazonaws.com"
    assert event.account == "143434273843"
    assert event.time == dt.datetime(2024, 7, 31, 13, 6, 24, tzinfo=dt.UTC)
    assert event.actor.type == "IAMUser" and event.actor.name == "christophe"
    assert event.actor.label == "IAMUser christophe"
    assert event.source_ip == "86.245.153.234"
    assert event.user_agent.startswith("stratus-red-team_")
    assert event.request_parameters == {"name": "stratus-red-team-ct-stop-trail-buykxbqejv"}
    assert event.response_elements == {}
    assert not event.failed and not event.read_only and event.error_code is None


def test_assumed_role_actor_names_the_role_behind_the_session():
    event = CloudTrailEvent.from_record(
        record(
            "StopLogging",
            "cloudtrail.amazonaws.com",
            userIdentity={
                "type": "AssumedRole",
                "arn": "arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com",
                "accountId": "123456789012",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "arn": "arn:aws:iam::123456789012:role/ops/Admin",
                        "userName": "Admin",
                    }
                },
            },
        )
    )
    actor = event.actor
    assert (actor.role_name, actor.session_name, actor.role_arn) == (
        "Admin",
        "alice@example.com",
        "arn:aws:iam::123456789012:role/ops/Admin",
    )
    assert actor.label == "role Admin/alice@example.com"


def test_assumed_role_without_issuer_takes_the_role_from_the_arn():
    event = CloudTrailEvent.from_record(
        record(
            "StopLogging",
            "cloudtrail.amazonaws.com",
            userIdentity={
                "type": "AssumedRole",
                "arn": "arn:aws:sts::123456789012:assumed-role/tester",
                "accountId": "123456789012",
            },
        )
    )
    assert event.actor.role_name == "tester" and event.actor.session_name is None


def test_root_and_service_actors():
    root = CloudTrailEvent.from_record(
        record(
            "StopLogging",
            "cloudtrail.amazonaws.com",
            userIdentity={"type": "Root", "arn": "arn:aws:iam::123456789012:root", "accountId": "123456789012"},
        )
    )
    assert root.actor.label == "root user"
    service = CloudTrailEvent.from_record(
        record(
            "Decrypt", "kms.amazonaws.com", userIdentity={"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}
        )
    )
    assert service.actor.name == "cloudtrail.amazonaws.com"


def test_account_falls_back_to_the_caller_account():
    raw = record("StopLogging", "cloudtrail.amazonaws.com")
    del raw["recipientAccountId"]
    assert CloudTrailEvent.from_record(raw).account == "123456789012"


def test_eventbridge_envelope_gives_the_same_event_as_the_record():
    raw = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"})
    from_envelope = CloudTrailEvent.from_eventbridge(envelope(raw))
    assert from_envelope.record == raw
    assert CloudTrailEvent.from_any(envelope(raw)).event_id == CloudTrailEvent.from_any(raw).event_id


@pytest.mark.parametrize(
    "change,problem",
    [
        ({"detail-type": "Object Created"}, "detail-type is 'Object Created'"),
        ({"source": "custom.attacker"}, "source is 'custom.attacker'"),
        ({"source": None}, "source is None"),
    ],
)
def test_envelopes_not_from_cloudtrail_are_refused(change, problem):
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    event.update(change)
    with pytest.raises(EventError) as raised:
        CloudTrailEvent.from_eventbridge(event)
    assert problem in str(raised.value)
    assert raised.value.where == f"EventBridge event {event['id']}"


def test_envelope_without_detail_is_refused():
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com"))
    del event["detail"]
    with pytest.raises(EventError, match="missing field 'detail'"):
        CloudTrailEvent.from_eventbridge(event)


@pytest.mark.parametrize(
    "change,problem",
    [
        ({"eventName": None}, "missing field 'eventName'"),
        ({"eventName": 42}, "eventName must be a non-empty string, got int"),
        ({"eventID": ""}, "eventID must be a non-empty string, got string"),
        ({"userIdentity": None}, "missing field 'userIdentity'"),
        ({"userIdentity": "root"}, "userIdentity must be an object, got string"),
        ({"readOnly": "false"}, "readOnly must be true or false, got string"),
        ({"requestParameters": "name=main"}, "requestParameters must be an object or null, got string"),
        ({"errorCode": 403}, "errorCode must be a string, got int"),
        ({"eventTime": "yesterday"}, "eventTime 'yesterday' is not an ISO 8601 time"),
    ],
)
def test_malformed_records_are_refused_with_the_field(change, problem):
    raw = record("StopLogging", "cloudtrail.amazonaws.com")
    raw.update(change)
    with pytest.raises(EventError) as raised:
        CloudTrailEvent.from_record(raw, where="x.json record 3")
    assert str(raised.value) == f"x.json record 3: {problem}"


@pytest.mark.parametrize("value,kind", [([], "array"), ("text", "string"), (None, "null"), (7, "int")])
def test_a_record_that_is_not_an_object_is_refused(value, kind):
    with pytest.raises(EventError, match=f"expected a CloudTrail record object, got {kind}"):
        CloudTrailEvent.from_record(value)


def test_summary_keeps_what_messages_need():
    raw = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"})
    summary = CloudTrailEvent.from_record(raw).summary()
    assert summary.to_dict() == {
        "eventID": raw["eventID"],
        "eventName": "StopLogging",
        "eventSource": "cloudtrail.amazonaws.com",
        "eventType": "AwsApiCall",
        "eventTime": "2026-11-26T03:12:45Z",
        "account": "123456789012",
        "region": "us-east-1",
        "actor": "IAMUser mallory",
        "actorArn": "arn:aws:iam::123456789012:user/mallory",
        "session": None,
        "resource": "main",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0",
    }


@pytest.mark.parametrize(
    "request_parameters,resource",
    [
        ({"bucketName": "logs", "acl": [""]}, "logs"),
        ({"keyId": "arn:aws:kms:us-east-1:123456789012:key/k1"}, "arn:aws:kms:us-east-1:123456789012:key/k1"),
        ({"groupId": "sg-1", "ipPermissions": {}}, "sg-1"),
        ({"somethingElse": "x"}, None),
        (None, None),
    ],
)
def test_the_resource_a_message_names_is_the_target_parameter(request_parameters, resource):
    raw = record("AnyCall", "s3.amazonaws.com", request_parameters)
    assert CloudTrailEvent.from_record(raw).resource == resource
