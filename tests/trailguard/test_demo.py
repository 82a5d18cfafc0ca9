"""`make demo` plays its scenario end to end, on moto's server and the Slack stub, and exits
0 only when every resource and incident ends as the story says."""

from __future__ import annotations

import json
import urllib.request

import pytest

from chalicelib.events.synthetic import api_call_record
from trailguard.demo import local_world, play
from trailguard.demo.playground import event_endpoint
from trailguard.demo.scenario import ATTACKER, REGION, TRAIL

pytestmark = pytest.mark.e2e


def test_the_demo_scenario_ends_with_every_resource_as_the_story_says(capsys, tmp_path):
    outcome = play(tmp_path / "messages")
    out = capsys.readouterr().out
    assert outcome.ok, out
    # read back from the local AWS after the story, not from trailguard's own view
    assert [(row.playbook, row.mode, row.state, row.resource) for row in outcome.rows] == [
        ("cloudtrail-stop-logging", "auto", "remediated", "logging"),  # a forged Undo changed nothing
        ("kms-key-disabled", "auto", "undone", "Disabled"),  # the on-call engineer's Undo
        ("kms-key-deletion-scheduled", "auto", "remediated", "Enabled"),
        ("s3-bucket-acl-public", "auto", "remediated", "private"),
        # a stranger's Undo changed nothing; then the change was marked as expected and made again
        ("ec2-security-group-public-admin-ingress", "auto", "remediated", "SSH OPEN to 0.0.0.0/0"),
        ("cloudtrail-trail-deleted", "auto", "remediated", "logging"),  # re-created from what the set-up showed
        ("s3-bucket-policy-public", "approve", "remediated", "private (1 statement kept)"),  # Approved
        ("ec2-security-group-public-admin-ingress", "notify", "notified", "SSH OPEN to 0.0.0.0/0"),  # expected
        ("cloudtrail-stop-logging", "dry-run", "simulated", "logging"),  # while paused (restarted after resume)
        ("cloudtrail-stop-logging", "auto", "remediated", "logging"),  # after the resume
        # GuardDuty's stolen-credential finding, Approved: the copied session is denied by the role
        ("guardduty-instance-credentials-exfiltration", "approve", "remediated", "stolen session refused"),
    ]
    assert "after the call: SSH OPEN to 0.0.0.0/0" in out and "after the call: DELETED" in out
    assert "POST /slack/interactions (approve, by U0ONCALL, signed) -> 200" in out
    assert (
        "Slack, only to U0DEVELOPER: You are not an approver for playbook ec2-security-group-public-admin-ingress"
        in out
    )
    assert "POST /slack/interactions (undo, by U0ONCALL, forged) -> 401" in out
    # seven remediations, the approved proposal, the SSH fix again, the approved containment
    assert out.count("[ Undo ]  [ Acknowledge ]") == 10
    # an exception made from a signed Slack click, through the modal, and the kill switch
    assert "POST /slack/interactions (except, by U0ONCALL, signed) -> 200; Slack opens the modal" in out
    assert "trailguard's worker made exception exc-" in out and "mode auto -> notify: exception exc-" in out
    assert "$ trailguard pause --stage demo" in out and "mode auto -> dry-run: the stage's switch: paused by" in out
    assert "now: NOT logging, incident simulated  [ok]" in out
    assert "[ Approve ]  [ Deny ]" in out
    assert "\x1b[" not in out  # plain when not on a terminal
    assert "every resource and incident is as the story says" in out
    # every message shown is written as Block Kit JSON for the Block Kit Builder
    # one region goes blind: the heartbeat's incident, told, then closed when the trail logs again
    assert "the next heartbeat: 123456789012/eu-west-1: since " in out and "closed  [ok]" in out
    assert "CRITICAL · trailguard cannot see account 123456789012 in eu-west-1" in out
    assert len(outcome.messages) == 16
    # one incident, two responses: the trail restarted at once, its caller's containment proposed
    assert "[ Approve containment ]  [ Deny containment ]  [ Undo ]  [ Acknowledge ]" in out
    assert '"Condition": {"DateLessThan": {"aws:TokenIssueTime": "' in out  # the deny statement in the role
    assert "mallory's next call with the copied session: stolen session refused" in out
    for path in outcome.messages:
        blocks = json.loads(path.read_text())["blocks"]
        assert blocks[0]["type"] == "header" and any(b["type"] == "context" for b in blocks)


def test_the_playgrounds_event_endpoint_runs_a_record_through_the_handler(capsys):
    with local_world() as (chalice_app, local, _slack):
        local.client("s3").create_bucket(Bucket="trail-logs-bucket")
        local.client("cloudtrail").create_trail(Name=TRAIL, S3BucketName="trail-logs-bucket")
        server = event_endpoint(chalice_app)
        try:
            record = api_call_record(
                "StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL}, identity=ATTACKER, region=REGION
            )
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.server_address[1]}/events", data=json.dumps(record).encode(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.load(response)
            (incident,) = answer["incidents"]
            assert incident["playbook"] == "cloudtrail-stop-logging" and incident["state"] == "remediated"
            assert local.client("cloudtrail").get_trail_status(Name=TRAIL)["IsLogging"]
            bad = urllib.request.Request(
                f"http://127.0.0.1:{server.server_address[1]}/events", data=b"{not json", method="POST"
            )
            try:
                urllib.request.urlopen(bad, timeout=30)
                raise AssertionError("a malformed event was accepted")
            except urllib.error.HTTPError as error:
                assert error.code == 400 and "not JSON" in json.load(error)["reason"]
        finally:
            server.shutdown()


def test_the_demo_exits_non_zero_when_something_ends_otherwise_than_the_story_says(capsys, tmp_path, monkeypatch):
    import dataclasses

    from trailguard.demo import run_demo, scenario

    wrong = (dataclasses.replace(scenario.ATTACKS[0], expected="NOT logging"), *scenario.ATTACKS[1:])
    monkeypatch.setattr(scenario, "ATTACKS", wrong)
    assert run_demo(tmp_path / "messages") == 1
    out = capsys.readouterr().out
    assert "[UNEXPECTED: expected NOT logging, remediated]" in out and "SOMETHING IS NOT AS EXPECTED" in out
