"""Exceptions: a change marked as expected from a signed Slack click (a modal asks why and for
how long), made by the worker after checking who asked, honoured by the decision path,
re-checked by the sweep when it expires; an exception can quiet trailguard, never blind it."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest

from chalicelib.clock import utc_now
from chalicelib.incidents.exceptions import REQUESTED, exception_id
from tests.conftest import APPROVER, REGION, SIGNING_SECRET, STRANGER, envelope, record, signed_click
from trailguard.local.slack import signed_submission

pytestmark = pytest.mark.e2e

BUCKET = "public-website"


@pytest.fixture
def s3(aws):
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


def _make_public(client, s3) -> dict:
    s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read")
    event = envelope(record("PutBucketAcl", "s3.amazonaws.com", {"bucketName": BUCKET, "x-amz-acl": ["public-read"]}))
    [incident] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
    return incident


def _public(s3) -> bool:
    return any("AllUsers" in g["Grantee"].get("URI", "") for g in s3.get_bucket_acl(Bucket=BUCKET)["Grants"])


def _ask(client, slack_stub, incident_id: str, *, user: str = APPROVER, reason: str = "our website", days: str = "7"):
    """Press "Mark as expected", then submit the modal Slack opened: both signed."""
    body, headers = signed_click("except", slack_stub.button_value(incident_id, "except"), user=user)
    pressed = client.http.post("/slack/interactions", headers=headers, body=body)
    assert pressed.status_code == 200
    view = slack_stub.views[-1]
    body, headers = signed_submission(view, {"reason": reason, "days": days}, user=user, secret=SIGNING_SECRET)
    return client.http.post("/slack/interactions", headers=headers, body=body)


def test_an_exception_made_from_a_signed_slack_click_quiets_the_next_event_and_says_who_and_why(
    client, runtime, slack_stub, s3
):
    first = _make_public(client, s3)
    assert first["state"] == "remediated" and not _public(s3)
    message = slack_stub.only_message()
    labels = [e["text"]["text"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert labels == ["Undo", "Acknowledge", "Mark as expected for 7 days"]

    submitted = _ask(client, slack_stub, first["id"], reason="the marketing site, CHG-2291")
    assert submitted.status_code == 200 and json.loads(submitted.body or "{}") == {}  # the modal closes
    [opened] = slack_stub.calls("views.open")
    assert opened.body["trigger_id"] == "1.2.3" and opened.body["view"]["callback_id"] == "trailguard:except"
    incident = runtime.incidents.get(first["id"])
    asked, made = incident.history[-2:]
    assert (asked.what, asked.who, asked.detail) == (
        REQUESTED,
        f"slack:{APPROVER}",
        "for 7 days: the marketing site, CHG-2291",
    )
    assert made.what == "except" and made.who == f"slack:{APPROVER}"
    change = runtime.exceptions.get(exception_id("s3-bucket-acl-public", "123456789012", REGION, BUCKET))
    assert (
        change is not None and change.reason == "the marketing site, CHG-2291" and change.owner == f"slack:{APPROVER}"
    )
    assert dt.datetime.fromisoformat(change.expires_at) - utc_now() > dt.timedelta(days=6, hours=23)
    assert "Marked as expected by" in json.dumps(message.blocks)  # the message shows it

    second = _make_public(client, s3)  # the same change again, on purpose
    assert second["state"] == "notified" and _public(s3)  # told, not acted on
    noted = runtime.incidents.get(second["id"])
    assert noted.mode == "notify" and noted.mode_note.startswith(f"auto -> notify: exception {change.id} by slack:")


def test_a_submission_by_someone_who_may_not_decide_is_refused_in_the_form(client, runtime, slack_stub, s3):
    first = _make_public(client, s3)
    body, headers = signed_click("except", slack_stub.button_value(first["id"], "except"))
    client.http.post("/slack/interactions", headers=headers, body=body)
    view = slack_stub.views[-1]
    body, headers = signed_submission(view, {"reason": "trust me", "days": "7"}, user=STRANGER, secret=SIGNING_SECRET)
    answer = client.http.post("/slack/interactions", headers=headers, body=body)
    assert json.loads(answer.body) == {
        "response_action": "errors",
        "errors": {"reason": "You are not an approver for playbook s3-bucket-acl-public."},
    }
    forged, headers = signed_submission(view, {"reason": "x", "days": "7"}, user=APPROVER, secret="guessed")
    assert client.http.post("/slack/interactions", headers=headers, body=forged).status_code == 401
    crafted = json.loads(json.dumps(view))  # a signed payload Slack never sent: a length the form never offered
    [select] = [b["element"] for b in crafted["blocks"] if b.get("block_id") == "days"]
    select["options"].append({"text": {"type": "plain_text", "text": "a year"}, "value": "365"})
    body, headers = signed_submission(crafted, {"reason": "x", "days": "365"}, user=APPROVER, secret=SIGNING_SECRET)
    answer = client.http.post("/slack/interactions", headers=headers, body=body)
    assert json.loads(answer.body)["errors"] == {"days": "Choose one of the lengths offered (at most 30 days)."}
    assert runtime.exceptions.listed() == []


def test_a_request_written_around_the_endpoint_by_a_non_approver_makes_no_exception(runtime, client, s3):
    """Whoever holds the endpoint's role can write an incident's history, not an exception:
    the worker checks who asked before it makes one."""
    first = _make_public(client, s3)
    noted = runtime.claims.note(first["id"], f"slack:{STRANGER}", REQUESTED, "for 7 days: switch it off")
    result = runtime.click_worker.handle({"except": noted.id, "version": noted.version})
    assert result["status"] == "refused" and "may not decide" in result["reason"]
    assert runtime.exceptions.listed() == []
    assert runtime.incidents.get(first["id"]).history[-1].what == "except-refused"


def test_an_exception_that_expires_is_checked_again_and_an_unsafe_resource_gets_an_incident(
    client, runtime, slack_stub, s3
):
    first = _make_public(client, s3)
    _ask(client, slack_stub, first["id"], days="1")
    assert _make_public(client, s3)["state"] == "notified" and _public(s3)  # the exception holds
    assert runtime.sweep().run().exceptions_rechecked == []  # still in force: not checked

    later = utc_now() + dt.timedelta(days=1, minutes=5)
    runtime.exceptions.clock = runtime.incidents.clock = lambda: later
    report = runtime.sweep().run()
    [rechecked] = report.exceptions_rechecked
    assert "still unsafe (s3.remove_public_acl): incident inc-" in rechecked and "(remediated)" in rechecked
    assert not _public(s3)  # the playbook's own mode: auto
    [reopened] = report.opened
    incident = runtime.incidents.get(reopened)
    assert incident.event.from_sweep and "expired (our website) and public-website is still unsafe" in str(
        incident.history[0].detail
    )
    assert runtime.sweep().run().exceptions_rechecked == []  # checked once
    origin = runtime.incidents.get(first["id"])
    assert origin.history[-1].what == "exception-expired" and "still unsafe" in str(origin.history[-1].detail)


def test_an_expired_exception_whose_resource_is_safe_again_opens_nothing(client, runtime, slack_stub, s3):
    first = _make_public(client, s3)
    _ask(client, slack_stub, first["id"], days="1")
    s3.put_bucket_acl(Bucket=BUCKET, ACL="private")
    later = utc_now() + dt.timedelta(days=2)
    runtime.exceptions.clock = runtime.incidents.clock = lambda: later
    report = runtime.sweep().run()
    assert report.exceptions_rechecked == [
        f"{exception_id('s3-bucket-acl-public', '123456789012', REGION, BUCKET)}: "
        "safe: the resource is as the playbook wants it"
    ]
    assert report.opened == []


def test_a_playbook_the_settings_keep_out_of_exceptions_offers_no_button_and_refuses_one(
    client, runtime, slack_stub, s3, restart, tmp_path
):
    from chalicelib.organization.loader import load_organization

    path = tmp_path / "settings.yaml"
    path.write_text("exceptions:\n  never: [s3-bucket-acl-public]\n")
    fresh = restart(organization=load_organization(path))
    first = _make_public(client, s3)
    with pytest.raises(LookupError):
        slack_stub.button_value(first["id"], "except")
    noted = fresh.claims.note(first["id"], f"slack:{APPROVER}", REQUESTED, "for 7 days: please")
    result = fresh.click_worker.handle({"except": noted.id})
    assert result["status"] == "refused" and "keep s3-bucket-acl-public out of exceptions" in result["reason"]


def test_exceptions_are_sealed_and_a_forged_one_counts_for_nothing(client, runtime, slack_stub, s3):
    first = _make_public(client, s3)
    _ask(client, slack_stub, first["id"])
    key = exception_id("s3-bucket-acl-public", "123456789012", REGION, BUCKET)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    item = dynamodb.get_item(TableName=runtime.settings.table, Key={"pk": {"S": key}})["Item"]
    body = json.loads(item["body"]["S"])
    body["expiresAt"] = "2099-01-01T00:00:00Z"  # a year-long exception, written around trailguard
    item["body"] = {"S": json.dumps(body)}
    dynamodb.put_item(TableName=runtime.settings.table, Item=item)
    assert runtime.exceptions.get(key) is None  # refused: its seal does not hold
    assert _make_public(client, s3)["state"] == "remediated" and not _public(s3)
