"""The incidents table as a trust boundary: what the public endpoint's role can write is not
acted on unless trailguard's acting roles sealed it (KMS HMAC, moto), end to end through
chalice.test.Client, with AWS read back through boto3.

Every forgery here uses only what the endpoint's role holds: PutItem on an `inc-*` item
(the committed policy's condition is checked for each key written), a signed click (its
role reads the signing secret), and invoking the worker. A remembered configuration is the
exception, written as no role of the endpoint can (defence in depth behind the policy).
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import json
import logging

import boto3
import pytest

from chalicelib.aws.seals import message
from chalicelib.incidents.model import State
from tests.conftest import (
    ACCOUNT,
    DEPLOYED_TABLE,
    INTEGRITY_KEY,
    REGION,
    ROOT,
    CallRecorder,
    envelope,
    record,
    signed_click,
)

pytestmark = pytest.mark.e2e

TRAIL = "main"
ATTACKER_BUCKET = "attacker-drop"
NOT_SEALED = ("state", "history", "notification", "leaseUntil", "version", "seal", "sealedState")
"""What a seal leaves out (docs/security.md): what a click and the notifier write."""


@pytest.fixture
def trail(make_trail):
    cloudtrail = make_trail(TRAIL)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=ATTACKER_BUCKET)
    return cloudtrail


def _endpoint_may_write(key: str) -> bool:
    """Whether the committed endpoint policy's key condition admits `key` (IAM's StringLike)."""
    api = json.loads((ROOT / ".chalice" / "policy-dev-api.json").read_text())
    [table] = [s for s in api["Statement"] if s["Sid"] == "Incidents"]
    patterns = table["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def stored(incident_id: str) -> dict:
    """The incident's item as the table holds it (its JSON body)."""
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=DEPLOYED_TABLE, Key={"pk": {"S": incident_id}}, ConsistentRead=True
    )["Item"]
    return json.loads(item["body"]["S"])


def put_as_the_endpoint(body: dict) -> None:
    """A PutItem the endpoint's role is allowed: an `inc-*` item, shaped as the store shapes it."""
    assert _endpoint_may_write(body["id"])
    item = {
        "pk": {"S": body["id"]},
        "state": {"S": body["state"]},
        "version": {"N": str(body["version"])},
        "createdAt": {"S": body["createdAt"]},
        "body": {"S": json.dumps(body)},
    }
    if body["state"] in ("proposed", "remediating", "remediated", "failed", "undoing"):
        item["openState"] = {"S": body["state"]}
    boto3.client("dynamodb", region_name=REGION).put_item(TableName=DEPLOYED_TABLE, Item=item)


def invoke_worker(client, incident_id: str) -> dict:
    """What the endpoint's role may do: hand the worker a job naming the incident's version."""
    return client.lambda_.invoke("slack_worker", {"incident": incident_id, "version": stored(incident_id)["version"]})


def stop_logging(client) -> str:
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL}))
    [incident] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
    return str(incident["id"])


def trails() -> dict[str, str]:
    """Every trail in the account, with the bucket it delivers to."""
    found = boto3.client("cloudtrail", region_name=REGION).describe_trails()["trailList"]
    return {t["Name"]: t["S3BucketName"] for t in found}


def logging_now() -> bool:
    return bool(boto3.client("cloudtrail", region_name=REGION).get_trail_status(Name=TRAIL)["IsLogging"])


def to_the_attackers_bucket() -> dict:
    """A step that points the trail's delivery at the attacker's bucket: "restore" settings
    trailguard never saw."""
    return {
        "action": "cloudtrail.restore_trail_settings",
        "params": {"trail": TRAIL},
        "remembered": {"Name": TRAIL, "S3BucketName": ATTACKER_BUCKET, "IsMultiRegionTrail": True},
    }


def delivers_to() -> str:
    return trails()[TRAIL]


