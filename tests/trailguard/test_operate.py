"""Operating without Slack: `trailguard incidents approve|deny|undo|ack|retry` and
`trailguard exceptions`, through the same state machine and conditional writes as a click,
recorded as the AWS principal who ran them; the worker does the AWS work. And the common
operator mistakes answered in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import boto3
import pytest
from click.testing import CliRunner

from chalicelib.incidents.model import State
from tests.conftest import REGION, ROOT, CallRecorder, envelope, record, recording_clients, signed_click
from trailguard import cli
from trailguard.bootstrap import ensure_table

pytestmark = pytest.mark.e2e

TRAIL = "main"
TABLE = "trailguard-dev"  # the dev stage's, derived from its name
OPERATOR = "aws:arn:aws:sts::123456789012:user/moto"  # who moto says the caller is


@pytest.fixture
def operated(runtime, restart, monkeypatch):
    """The app on the dev stage's table, its worker run in this process (as Lambda would run it
    when the command line invokes it)."""
    ensure_table(boto3.client("dynamodb", region_name=REGION), TABLE)
    recorder = CallRecorder()
    fresh = restart(table=TABLE, clients=recording_clients(recorder))
    monkeypatch.setattr(cli, "_dispatcher", lambda settings: fresh.click_worker.handle)
    fresh.recorder = recorder
    return fresh


def _run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli.main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _stop_logging(client) -> str:
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL}))
    [incident] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
    return str(incident["id"])


def test_approve_and_undo_from_the_command_line_record_the_aws_principal(
    client, operated, approve_mode, make_trail, restart, monkeypatch
):
    fresh = restart(table=TABLE)
    monkeypatch.setattr(cli, "_dispatcher", lambda settings: fresh.click_worker.handle)
    cloudtrail = make_trail(TRAIL)
    incident_id = _stop_logging(client)
    listed = [json.loads(line) for line in _run("incidents", "--stage", "dev", "--json").splitlines()]
    assert [(i["id"], i["state"]) for i in listed] == [(incident_id, "proposed")]

    said = _run("incidents", "approve", incident_id, "--stage", "dev")
    assert f"approve of {incident_id} recorded, by {OPERATOR}: remediating" in said
    assert f"{incident_id} is remediated" in said
    assert cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is True
    _run("incidents", "undo", incident_id, "--stage", "dev", "--reason", "the trail is being retired")
    incident = fresh.incidents.get(incident_id)
    assert incident.state is State.UNDONE and cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is False
    decisions = [(entry.what, entry.who) for entry in incident.history if entry.what in ("approve", "undo")]
    assert decisions == [("approve", OPERATOR), ("undo", OPERATOR)]
    shown = _run("incidents", "--stage", "dev", incident_id)  # as before: incidents --stage S ID
    assert f"{OPERATOR:<28} undo" in shown and "the trail is being retired" in shown
    refused = _run("incidents", "approve", incident_id, "--stage", "dev", code=1)
    assert "nothing done: cannot approve incident" in refused and "it is undone" in refused


def test_notices_are_listed_and_acknowledged_from_the_command_line(client, operated):
    event = envelope(record("LeaveOrganization", "organizations.amazonaws.com", None))
    incidents = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
    notified = [i for i in incidents if i["state"] == "notified"]
    assert notified, incidents
    listed = _run("incidents", "--stage", "dev", "--state", "notified")
    assert notified[0]["id"] in listed
    _run("incidents", "ack", notified[0]["id"], "--stage", "dev", "--reason", "the account moves to another org")
    assert operated.incidents.get(notified[0]["id"]).state is State.ACKNOWLEDGED
    assert notified[0]["id"] not in _run("incidents", "--stage", "dev", "--state", "notified")


@pytest.mark.parametrize("transition", ["approve", "undo"])
def test_the_command_line_and_a_slack_click_at_the_same_moment_decide_once(
    client, operated, approve_mode, make_trail, restart, monkeypatch, slack_stub, transition
):
    recorder = CallRecorder()
    fresh = restart(table=TABLE, clients=recording_clients(recorder))
    monkeypatch.setattr(cli, "_dispatcher", lambda settings: fresh.click_worker.handle)
    cloudtrail = make_trail(TRAIL)
    incident_id = _stop_logging(client)
    if transition == "undo":
        fresh.incidents.approve(incident_id, "slack:U0APPROVER")
        fresh.incidents.notify(fresh.incidents.get(incident_id))
    recorder.calls.clear()
    barrier = threading.Barrier(2)
    body, headers = signed_click(transition, slack_stub.button_value(incident_id, transition))
    answers: dict[str, object] = {}

    def from_slack() -> None:
        barrier.wait()
        answers["slack"] = client.http.post("/slack/interactions", headers=headers, body=body).status_code

    def from_the_command_line() -> None:
        barrier.wait()
        try:
            cli._decide(incident_id, transition, "dev", None, 0)
            answers["cli"] = "decided"
        except SystemExit as refused:
            answers["cli"] = f"refused ({refused.code})"

    threads = [threading.Thread(target=from_slack), threading.Thread(target=from_the_command_line)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    incident = fresh.incidents.get(incident_id)
    assert [entry.what for entry in incident.history].count(transition) == 1  # one of them won
    call = "StartLogging" if transition == "approve" else "StopLogging"
    assert recorder.writes().count(call) == 1  # and the steps ran once
    assert incident.state is (State.REMEDIATED if transition == "approve" else State.UNDONE)
    assert answers["slack"] == 200 and answers["cli"] in ("decided", "refused (1)")
    assert cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is (transition == "approve")


def test_an_exception_from_the_command_line_is_made_listed_and_revoked(client, operated, make_trail):
    cloudtrail = make_trail(TRAIL)
    first = _stop_logging(client)
    said = _run(
        "exceptions",
        "add",
        first,
        "--stage",
        "dev",
        "--reason",
        "trail migration CHG-7",
        "--days",
        "3",
        "--owner",
        "platform-team",
    )
    assert "made: exc-" in said and "by aws:arn:aws:sts::123456789012:user/moto" in said
    [listed] = [json.loads(line) for line in _run("exceptions", "--stage", "dev", "--json").splitlines()]
    assert (listed["playbook"], listed["resource"], listed["owner"], listed["status"]) == (
        "cloudtrail-stop-logging",
        TRAIL,
        "platform-team",
        "in force",
    )
    cloudtrail.stop_logging(Name=TRAIL)
    quiet = _stop_logging(client)
    assert operated.incidents.get(quiet).state is State.NOTIFIED
    assert cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is False
    _run("exceptions", "revoke", listed["id"], "--stage", "dev")
    assert "exc-" not in _run("exceptions", "--stage", "dev")  # no longer in force
    assert json.loads(_run("exceptions", "--stage", "dev", "--json", "--all"))["status"] == "revoked"
    _stop_logging(client)
    assert cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is True
    history = operated.incidents.get(first).history
    assert [entry.what for entry in history][-3:] == ["except-requested", "except", "revoke-exception"]


def test_a_decision_that_would_run_steps_is_refused_while_paused(
    client, operated, approve_mode, make_trail, restart, monkeypatch
):
    fresh = restart(table=TABLE)
    monkeypatch.setattr(cli, "_dispatcher", lambda settings: fresh.click_worker.handle)
    make_trail(TRAIL)
    incident_id = _stop_logging(client)
    _run("pause", "--stage", "dev", "--reason", "change freeze")
    said = _run("incidents", "approve", incident_id, "--stage", "dev", code=1)
    assert "nothing done: the stage is paused by arn:aws:sts::123456789012:user/moto" in said
    assert fresh.incidents.get(incident_id).state is State.PROPOSED


# -- the common operator mistakes, in one line ----------------------------------------------


def test_no_table_yet_says_to_bootstrap(aws):
    said = _run("incidents", "--stage", "dev", code=1)
    assert said.strip() == (
        "error: trailguard-dev does not exist in this account and region: bootstrap the stage first "
        "(python -m trailguard bootstrap --stage dev), or check AWS_REGION"
    )


def test_no_region_and_no_credentials_are_one_line_each(monkeypatch, tmp_path):
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # boto3 keeps what it found in the process
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    said = _run("status", "--stage", "dev", code=2)
    assert said.startswith("error: no AWS region: set AWS_REGION") and "Traceback" not in said
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    said = _run("pause", "--stage", "dev", code=2)
    assert said.startswith("error: no AWS credentials: sign in") and "Traceback" not in said


def test_a_bad_playbook_or_settings_file_stops_the_app_with_one_line_per_mistake(tmp_path):
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "bad.yaml").write_text(
        "id: bad\n"
        "title: x\n"
        "severity: high\n"
        "when: {source: cloudtrail.amazonaws.com, events: [StopLogging]}\n"
        "mode: auto\n"
        "steps:\n"
        "  - action: cloudtrail.start_loging\n"
    )
    settings = tmp_path / "settings.yaml"
    settings.write_text("scope:\n  exclude_acounts: ['111122223333']\n")

    def start(**environment: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "import app"],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", **environment},
            capture_output=True,
            text=True,
        )

    bad_playbook = start(TRAILGUARD_PLAYBOOKS=str(folder))
    assert bad_playbook.returncode == 1 and "Traceback" not in bad_playbook.stderr
    assert bad_playbook.stderr.splitlines()[:2] == [
        "trailguard cannot start: 1 mistake in the playbooks:",
        f"  {folder}/bad.yaml:7: steps[0].action: unknown action 'cloudtrail.start_loging'; did you mean "
        "'cloudtrail.start_logging'? (expected one of: "
        + bad_playbook.stderr.split("(expected one of: ")[1].splitlines()[0],
    ]
    typo = start(TRAILGUARD_SETTINGS_FILE=str(settings))
    assert typo.returncode == 1 and "Traceback" not in typo.stderr
    assert typo.stderr.splitlines()[1].startswith(
        f"  {settings}:2: scope.exclude_acounts: unknown key 'exclude_acounts'; did you mean 'exclude_accounts'?"
    )


def test_the_operator_policy_decides_and_hands_over_but_cannot_seal_or_remediate():
    from trailguard.generate.deployment import stage_settings
    from trailguard.generate.policy import operator_policy

    policy = json.loads(_run("policy", "--stage", "prod", "--operator"))
    assert policy == operator_policy(stage_settings("prod"))
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "lambda:InvokeFunction",
        "ssm:GetParameter",
        "ssm:PutParameter",
    }
    writes = next(s for s in policy["Statement"] if s["Sid"] == "DecideIncidents")
    assert writes["Condition"]["ForAllValues:StringLike"] == {"dynamodb:LeadingKeys": ["inc-*"]}  # never exc-*
    assert not any(a.startswith(("kms:", "iam:", "sts:AssumeRole")) for a in actions)


def test_the_organizations_accounts_and_ou_paths_become_the_settings_files_accounts(aws, tmp_path):
    """What `trailguard organization` prints is what the settings file reads: OU ceilings and
    scopes then apply to the accounts it lists."""
    from chalicelib.organization.loader import load_organization

    organizations = boto3.client("organizations", region_name=REGION)
    organizations.create_organization(FeatureSet="ALL")
    root = organizations.list_roots()["Roots"][0]["Id"]
    workloads = organizations.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
    sandbox = organizations.create_organizational_unit(ParentId=workloads, Name="sandbox")["OrganizationalUnit"]["Id"]
    created = organizations.create_account(AccountName="alice-sandbox", Email="alice@example.com")
    account = created["CreateAccountStatus"]["AccountId"]
    organizations.move_account(AccountId=account, SourceParentId=root, DestinationParentId=sandbox)
    printed = _run("organization")
    assert f"  '{account}': {{name: \"alice-sandbox\", ou: {root}/{workloads}/{sandbox}}}" in printed
    settings = tmp_path / "settings.yaml"
    settings.write_text(printed + f"modes:\n  ous: {{{workloads}: approve}}\n")
    organization = load_organization(settings)
    assert organization.accounts[account].ou_path == (root, workloads, sandbox)
    assert organization.account_names()[account] == "alice-sandbox"


def test_containment_is_approved_and_released_from_the_command_line(client, operated, make_trail):
    """The second response without Slack: StopLogging by an IAM user repaired at once, its
    caller's quarantine approved, then released, each recorded as the AWS principal."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="mallory")
    cloudtrail = make_trail(TRAIL)
    cloudtrail.stop_logging(Name=TRAIL)
    incident_id = _stop_logging(client)
    assert operated.incidents.get(incident_id).containment.value == "proposed"

    said = _run("incidents", "contain", incident_id, "--stage", "dev")
    assert f"contain of {incident_id} recorded, by {OPERATOR}: remediating" in said
    assert [p["PolicyName"] for p in iam.list_attached_user_policies(UserName="mallory")["AttachedPolicies"]] == [
        "trailguard-quarantine"
    ]
    _run("incidents", "release", incident_id, "--stage", "dev", "--reason", "mallory was the red team")
    incident = operated.incidents.get(incident_id)
    assert incident.containment.value == "released" and incident.state is State.REMEDIATED
    assert iam.list_attached_user_policies(UserName="mallory")["AttachedPolicies"] == []
    assert cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is True
    refused = _run("incidents", "deny-containment", incident_id, "--stage", "dev", code=1)
    assert "its containment is released, and deny_containment needs proposed" in refused
