"""Nothing dropped: an event that fails every retry lands in the dead-letter queue bootstrap
set on trailguard's rule, and `redrive` hands it to the handler, which opens its incident
and remediates; a message is deleted only on success. Lambda's on-failure records are
redriven too, and `trailguard redrive` hands each event to the deployed function."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from click.testing import CliRunner

from chalicelib.incidents.model import State
from tests.conftest import ACCOUNT, REGION, record
from tests.trailguard.eventbridge_failures import lambda_targets_fail
from tests.trailguard.stage_on_moto import LAYOUT, client, make_stage
from trailguard.cli import main
from trailguard.operations import ensure
from trailguard.redrive import FunctionFailed, invoke_function, original_event, redrive, succeeded

pytestmark = pytest.mark.integration

QUEUE = LAYOUT.dead_letter_queue("respond_to_cloudtrail")
TRAIL = "main"


def put_cloudtrail_call(detail: dict[str, Any]) -> None:
    """As CloudTrail's delivery puts it on the default bus (moto lets a test use an aws.* source)."""
    answer = client("events").put_events(
        Entries=[
            {"Source": "aws.cloudtrail", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(detail)}
        ]
    )
    assert answer["FailedEntryCount"] == 0


def stop_logging() -> dict[str, Any]:
    return record("StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL}, eventID=str(uuid.uuid4()))


def queue_url(name: str = QUEUE) -> str:
    return str(client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def depth(name: str = QUEUE) -> int:
    attributes = client("sqs").get_queue_attributes(QueueUrl=queue_url(name), AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def bootstrapped(aws) -> None:
    ensure(boto3.client, make_stage())


def test_an_event_that_fails_every_retry_lands_in_the_queue_and_redrive_has_it_remediated(
    bootstrapped, client, runtime, make_trail
):
    """`client` is chalice.test.Client on the app: the redriven event goes through the rules'
    own handler, which opens the incident and starts the trail again."""
    trail = make_trail(TRAIL)
    trail.stop_logging(Name=TRAIL)
    detail = stop_logging()
    with lambda_targets_fail() as dropped:
        put_cloudtrail_call(detail)
    assert dropped == [] and depth() == 1

    answers: list[dict[str, Any]] = []

    def handler(event: dict[str, Any]) -> Any:
        answers.append(client.lambda_.invoke("respond_to_cloudtrail", event).payload)
        return answers[-1]

    report = redrive(boto3.client("sqs", region_name=REGION), queue_url(), handler, wait_seconds=0)

    assert (report.received, report.handled, report.kept) == (1, 1, [])
    [answer] = answers
    assert answer["status"] == "handled" and answer["eventID"] == detail["eventID"]
    [incident] = answer["incidents"]
    assert runtime.incidents.get(incident["id"]).state is State.REMEDIATED
    assert trail.get_trail_status(Name=TRAIL)["IsLogging"] is True
    assert depth() == 0
    again = redrive(boto3.client("sqs", region_name=REGION), queue_url(), handler, wait_seconds=0)
    assert again.received == 0


def test_without_bootstrap_the_same_event_is_dropped(aws):
    """What the issue saw: Chalice's target has no dead-letter queue."""
    make_stage()
    with lambda_targets_fail() as dropped:
        put_cloudtrail_call(stop_logging())
    assert len(dropped) == 1


def test_a_failing_handler_keeps_the_message_and_says_why(bootstrapped):
    with lambda_targets_fail(error_code="THROTTLING"):
        put_cloudtrail_call(stop_logging())

    def broken(event: dict[str, Any]) -> Any:
        raise RuntimeError("table unavailable")

    sqs = boto3.client("sqs", region_name=REGION)
    report = redrive(sqs, queue_url(), broken, wait_seconds=0)
    [kept] = report.kept
    assert (report.received, report.handled) == (1, 0)
    assert kept.reason == "the handler raised RuntimeError: table unavailable"
    assert kept.failed_before["ERROR_CODE"] == "THROTTLING"
    assert kept.failed_before["RULE_ARN"].endswith(":rule/trailguard-dev-respond_to_cloudtrail-event")
    assert depth() == 1
    failed = redrive(
        sqs, queue_url(), lambda event: {"status": "failed", "reason": "incident too large"}, wait_seconds=0
    )
    assert failed.kept[0].reason.startswith('the handler answered {"status": "failed"') and depth() == 1
    healed = redrive(sqs, queue_url(), lambda event: {"status": "handled"}, wait_seconds=0)  # visible again at once
    assert healed.handled == 1 and depth() == 0


def test_lambdas_on_failure_record_is_redriven_with_its_request_payload(bootstrapped):
    """The worker's queue holds Lambda's invocation records (its documented shape)."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = queue_url(LAYOUT.dead_letter_queue("slack_worker"))
    job = {"incident": "inc-0123456789abcdef0123", "version": 3}
    sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(
            {
                "version": "1.0",
                "timestamp": "2026-12-06T15:00:00.000Z",
                "requestContext": {
                    "requestId": str(uuid.uuid4()),
                    "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:trailguard-dev-slack_worker:$LATEST",
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": 3,
                },
                "requestPayload": job,
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                "responsePayload": {"errorMessage": "Task timed out after 60.00 seconds"},
            }
        ),
    )
    seen: list[dict[str, Any]] = []
    report = redrive(sqs, url, lambda event: seen.append(event), dry_run=True, wait_seconds=0)
    assert report.kept[0].failed_before["errorMessage"] == "Task timed out after 60.00 seconds" and seen == []
    report = redrive(sqs, url, lambda event: seen.append(event), wait_seconds=0)
    assert seen == [job] and report.handled == 1


def test_unreadable_messages_are_kept_and_reported(bootstrapped):
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.send_message(QueueUrl=queue_url(), MessageBody="not json")
    sqs.send_message(QueueUrl=queue_url(), MessageBody="[1, 2]")
    report = redrive(sqs, queue_url(), lambda event: pytest.fail("must not be called"), wait_seconds=0)
    assert sorted(k.reason for k in report.kept) == [
        "unreadable: the body is a JSON list, not an object",
        "unreadable: the body is not JSON",
    ]


def test_a_dry_run_hands_over_and_deletes_nothing_and_the_limit_bounds_a_run(bootstrapped):
    with lambda_targets_fail():
        for _ in range(12):
            put_cloudtrail_call(stop_logging())
    sqs = boto3.client("sqs", region_name=REGION)
    dry = redrive(sqs, queue_url(), lambda e: pytest.fail("dry run"), dry_run=True, wait_seconds=0)
    assert (dry.received, dry.handled, len(dry.kept), depth()) == (12, 0, 12, 12)
    limited = redrive(sqs, queue_url(), lambda e: {"status": "handled"}, limit=5, wait_seconds=0)
    assert (limited.received, limited.handled, depth()) == (5, 5, 7)


def test_what_counts_as_done():
    assert succeeded({"status": "handled"}) and succeeded({"status": "skipped"}) and succeeded({"status": "done"})
    assert not any(succeeded({"status": s}) for s in ("failed", "rejected", "refused"))
    event, kind, why = original_event(
        {"Body": json.dumps({"requestContext": {"condition": "EventAgeExceeded"}, "requestPayload": {"a": 1}})}
    )
    assert (kind, event, why["condition"]) == ("lambda", {"a": 1}, "EventAgeExceeded")


def test_a_function_that_fails_is_a_failure_not_an_answer():
    lambda_client = boto3.client("lambda", region_name=REGION)
    with Stubber(lambda_client) as stub:
        body = json.dumps({"errorMessage": "Task timed out after 60.00 seconds"}).encode()
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": StreamingBody(io.BytesIO(body), len(body))},
        )
        with pytest.raises(
            FunctionFailed, match="trailguard-dev-respond_to_cloudtrail failed \\(Unhandled\\): Task timed out"
        ):
            invoke_function(lambda_client, "trailguard-dev-respond_to_cloudtrail")({"detail": {}})


@pytest.fixture
def lambdas_without_docker():
    """moto runs no function without Docker; with its simple backend, an invocation answers the event."""
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


def test_the_command_hands_each_event_to_the_deployed_function_and_keeps_what_it_refuses(lambdas_without_docker):
    ensure(boto3.client, make_stage())
    with lambda_targets_fail():
        put_cloudtrail_call(stop_logging())
    sqs = boto3.client("sqs", region_name=REGION)
    worker_queue = queue_url(LAYOUT.dead_letter_queue("slack_worker"))
    record_of = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": {"status": "rejected"}}
    sqs.send_message(QueueUrl=worker_queue, MessageBody=json.dumps(record_of))

    dry = CliRunner().invoke(main, ["redrive", "--stage", "dev", "--dry-run"])
    assert dry.exit_code == 0 and json.loads(dry.stdout)["received"] == 1 and depth() == 1
    done = CliRunner().invoke(main, ["redrive", "--stage", "dev"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["handled"] == 1 and depth() == 0
    assert "1 handed to trailguard-dev-respond_to_cloudtrail" in done.stderr
    refused = CliRunner().invoke(main, ["redrive", "--stage", "dev", "--function", "slack_worker"])
    assert refused.exit_code == 1 and json.loads(refused.stdout)["kept"][0]["reason"].startswith(
        'the handler answered {"status": "rejected"'
    )
    wrong = CliRunner().invoke(main, ["redrive", "--stage", "dev", "--function", "api_handler"])
    assert wrong.exit_code == 2 and "api_handler has no dead-letter queue" in wrong.output