def forged_incident(state: str = "remediating", **fields) -> dict:
    """An incident nobody opened: a plan that sends the trail's logs to the attacker's bucket."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    body = {
        "id": "inc-" + "0123456789abcdef0123",
        "playbook": "cloudtrail-trail-weakened",
        "playbookVersion": 1,
        "title": "CloudTrail trail weakened",
        "severity": "critical",
        "mode": "auto",
        "state": state,
        "event": {
            "eventID": "forged",
            "eventName": "UpdateTrail",
            "eventSource": "cloudtrail.amazonaws.com",
            "eventTime": now,
            "account": ACCOUNT,
            "region": REGION,
            "actor": "IAMUser mallory",
        },
        "plan": [to_the_attackers_bucket()],
        "steps": [],
        "error": None,
        "createdAt": now,
        "history": [{"at": now, "who": "trailguard", "what": "open", "state": state}],
        "notification": None,
        "leaseUntil": "2020-01-01T00:00:00+00:00",
        "version": 1,
    }
    return {**body, **fields}


# -- what the worker refuses -------------------------------------------------------------


def test_a_forged_incident_is_refused_by_the_worker_and_the_trail_keeps_its_bucket(client, runtime, trail, caplog):
    forged = forged_incident()
    put_as_the_endpoint(forged)
    with caplog.at_level(logging.ERROR, logger="trailguard"):
        answer = invoke_worker(client, forged["id"]).payload
    assert delivers_to() == f"{TRAIL}-logs"
    assert answer["status"] == "refused" and answer["reason"] == "it carries no seal"
    assert stored(forged["id"]) == forged  # left as it was: neither run nor resealed
    assert "incident changed outside trailguard" in caplog.text


def test_an_edited_plan_is_refused_when_a_person_approves_it(client, runtime, press, trail, approve_mode):
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    edited = stored(incident_id)
    edited["plan"] = [to_the_attackers_bucket()]
    put_as_the_endpoint(edited)

    assert press("approve", incident_id).status_code == 200  # the click itself is genuine

    assert delivers_to() == f"{TRAIL}-logs" and logging_now() is False  # nothing of the plan ran, edited or not
    after = stored(incident_id)
    assert after["state"] == "remediating" and after["steps"] == []
    assert after["seal"] == edited["seal"]  # the forgery was not resealed


def test_an_edited_before_snapshot_is_not_put_back_by_undo(client, runtime, trail):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="customer-data")
    s3.put_bucket_acl(Bucket="customer-data", ACL="public-read")
    event = envelope(
        record("PutBucketAcl", "s3.amazonaws.com", {"bucketName": "customer-data", "x-amz-acl": ["public-read"]})
    )
    [opened] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
    assert opened["state"] == "remediated"
    edited = stored(opened["id"])
    before = edited["steps"][0]["before"]
    everyone = {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}}
    before["Grants"] = [g for g in before["Grants"] if "URI" not in g["Grantee"]] + [
        {**everyone, "Permission": "FULL_CONTROL"}
    ]
    edited["state"] = "undoing"  # one button press away: that part alone a click could do
    put_as_the_endpoint(edited)

    answer = invoke_worker(client, opened["id"]).payload

    grants = s3.get_bucket_acl(Bucket="customer-data")["Grants"]
    assert not any("AllUsers" in g["Grantee"].get("URI", "") for g in grants)  # still private
    assert answer["status"] == "refused"


def test_a_decided_incident_cannot_be_moved_two_steps_back_to_work(client, runtime, press, trail, approve_mode):
    """Denied, then written back to remediating (as if proposed, then approved): refused."""
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    press("deny", incident_id)
    denied = stored(incident_id)
    assert (denied["state"], denied["sealedState"]) == ("denied", "denied")  # the worker sealed the decision
    put_as_the_endpoint({**denied, "state": "remediating"})

    answer = invoke_worker(client, incident_id).payload

    assert logging_now() is False
    assert answer["status"] == "refused" and "no button leads" in answer["reason"]


def test_a_forged_remembered_configuration_is_not_restored(client, runtime, trail):
    """Written as the endpoint cannot (its role may touch `inc-*` items only): the seal still holds."""
    key = f"trail#{ACCOUNT}#{REGION}#{TRAIL}"
    assert not _endpoint_may_write(key)
    forged = {"Name": TRAIL, "S3BucketName": ATTACKER_BUCKET, "IsMultiRegionTrail": True}
    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=DEPLOYED_TABLE, Item={"pk": {"S": key}, "body": {"S": json.dumps(forged)}}
    )
    trail.delete_trail(Name=TRAIL)

    event = envelope(record("DeleteTrail", "cloudtrail.amazonaws.com", {"name": TRAIL}))
    [opened] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]

    assert TRAIL not in trails()  # not re-created to the attacker's bucket
    assert opened["state"] == "failed"
    error = runtime.incidents.get(opened["id"]).steps[0].error
    assert f"remembered configuration {key} changed outside trailguard: it carries no seal" in error


def test_a_redelivered_event_does_not_resume_a_forged_incident(client, runtime, trail):
    trail.stop_logging(Name=TRAIL)
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL}))
    [opened] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
    trail.stop_logging(Name=TRAIL)
    edited = stored(opened["id"])
    edited.update(state="remediating", plan=[to_the_attackers_bucket()], steps=[])
    edited["leaseUntil"] = "2020-01-01T00:00:00+00:00"  # as if its worker had died
    put_as_the_endpoint(edited)

    [again] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]

    assert delivers_to() == f"{TRAIL}-logs" and logging_now() is False
    assert again["duplicate"] and again["state"] is None and "does not match" in again["refused"]
    assert stored(opened["id"]) == edited


# -- what the sweep refuses --------------------------------------------------------------


def test_the_sweep_refuses_forged_incidents_and_goes_on_with_the_others(client, runtime, slack_stub, trail):
    busy = forged_incident()  # its lease ran out long ago: the sweep would resume it
    proposal = forged_incident(  # past its timeout, and its message due: the sweep would expire it and post it
        "proposed",
        id="inc-" + "f" * 20,
        mode="approve",
        createdAt="2020-01-01T00:00:00+00:00",
        leaseUntil=None,
        notification={"channel": "#security-alerts"},
    )
    for forged in (busy, proposal):
        put_as_the_endpoint(forged)
    scheduled = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )

    report = client.lambda_.invoke("posture_sweep", scheduled).payload  # the trail was never started

    assert delivers_to() == f"{TRAIL}-logs"
    assert sorted(line.split(":")[0] for line in report["refused"]) == sorted([busy["id"], proposal["id"]])
    assert report["resumed"] == [] and report["expired"] == []
    assert stored(busy["id"]) == busy and stored(proposal["id"]) == proposal
    assert proposal["id"] not in json.dumps([m.blocks for m in slack_stub.messages.values()])  # nothing posted
    [genuine] = report["opened"]  # the sweep's own finding, in the same run
    assert runtime.incidents.get(genuine).state is State.REMEDIATED and logging_now() is True


# -- what still works --------------------------------------------------------------------


def _seal_holds(body: dict) -> bool:
    """KMS's own answer (VerifyMac) on the stored seal, over everything but what a click writes."""
    content = {name: value for name, value in body.items() if name not in NOT_SEALED}
    content["sealedState"] = body["sealedState"]
    answer = boto3.client("kms", region_name=REGION).verify_mac(
        KeyId=INTEGRITY_KEY,
        Message=message("incident", body["id"], content),
        Mac=base64.b64decode(body["seal"]),
        MacAlgorithm="HMAC_SHA_256",
    )
    return bool(answer["MacValid"])


