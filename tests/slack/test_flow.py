"""Slack end to end, through chalice.test.Client: an event, the message in the local Slack
stub, a signed click on the app's own route, AWS (moto) and the message afterwards."""

from __future__ import annotations

import json
import logging

import pytest

from chalicelib.incidents.model import State
from chalicelib.playbooks.catalog import Catalog
from tests.conftest import (
    APPROVE_PLAYBOOK,
    APPROVER,
    SIGNING_SECRET,
    STRANGER,
    CallRecorder,
    envelope,
    record,
    recording_clients,
    shown,
    signed_click,
)

pytestmark = pytest.mark.e2e

TRAIL = "main"


@pytest.fixture
def trail(make_trail):
    return make_trail(TRAIL)


def stop_logging(client):
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL}))
    response = client.lambda_.invoke("respond_to_cloudtrail", event)
    [incident] = response.payload["incidents"]
    return incident["id"]


CONTAIN_OR_UNDO = ["contain", "deny_containment", "undo", "acknowledge", "except"]
"""A remediated StopLogging by an IAM user: the repair's Undo, and its containment's proposal."""


def buttons(message):
    return [e["action_id"].split(":")[1] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def text_of(message):
    return json.dumps(message.blocks)


def logging_now(trail):
    return trail.get_trail_status(Name=TRAIL)["IsLogging"]


# -- auto mode: remediated, then Undo ----------------------------------------------------


def test_auto_remediation_posts_undo_and_a_signed_undo_puts_the_trail_back(press, client, runtime, slack_stub, trail):
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    assert logging_now(trail) is True
    message = slack_stub.only_message()
    assert message.channel == slack_stub.channel_id("#security-alerts")
    assert buttons(message) == CONTAIN_OR_UNDO
    assert "IAMUser mallory" in text_of(message) and "sandbox (123456789012)" in text_of(message)
    stored = runtime.incidents.get(incident_id)
    assert stored.notification["ts"] == message.ts and not stored.notification_due

    response = press("undo", incident_id, response_url=slack_stub.response_url())
    assert response.status_code == 200
    assert logging_now(trail) is False  # back to what the attacker left: the undo was asked for
    assert runtime.incidents.get(incident_id).state is State.UNDONE
    assert buttons(message) == [] and message.updates == 1
    assert "Undone" in text_of(message) and f"<@{APPROVER}>" in text_of(message)
    assert message.thread and "Undo asked by" in message.thread[0]
    assert runtime.sweep().handle()["opened"] == [] and logging_now(trail) is False  # the decision sticks


def test_undo_is_refused_and_says_so_when_the_trail_changed_since(press, client, runtime, slack_stub, trail):
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    trail.stop_logging(Name=TRAIL)  # someone changed it after trailguard: undo must not touch it

    press("undo", incident_id)

    incident = runtime.incidents.get(incident_id)
    assert incident.state is State.REMEDIATED and incident.history[-1].what == "refuse_undo"
    assert logging_now(trail) is False
    message = slack_stub.only_message()
    assert "Undo refused" in text_of(message) and "IsLogging" in text_of(message)
    assert buttons(message) == CONTAIN_OR_UNDO


def test_acknowledge_closes_the_incident_and_removes_undo(press, client, runtime, slack_stub, trail):
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    press("acknowledge", incident_id)
    assert runtime.incidents.get(incident_id).state is State.ACKNOWLEDGED
    message = slack_stub.only_message()
    assert buttons(message) == [] and "Acknowledged by" in text_of(message)
    assert logging_now(trail) is True


def test_retry_runs_the_failed_step_again(press, client, runtime, slack_stub, make_trail):
    incident_id = stop_logging(client)  # no trail yet: the step fails
    assert runtime.incidents.get(incident_id).state is State.FAILED
    assert buttons(slack_stub.only_message()) == ["retry", "acknowledge", "except"]
    trail = make_trail(TRAIL)
    trail.stop_logging(Name=TRAIL)

    press("retry", incident_id)

    assert runtime.incidents.get(incident_id).state is State.REMEDIATED and logging_now(trail) is True
    assert buttons(slack_stub.only_message()) == CONTAIN_OR_UNDO


# -- approve mode ------------------------------------------------------------------------


def test_approve_runs_the_proposal(press, client, runtime, slack_stub, trail, approve_mode):
    runtime = approve_mode  # restarted with the approve-mode playbook
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    assert logging_now(trail) is False  # nothing runs before a person approves
    message = slack_stub.only_message()
    assert buttons(message) == ["approve", "deny", "except"]
    assert "Proposed steps" in text_of(message)

    assert press("approve", incident_id).status_code == 200

    assert logging_now(trail) is True
    assert runtime.incidents.get(incident_id).state is State.REMEDIATED
    assert buttons(message) == ["undo", "acknowledge", "except"] and "Approved by" in text_of(message)


def test_deny_closes_the_proposal_and_changes_nothing(press, client, runtime, slack_stub, trail, approve_mode):
    runtime = approve_mode  # restarted with the approve-mode playbook
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    press("deny", incident_id)
    assert logging_now(trail) is False
    assert runtime.incidents.get(incident_id).state is State.DENIED
    message = slack_stub.only_message()
    assert buttons(message) == [] and "Denied by" in text_of(message)
    assert runtime.sweep().handle()["opened"] == [] and logging_now(trail) is False  # not proposed again


def test_a_double_click_runs_the_steps_once(client, runtime, slack_stub, trail, approve_mode, restart):
    recorder = CallRecorder()
    runtime = restart(clients=recording_clients(recorder))
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    url = slack_stub.response_url("double")
    body, headers = signed_click("approve", slack_stub.button_value(incident_id, "approve"), response_url=url)
    first = client.http.post("/slack/interactions", headers=headers, body=body)
    second = client.http.post("/slack/interactions", headers=headers, body=body)  # the same press, sent twice
    assert first.status_code == second.status_code == 200
    assert recorder.writes().count("StartLogging") == 1
    [told] = slack_stub.ephemeral
    assert told["response_type"] == "ephemeral" and "the message you pressed was out of date" in told["text"]
    assert "it is remediated now" in told["text"]
    assert [h.what for h in runtime.incidents.get(incident_id).history].count("approve") == 1


def test_approvers_pressing_at_the_same_moment_decide_once(client, runtime, slack_stub, trail, approve_mode, restart):
    import threading

    recorder = CallRecorder()
    runtime = restart(clients=recording_clients(recorder))
    incident_id = _proposal(client, trail)
    value = slack_stub.button_value(incident_id, "approve")
    requests = [signed_click("approve", value, user=user) for user in (APPROVER, "U0ALICE", "U0BOB") * 3]
    start = threading.Barrier(len(requests))
    answers = []

    def press(body, headers):
        start.wait()
        answers.append(runtime.slack_endpoint.answer(body, headers).status)

    threads = [threading.Thread(target=press, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * len(requests)
    incident = runtime.incidents.get(incident_id)
    assert incident.state is State.REMEDIATED and [h.what for h in incident.history].count("approve") == 1
    assert recorder.writes().count("StartLogging") == 1 and logging_now(trail) is True


def test_a_user_group_member_may_approve(press, client, runtime, slack_stub, trail, approve_mode):
    runtime = approve_mode  # restarted with the approve-mode playbook
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    press("approve", incident_id, user="U0ALICE")
    assert runtime.incidents.get(incident_id).state is State.REMEDIATED
    assert len(slack_stub.calls("usergroups.users.list")) == 1


def test_an_unauthorized_user_changes_nothing_and_is_told_why(
    press, client, runtime, slack_stub, trail, approve_mode, caplog
):
    runtime = approve_mode  # restarted with the approve-mode playbook
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    version = runtime.incidents.get(incident_id).version
    with caplog.at_level(logging.WARNING, logger="trailguard"):
        response = press("approve", incident_id, user=STRANGER, response_url=slack_stub.response_url())
    assert response.status_code == 200
    assert logging_now(trail) is False
    assert runtime.incidents.get(incident_id).version == version
    [told] = slack_stub.ephemeral
    assert "You are not an approver for playbook trail-approve" in told["text"]
    assert "not an approver" in caplog.text and STRANGER in caplog.text


def test_approvers_named_by_the_playbook_replace_the_global_ones(
    press, client, runtime, slack_stub, trail, tmp_path, restart
):
    (tmp_path / "p.yaml").write_text(APPROVE_PLAYBOOK + "slack: {channel: '#trail-owners', approvers: [U0OWNER]}\n")
    runtime = restart(Catalog.load([tmp_path]))
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    assert slack_stub.only_message().channel == slack_stub.channel_id("#trail-owners")
    press("approve", incident_id, user=APPROVER)
    assert runtime.incidents.get(incident_id).state is State.PROPOSED
    press("approve", incident_id, user="U0OWNER")
    assert runtime.incidents.get(incident_id).state is State.REMEDIATED


# -- refused requests --------------------------------------------------------------------


def _proposal(client, trail):
    trail.stop_logging(Name=TRAIL)
    return stop_logging(client)


@pytest.mark.parametrize(
    "tamper,status",
    [
        (lambda body, headers: (body, {**headers, "X-Slack-Signature": "v0=" + "0" * 64}), 401),
        (lambda body, headers: (body.replace("approve", "deny"), headers), 401),  # signed body changed
        (lambda body, headers: (body, {k: v for k, v in headers.items() if k != "X-Slack-Signature"}), 401),
        (lambda body, headers: (body, {**headers, "X-Slack-Request-Timestamp": "yesterday"}), 401),
    ],
)
def test_forged_requests_are_refused(client, runtime, slack_stub, trail, approve_mode, tamper, status):
    runtime = approve_mode  # restarted with the approve-mode playbook
    incident_id = _proposal(client, trail)
    body, headers = tamper(*signed_click("approve", slack_stub.button_value(incident_id, "approve")))
    response = client.http.post("/slack/interactions", headers=headers, body=body)
    assert response.status_code == status
    assert runtime.incidents.get(incident_id).state is State.PROPOSED and logging_now(trail) is False


def test_a_request_signed_with_another_secret_is_refused(press, client, runtime, trail, approve_mode):
    runtime = approve_mode  # restarted with the approve-mode playbook
    incident_id = _proposal(client, trail)
    response = press("approve", incident_id, secret="not-the-apps-secret")
    assert response.status_code == 401
    assert runtime.incidents.get(incident_id).state is State.PROPOSED


def test_a_replayed_request_older_than_five_minutes_is_refused(press, client, runtime, trail, approve_mode):
    runtime = approve_mode  # restarted with the approve-mode playbook
    incident_id = _proposal(client, trail)
    response = press("approve", incident_id, age_seconds=301)
    assert response.status_code == 401
    assert json.loads(response.body)["error"] == "invalid or expired signature"
    assert runtime.incidents.get(incident_id).state is State.PROPOSED


@pytest.mark.parametrize(
    "payload,problem",
    [
        ("not json", "payload is not JSON"),
        (json.dumps({"type": "view_submission"}), "payload.user.id is None; expected a Slack user id"),
        (json.dumps({"type": "block_actions", "user": {"id": APPROVER}, "actions": []}), "expected one action"),
        (
            json.dumps(
                {
                    "type": "block_actions",
                    "user": {"id": APPROVER},
                    "actions": [{"action_id": "trailguard:delete_everything", "value": "inc-0"}],
                }
            ),
            "action_id",
        ),
        (
            json.dumps(
                {
                    "type": "block_actions",
                    "user": {"id": APPROVER},
                    "actions": [{"action_id": "trailguard:approve", "value": "../../etc"}],
                }
            ),
            "expected inc-<id>:<decision count>",
        ),
        (json.dumps({"type": "block_actions", "actions": [{"action_id": "trailguard:approve"}]}), "user.id"),
        (json.dumps({"type": "block_actions", "padding": "x" * 70_000}), "expected at most 65536"),
    ],
)
def test_malformed_payloads_are_refused_with_400(client, payload, problem):
    import time
    import urllib.parse

    from slack_sdk.signature import SignatureVerifier

    body = urllib.parse.urlencode({"payload": payload})
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body),
    }
    response = client.http.post("/slack/interactions", headers=headers, body=body)
    assert response.status_code == 400
    assert problem in json.loads(response.body)["error"]


def test_a_body_that_is_not_a_form_is_refused_not_crashed(client):
    response = client.http.post("/slack/interactions", headers={"Content-Type": "application/json"}, body="{}")
    assert response.status_code == 415  # Chalice refuses the content type before our code runs


def test_without_a_signing_secret_every_click_is_refused(press, client, runtime, trail, approve_mode, restart):
    incident_id = _proposal(client, trail)
    restart(slack_signing_secret=None)
    assert press("approve", incident_id).status_code == 401


# -- Slack failing -----------------------------------------------------------------------


def test_a_rate_limited_post_is_retried_after_retry_after(client, runtime, slack_stub, trail):
    slack_stub.fail("chat.postMessage", 429, times=1, retry_after=0)
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    assert len(slack_stub.calls("chat.postMessage")) == 2
    assert slack_stub.only_message().ts == runtime.incidents.get(incident_id).notification["ts"]


def test_slack_down_keeps_the_incident_and_the_sweep_delivers_later(client, runtime, slack_stub, trail):
    slack_stub.fail("chat.postMessage", 503, times=20)
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    kept = runtime.incidents.get(incident_id)
    assert kept.state is State.REMEDIATED and logging_now(trail) is True
    assert kept.notification_due and "503" in kept.notification["error"]
    assert slack_stub.messages == {}

    slack_stub.fail("chat.postMessage", 503, times=0)
    slack_stub._failures.clear()
    scheduled = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    report = client.lambda_.invoke("posture_sweep", scheduled).payload

    assert report["delivered"] == [incident_id]
    delivered = runtime.incidents.get(incident_id)
    assert not delivered.notification_due and delivered.notification["ts"] == slack_stub.only_message().ts
    assert buttons(slack_stub.only_message()) == CONTAIN_OR_UNDO


def test_a_table_that_fails_gets_503_not_a_stack_trace(press, client, runtime, trail, approve_mode):
    runtime = approve_mode  # restarted with the approve-mode playbook
    import boto3

    from chalicelib.incidents.store import DynamoStore

    incident_id = _proposal(client, trail)
    runtime.claims.store = DynamoStore(boto3.client("dynamodb"), "a-table-that-is-not-there")
    response = press("approve", incident_id)
    assert response.status_code == 503
    assert json.loads(response.body)["error"].startswith("trailguard could not handle the click; nothing was changed")


def test_a_rate_limited_group_lookup_refuses_at_once_instead_of_waiting(
    press, client, runtime, slack_stub, trail, approve_mode
):
    runtime = approve_mode  # restarted with the approve-mode playbook
    incident_id = _proposal(client, trail)
    slack_stub.fail("usergroups.users.list", 429, retry_after=30)  # waiting would outlast Slack's 3 s
    response = press("approve", incident_id, user="U0ALICE", response_url=slack_stub.response_url())
    assert response.status_code == 200
    assert len(slack_stub.calls("usergroups.users.list")) == 1  # no retry inside the answer
    assert runtime.incidents.get(incident_id).state is State.PROPOSED
    [told] = slack_stub.ephemeral
    assert told["text"].startswith("Could not check that you are an approver")


def test_a_worker_that_cannot_be_invoked_leaves_the_decision_to_the_sweep_and_says_so(
    press, client, runtime, slack_stub, trail, approve_mode, restart
):
    runtime = restart(slack_worker="no-such-function")
    incident_id = _proposal(client, trail)
    response = press("approve", incident_id, response_url=slack_stub.response_url())
    assert response.status_code == 200
    # decided; the sweep resumes it after the lease
    assert runtime.incidents.get(incident_id).state is State.REMEDIATING
    assert logging_now(trail) is False
    [told] = slack_stub.ephemeral
    assert "is recorded, but trailguard's worker could not be started" in told["text"]


def test_a_form_content_type_with_a_charset_is_accepted(client, runtime, slack_stub, trail, approve_mode):
    runtime = approve_mode  # restarted with the approve-mode playbook
    incident_id = _proposal(client, trail)
    body, headers = signed_click("approve", slack_stub.button_value(incident_id, "approve"))
    headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 200
    assert runtime.incidents.get(incident_id).state is State.REMEDIATED


# -- the workspace and the app -----------------------------------------------------------


@pytest.mark.parametrize(
    "setting,other",
    [("slack_team_id", {"team": "T0ELSEWHERE"}), ("slack_app_id", {"app": "A0ANOTHERAPP"})],
)
def test_a_click_signed_for_another_workspace_or_app_is_refused_before_any_read(
    client, runtime, slack_stub, trail, approve_mode, caplog, setting, other, restart
):
    """An app installed in several workspaces signs them all with one secret: only the
    configured workspace and app are answered; the table is not read for the others."""
    incident_id = _proposal(client, trail)
    ours = {"slack_team_id": "T0STUB", "slack_app_id": "A0TRAILGUARD"}[setting]  # what the stub signs with
    runtime = restart(**{setting: ours})
    reads = CallRecorder()
    reads.attach(runtime.unsealed_store.client)
    value = slack_stub.button_value(incident_id, "approve")

    with caplog.at_level(logging.WARNING, logger="trailguard"):
        body, headers = signed_click("approve", value, **other)
        refused = client.http.post("/slack/interactions", headers=headers, body=body)

    assert refused.status_code == 403 and "trailguard answers" in json.loads(refused.body)["error"]
    assert reads.calls == [] and runtime.incidents.get(incident_id).state is State.PROPOSED
    assert "Slack request refused" in caplog.text
    body, headers = signed_click("approve", value)
    assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 200
    assert runtime.incidents.get(incident_id).state is State.REMEDIATED


# -- one incident, two responses: repair now, contain on approval ----------------------------


def test_containment_approved_from_slack_quarantines_the_user_and_release_takes_it_back(
    press, client, runtime, slack_stub, trail
):
    iam = runtime.clients.client("iam", "123456789012", "us-east-1")
    iam.create_user(UserName="mallory")
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    assert logging_now(trail) is True  # the repair ran at once
    message = slack_stub.only_message()
    assert buttons(message) == CONTAIN_OR_UNDO
    assert "Contain who did it (on approval)" in text_of(message) and "iam.quarantine_user" in text_of(message)
    assert iam.list_attached_user_policies(UserName="mallory")["AttachedPolicies"] == []

    assert press("contain", incident_id).status_code == 200

    incident = runtime.incidents.get(incident_id)
    assert incident.state is State.REMEDIATED and incident.containment.value == "applied"
    [attached] = iam.list_attached_user_policies(UserName="mallory")["AttachedPolicies"]
    assert attached["PolicyName"] == "trailguard-quarantine"
    assert buttons(message) == ["release", "undo", "acknowledge", "except"]
    assert "Containment approved by" in text_of(message)

    press("release", incident_id)

    incident = runtime.incidents.get(incident_id)
    assert incident.state is State.REMEDIATED and incident.containment.value == "released"
    assert iam.list_attached_user_policies(UserName="mallory")["AttachedPolicies"] == []
    assert logging_now(trail) is True  # releasing the actor leaves the repair alone
    assert buttons(message) == ["undo", "acknowledge", "except"]


def test_containment_denied_from_slack_leaves_the_actor_and_keeps_the_repair(press, client, runtime, slack_stub, trail):
    iam = runtime.clients.client("iam", "123456789012", "us-east-1")
    iam.create_user(UserName="mallory")
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)

    press("deny_containment", incident_id)

    incident = runtime.incidents.get(incident_id)
    assert incident.state is State.REMEDIATED and incident.containment.value == "denied"
    assert iam.list_attached_user_policies(UserName="mallory")["AttachedPolicies"] == []
    message = slack_stub.only_message()
    assert buttons(message) == ["undo", "acknowledge", "except"] and "Containment denied by" in text_of(message)
    assert "not run (containment denied)" in text_of(message) and "waits for an approver" not in text_of(message)
    assert logging_now(trail) is True
    body, headers = signed_click("contain", shown(incident))  # a forged or late press: nothing runs
    assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 200
    assert runtime.incidents.get(incident_id).containment.value == "denied"
    assert iam.list_attached_user_policies(UserName="mallory")["AttachedPolicies"] == []