def test_a_genuine_approve_then_undo_works_end_to_end_and_each_step_is_sealed(
    client, runtime, press, slack_stub, trail, approve_mode
):
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    proposed = stored(incident_id)
    assert proposed["sealedState"] == "proposed" and _seal_holds(proposed)

    assert press("approve", incident_id).status_code == 200
    remediated = stored(incident_id)
    assert logging_now() is True and remediated["state"] == remediated["sealedState"] == "remediated"
    assert _seal_holds(remediated)

    assert press("undo", incident_id).status_code == 200
    undone = stored(incident_id)
    assert logging_now() is False and undone["state"] == undone["sealedState"] == "undone"
    assert _seal_holds(undone)


def test_a_click_keeps_the_seal_it_found_and_the_sweep_carries_it_out(
    client, runtime, press, slack_stub, trail, approve_mode, restart
):
    """The endpoint cannot seal: its click leaves the seal as it was, one button from the state
    it records; the sweep (an acting role) accepts that, carries the work out, and seals it."""
    runtime = approve_mode  # restarted with the approve-mode playbook
    from tests.conftest import Clock

    runtime = restart(slack_worker="no-such-function")
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    proposed = stored(incident_id)
    kms = CallRecorder()
    kms.attach(runtime.clients.home_client("kms"))

    press("approve", incident_id)
    assert kms.calls == []  # the endpoint neither seals nor checks: its role has no KMS permission
    claimed = stored(incident_id)
    assert (claimed["state"], claimed["sealedState"]) == ("remediating", "proposed")
    assert claimed["seal"] == proposed["seal"] and logging_now() is False

    runtime.incidents.clock = Clock(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))  # the lease ran out
    scheduled = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    report = client.lambda_.invoke("posture_sweep", scheduled).payload
    assert incident_id in report["resumed"] and report["refused"] == []
    assert logging_now() is True and stored(incident_id)["sealedState"] == "remediated"
    assert "GenerateMac" in kms.calls  # the sweep seals, through the same client