def test_a_stolen_credential_finding_proposes_revoking_the_role_and_approve_revokes_it(
    press, client, runtime, slack_stub
):
    import datetime as dt
    from pathlib import Path

    from chalicelib.actions.contain_iam import REVOCATION_POLICY, session_denied
    from chalicelib.respond.handler import eventbridge_rules

    iam = runtime.clients.client("iam", "123456789012", "us-east-1")
    iam.create_role(RoleName="app-server", AssumeRolePolicyDocument="{}")
    finding = json.loads(
        (
            Path(__file__).parents[1]
            / "data/findings/guardduty/reconstructed-InstanceCredentialExfiltration.OutsideAWS.json"
        ).read_text()
    )
    [rule] = [r.name for r in eventbridge_rules(runtime.catalog) if r.pattern["detail-type"] == ["GuardDuty Finding"]]
    [incident] = client.lambda_.invoke(rule, finding).payload["incidents"]
    assert (incident["playbook"], incident["state"]) == ("guardduty-instance-credentials-exfiltration", "proposed")
    message = slack_stub.only_message()
    assert buttons(message) == ["approve", "deny", "except"]
    assert "GuardDuty reported" in text_of(message) and "iam.revoke_role_sessions" in text_of(message)
    stolen_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)  # the copied session was issued before

    press("approve", incident["id"])

    stored = runtime.incidents.get(incident["id"])
    assert stored.state is State.REMEDIATED and stored.containment.value == "applied"
    document = iam.get_role_policy(RoleName="app-server", PolicyName=REVOCATION_POLICY)["PolicyDocument"]
    assert session_denied(document, stolen_at)  # what AWS evaluates: the stolen session is refused
    assert not session_denied(document, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    assert buttons(message) == ["release", "undo", "acknowledge", "except"]


def test_a_containment_nobody_answered_expires_and_a_late_approval_is_told_so(
    press, client, runtime, slack_stub, trail
):
    import datetime as dt

    iam = runtime.clients.client("iam", "123456789012", "us-east-1")
    iam.create_user(UserName="mallory")
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    message = slack_stub.only_message()
    late = slack_stub.button_value(incident_id, "contain")  # the button as the message showed it
    scheduled = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    runtime.incidents.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)
    client.lambda_.invoke("posture_sweep", scheduled)
    assert runtime.incidents.get(incident_id).containment.value == "proposed"  # not yet: 24 h by default

    runtime.incidents.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)
    report = client.lambda_.invoke("posture_sweep", scheduled).payload

    incident = runtime.incidents.get(incident_id)
    assert incident_id in report["expired"]
    assert incident.state is State.REMEDIATED and incident.containment.value == "expired"
    assert "nobody answered the proposal to contain who did it within 24 hours" in incident.history[-1].detail
    assert buttons(message) == ["undo", "acknowledge", "except"]  # the containment's buttons are gone
    assert "Containment expired" in text_of(message) and "it expired" in text_of(message)
    assert "iam.quarantine_user` user=mallory: not run (nobody answered in time)" in text_of(message)

    body, headers = signed_click("contain", late, response_url=slack_stub.response_url())
    assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 200
    [told] = slack_stub.ephemeral
    assert "Nothing was done: the proposal to contain who did it expired at" in told["text"]
    assert iam.list_attached_user_policies(UserName="mallory")["AttachedPolicies"] == []
    assert logging_now(trail) is True  # the repair stands


def test_release_after_a_containment_that_found_the_actor_already_contained_offers_no_release_again(
    press, client, runtime, slack_stub, trail
):
    from chalicelib.actions.contain_iam import QUARANTINE_POLICY

    iam = runtime.clients.client("iam", "123456789012", "us-east-1")
    iam.create_user(UserName="mallory")
    trail.stop_logging(Name=TRAIL)
    incident_id = stop_logging(client)
    press("contain", incident_id)
    [attached] = iam.list_attached_user_policies(UserName="mallory")["AttachedPolicies"]
    assert attached["PolicyName"] == QUARANTINE_POLICY
    trail.stop_logging(Name=TRAIL)  # the same user again: the second incident finds mallory quarantined
    second = stop_logging(client)
    press("contain", second)
    assert runtime.incidents.get(second).steps[-1].status.value == "already-safe"

    press("release", second)

    incident = runtime.incidents.get(second)
    assert incident.state is State.REMEDIATED and incident.containment.value == "released"
    slack_stub.button_value(second, "undo")  # its message is up to date...
    with pytest.raises(LookupError):
        slack_stub.button_value(second, "release")  # ...and offers no Release again