def test_a_table_without_an_integrity_key_is_refused_not_run_unsealed(client, runtime, trail, restart):
    runtime = restart(integrity_key=None)
    trail.stop_logging(Name=TRAIL)
    with pytest.raises(LookupError, match="TRAILGUARD_INTEGRITY_KEY is not set"):
        runtime.event_handler.handle(envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL})))
    assert logging_now() is False


# -- a replayed click --------------------------------------------------------------------


def test_a_replayed_undo_is_refused_once_the_incident_is_back_in_a_state_that_allows_it(
    client, runtime, slack_stub, trail
):
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    trail.stop_logging(Name=TRAIL)  # changed after trailguard acted: the undo will be refused
    undo = signed_click("undo", slack_stub.button_value(incident_id, "undo"), response_url=slack_stub.response_url())
    client.http.post("/slack/interactions", headers=undo[1], body=undo[0])
    assert stored(incident_id)["state"] == "remediated"  # undo refused: Undo is offered again
    trail.start_logging(Name=TRAIL)  # as trailguard left it: an undo would now go through

    replayed = client.http.post("/slack/interactions", headers=undo[1], body=undo[0])  # within 5 minutes

    assert replayed.status_code == 200 and logging_now() is True
    assert [entry["what"] for entry in stored(incident_id)["history"]].count("undo") == 1
    told = slack_stub.ephemeral[-1]["text"]
    assert "the message you pressed was out of date" in told and "it is remediated now" in told


def test_a_replayed_retry_is_refused_after_the_retry_it_repeats_failed(client, runtime, slack_stub, make_trail):
    incident_id = stop_logging(client)  # no trail yet: the step fails
    retry = signed_click("retry", slack_stub.button_value(incident_id, "retry"))
    client.http.post("/slack/interactions", headers=retry[1], body=retry[0])
    assert stored(incident_id)["state"] == "failed"  # failed again: Retry is offered again
    make_trail(TRAIL).stop_logging(Name=TRAIL)

    client.http.post("/slack/interactions", headers=retry[1], body=retry[0])

    assert stored(incident_id)["state"] == "failed" and logging_now() is False
    assert [entry["what"] for entry in stored(incident_id)["history"]].count("retry") == 1


def test_a_button_without_a_decision_count_is_refused_as_out_of_date(client, runtime, slack_stub, trail, approve_mode):
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    old_style = signed_click("approve", incident_id, response_url=slack_stub.response_url())  # value: the id alone

    assert client.http.post("/slack/interactions", headers=old_style[1], body=old_style[0]).status_code == 200

    assert stored(incident_id)["state"] == "proposed" and logging_now() is False
    assert "the message you pressed was out of date" in slack_stub.ephemeral[-1]["text"]


def test_a_press_on_an_out_of_date_message_refreshes_it(client, runtime, press, slack_stub, trail):
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    stale_undo = slack_stub.button_value(incident_id, "undo")
    slack_stub.fail("chat.update", 503, times=20)  # Slack takes no update: the message keeps its buttons
    press("acknowledge", incident_id)
    assert stored(incident_id)["state"] == "acknowledged"
    slack_stub._failures.clear()

    body, headers = signed_click("undo", stale_undo, response_url=slack_stub.response_url())
    client.http.post("/slack/interactions", headers=headers, body=body)

    assert stored(incident_id)["state"] == "acknowledged" and logging_now() is True
    assert "the message you pressed was out of date" in slack_stub.ephemeral[-1]["text"]
    message = slack_stub.only_message()
    assert not [b for b in message.blocks if b["type"] == "actions"]  # brought up to date: no buttons left
    assert "Acknowledged by" in json.dumps(message.blocks)
