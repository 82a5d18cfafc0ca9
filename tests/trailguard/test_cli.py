"""`python -m trailguard`: validate, test, replay (over the real datasets), schema, policy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chalicelib import __version__
from chalicelib.events.record import EventSummary
from chalicelib.settings import Settings
from tests.conftest import PLAYBOOKS, ROOT, record
from tests.playbooks.test_loader import VALID
from trailguard.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_validate_the_bundled_playbooks(run):
    result = run("validate")
    assert result.exit_code == 0
    assert result.output == f"ok: {len(list(PLAYBOOKS.glob('*.yaml')))} playbooks valid\n"


def test_validate_lists_every_mistake_and_exits_1(run, tmp_path):
    (tmp_path / "a.yaml").write_text(VALID.replace("mode: auto", "mode: sometimes"))
    (tmp_path / "b.yaml").write_text(VALID.replace("id: trail-stopped", "id: other").replace("when:", "whn:"))
    result = run("validate", tmp_path)
    assert result.exit_code == 1
    assert f"{tmp_path / 'a.yaml'}:7: mode: 'sometimes' is not allowed" in result.output
    assert f"{tmp_path / 'b.yaml'}:4: whn: unknown key 'whn'; did you mean 'when'?" in result.output


def test_test_command_passes_the_bundled_playbooks(run):
    result = run("test")
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    assert result.output.splitlines()[-1].endswith("0 failed")


def test_test_command_reports_a_failing_test_with_a_rerun_hint(run, tmp_path):
    event = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"})
    path = tmp_path / "p.yaml"
    path.write_text(
        VALID
        + "tests:\n  - name: wrong expectation\n    event: "
        + json.dumps(event)
        + "\n    expect: {mode: auto, steps: [{action: cloudtrail.start_logging, params: {trail: other}}]}\n"
    )
    result = run("test", path)
    assert result.exit_code == 1
    assert "FAIL trail-stopped: wrong expectation" in result.output
    assert "step 1 (cloudtrail.start_logging): expected trail='other', got trail='main'" in result.output
    assert f"rerun: python -m trailguard test {path}" in result.output


def test_test_event_from_a_file(run, tmp_path):
    (tmp_path / "event.json").write_text(json.dumps(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "x"})))
    path = tmp_path / "p.yaml"
    path.write_text(VALID + "tests:\n  - name: from a file\n    event: event.json\n    expect: {mode: auto}\n")
    assert run("test", path).exit_code == 0


def _jsonl(output):
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_replay_over_the_datasets_finds_the_successful_calls_only(datasets):
    result = CliRunner().invoke(main, ["replay", str(datasets), "--format", "jsonl"], catch_exceptions=False)
    assert result.exit_code == 0
    lines = _jsonl(result.stdout)
    stratus = {line["eventID"]: line for line in lines if line["eventID"] in _stratus_ids(datasets)}
    answered = {(line["eventName"], match["playbook"]) for line in stratus.values() for match in line["matches"]}
    # Each Stratus Red Team detonation that changes something trailguard watches, and the
    # playbook that answers it (docs/playbooks.md has the full coverage table).
    assert answered == {
        ("StopLogging", "cloudtrail-stop-logging"),
        ("DeleteTrail", "cloudtrail-trail-deleted"),
        ("PutEventSelectors", "cloudtrail-event-selectors-changed"),
        ("DeleteFlowLogs", "ec2-flow-logs-deleted"),
        ("DeleteResolverQueryLogConfig", "route53-resolver-query-logging-deleted"),
        ("AuthorizeSecurityGroupIngress", "ec2-security-group-public-admin-ingress"),
        ("ModifyImageAttribute", "ec2-image-shared"),
        ("ModifySnapshotAttribute", "ec2-snapshot-shared"),
        ("ModifyDBSnapshotAttribute", "rds-snapshot-shared"),
        ("UpdateAssumeRolePolicy", "iam-role-trust-external"),
        ("CreateAccessKey", "iam-access-key-for-another-user"),
        ("AttachUserPolicy", "iam-admin-policy-attached"),
        ("AttachRolePolicy", "iam-admin-policy-attached"),
        ("CreateLoginProfile", "iam-login-profile-for-another-user"),
        ("UpdateLoginProfile", "iam-login-profile-for-another-user"),
        ("AddPermission20150331v2", "lambda-permission-public"),
        ("CreateTrustAnchor", "rolesanywhere-trust-anchor-created"),
        ("ConsoleLogin", "console-login-without-mfa"),
        ("EnableSerialConsoleAccess", "ec2-serial-console-enabled"),
        ("CreateRole", "iam-role-created-with-external-trust"),
        ("ModifyInstanceAttribute", "ec2-instance-user-data-changed"),
        ("GetFederationToken", "sts-federation-token-created"),  # answered by containing the user
    }
    for line in lines:
        for match in line["matches"]:
            assert match["mode"] in ("auto", "approve", "notify")
    # Malformed records are looked for among the calls some playbook names, as the Lambda
    # would see them: here, Panther's hand-written fixtures without an eventID. Among the
    # matches, Panther's key policy for everyone in two organizations: no organization is
    # trusted until the settings name it.
    # With StreamAlert's records, AWS's documentation examples and the false-remediation cases.
    assert "replay: 3808 events read, 138 matched, 59 skipped by guards, 13 malformed" in result.stderr
    assert "missing field 'eventID'" in result.stderr


def _stratus_ids(datasets):
    return {
        record["eventID"]
        for path in (datasets / "stratus-detonation-logs").glob("*.json")
        for record in json.loads(path.read_text())
    }


def test_replay_reports_malformed_records_of_the_calls_it_answers(tmp_path):
    broken = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "t"})
    del broken["eventID"]
    other = record("DescribeTrails", "cloudtrail.amazonaws.com")
    del other["eventID"]
    path = tmp_path / "trail.json"
    path.write_text(json.dumps({"Records": [other, broken, "not a record"]}))
    result = CliRunner().invoke(main, ["replay", str(path), "--format", "jsonl"])
    assert result.exit_code == 0
    assert f"malformed: {path} record 2: missing field 'eventID'" in result.stderr
    assert f"malformed: {path} record 3: expected a CloudTrail record object, got string" in result.stderr
    assert "replay: 3 events read, 0 matched, 0 skipped by guards, 2 malformed" in result.stderr


def test_replay_all_reports_guard_skips(datasets):
    result = CliRunner().invoke(main, ["replay", str(datasets), "--format", "jsonl", "--all"], catch_exceptions=False)
    skipped = [line for line in _jsonl(result.stdout) if "skipped" in line]
    assert {line["skipped"] for line in skipped} == {"failed-call", "duplicate", "quiet-finding"}  # a GuardDuty sample
    failed = [line for line in skipped if line["skipped"] == "failed-call"]
    assert failed and all("the call failed" in line["reason"] for line in failed)
    assert all(
        set(line) == {"eventID", "eventName", "eventSource", "eventTime", "account", "region", "skipped", "reason"}
        for line in skipped
    )


def test_replay_own_role_option(tmp_path):
    own = {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::123456789012:assumed-role/sec-bot/x",
        "accountId": "123456789012",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "sec-bot"}},
    }
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "t"}, userIdentity=own)))
    plain = CliRunner().invoke(main, ["replay", str(path), "--format", "jsonl", "--all"])
    mine = ["replay", str(path), "--format", "jsonl", "--all", "--own-role", "sec-bot"]
    unbound = CliRunner().invoke(main, mine)
    central = CliRunner().invoke(main, [*mine, "--central-account", "123456789012"])
    elsewhere = CliRunner().invoke(main, [*mine, "--central-account", "210987654321"])
    assert "matches" in _jsonl(plain.stdout)[0]
    # A function role is ours only in the central account: named, and the call made there.
    assert "matches" in _jsonl(unbound.stdout)[0]
    assert _jsonl(central.stdout)[0]["skipped"] == "own-identity"
    assert "matches" in _jsonl(elsewhere.stdout)[0]
    wrong = CliRunner().invoke(main, [*mine, "--central-account", "prod"])
    assert wrong.exit_code == 2 and "--central-account is 'prod'; expected a 12-digit AWS account id" in wrong.output


def test_replay_decides_with_the_organizations_lists(tmp_path, monkeypatch):
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::reports/*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
            }
        ],
    }
    path = tmp_path / "e.jsonl"
    path.write_text(
        json.dumps(record("PutBucketPolicy", "s3.amazonaws.com", {"bucketName": "reports", "bucketPolicy": policy}))
    )

    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("lists:\n  trusted_organizations: [o-a1b2c3d4e5]\n")

    def playbooks(*options):
        result = CliRunner().invoke(main, ["replay", str(path), "--format", "jsonl", *options])
        return result.exit_code, [match["playbook"] for line in _jsonl(result.stdout) for match in line["matches"]]

    assert playbooks() == (0, ["s3-bucket-policy-public"])
    assert playbooks("--trusted-organization", "o-a1b2c3d4e5") == (0, [])
    assert playbooks("--settings", str(settings_file)) == (0, [])
    monkeypatch.setenv("TRAILGUARD_SETTINGS_FILE", str(settings_file))  # as a deployed stage names its file
    assert playbooks() == (0, [])
    result = CliRunner().invoke(main, ["replay", str(path), "--trusted-account", "12345"])
    assert result.exit_code == 2
    assert "--trusted-account has '12345'; expected 12-digit AWS account ids, such as 111122223333" in result.stderr


def test_replay_table_has_rows_and_counts_per_playbook(datasets):
    result = CliRunner().invoke(main, ["replay", str(datasets)], catch_exceptions=False)
    out = result.stdout
    assert out.startswith("TIME")
    assert (
        "cloudtrail-stop-logging (auto): cloudtrail.start_logging(trail=stratus-red-team-ct-stop-trail-buykxbqejv)"
        in out
    )
    footer = out.split("matches per playbook:\n")[1].strip().splitlines()
    counts = dict(line.split() for line in footer if "e.g. " not in line)
    assert set(counts) == {path.stem for path in PLAYBOOKS.glob("*.yaml")}
    assert counts["cloudtrail-stop-logging"] == "3" and counts["s3-bucket-acl-public"] == "0"
    assert sum(int(count) for count in counts.values()) >= 64  # a record can match several playbooks


def test_schema_file_is_the_generated_schema(run):
    assert json.loads(run("schema").output) == json.loads((PLAYBOOKS / "playbook.schema.json").read_text())


def test_the_committed_validator_is_the_schema_compiled():
    """The Lambda checks playbooks with code generated from the schema once, not at each cold start."""
    from trailguard.generate.validator import VALIDATOR_FILE, validator_code

    assert VALIDATOR_FILE.read_text() == validator_code(), "stale: run python -m trailguard schema --write"


def test_the_settings_files_schema_and_validator_are_current(run):
    from trailguard.generate.validator import ORGANIZATION_VALIDATOR_FILE, organization_validator_code

    committed = json.loads((ROOT / "settings" / "settings.schema.json").read_text())
    assert json.loads(run("schema", "--settings").output) == committed, "stale: python -m trailguard schema --write"
    assert ORGANIZATION_VALIDATOR_FILE.read_text() == organization_validator_code(), "stale: schema --write"


def test_python_m_trailguard_runs():
    result = subprocess.run([sys.executable, "-m", "trailguard", "validate"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("ok: ")


def test_the_trailguard_command_works_from_any_directory(tmp_path, datasets):
    """`make` installs trailguard editable: its console script finds the bundled playbooks
    wherever it is run from, and says its version."""
    command = Path(sys.executable).with_name("trailguard")
    version = subprocess.run([command, "--version"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"trailguard, version {__version__}"
    stratus = datasets / "stratus-detonation-logs" / "aws.defense-evasion.cloudtrail-stop.json"
    replay = subprocess.run(
        [command, "replay", str(stratus), "--format", "jsonl"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    [line] = replay.stdout.splitlines()
    assert [match["playbook"] for match in json.loads(line)["matches"]] == ["cloudtrail-stop-logging"]


def test_bootstrap_creates_the_stage_table_and_integrity_key_once_and_says_what_next(aws, monkeypatch):
    import re

    import boto3

    # the checkout may hold a real deployment's record (.chalice/deployed/dev.json); this is a stage not deployed yet
    monkeypatch.setattr("trailguard.generate.deployment.deployed_rest_api_id", lambda stage: None)

    first = CliRunner().invoke(main, ["bootstrap", "--stage", "dev"])
    assert first.exit_code == 0, first.output
    token = "aws ssm put-parameter --overwrite --type SecureString --name /trailguard/dev/slack-bot-token --value VALUE"
    lines = first.output.splitlines()
    assert re.fullmatch(r"created integrity key [0-9a-f-]{36} \(alias/trailguard-dev-integrity, HMAC_256\)", lines[3])
    assert lines[:3] + lines[4:] == [
        "created table trailguard-dev",
        "turned on TTL (expiresAt) on trailguard-dev",
        "turned on point-in-time recovery on trailguard-dev",
        "created the SSM parameter /trailguard/dev/slack-bot-token (SecureString) with a placeholder",
        f"the Slack bot token (ssm:/trailguard/dev/slack-bot-token) is a placeholder; set it: {token}",
        "created the SSM parameter /trailguard/dev/slack-signing-secret (SecureString) with a placeholder",
        "the Slack signing secret (ssm:/trailguard/dev/slack-signing-secret) is a placeholder; set it: "
        + token.replace("slack-bot-token", "slack-signing-secret"),
        "API Gateway has no CloudWatch Logs role in this account and region, and the API's access logs need one; "
        "set it (once per account and region):",
        "  aws iam create-role --role-name apigateway-cloudwatch-logs --assume-role-policy-document "
        """'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},"""
        """"Action":"sts:AssumeRole"}]}'""",
        "  aws iam attach-role-policy --role-name apigateway-cloudwatch-logs "
        "--policy-arn arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
        "  aws apigateway update-account --patch-operations "
        "op=replace,path=/cloudwatchRoleArn,value=arn:aws:iam::123456789012:role/apigateway-cloudwatch-logs",
        "next: chalice deploy --stage dev, then bootstrap --stage dev again (dead-letter queues, alarms, the "
        "dashboard and the API's access logs)",
    ]
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/trailguard/dev/slack-bot-token", Value="xoxb-real", Type="SecureString", Overwrite=True)
    again = CliRunner().invoke(main, ["bootstrap", "--stage", "dev"])
    assert again.exit_code == 0 and again.output.startswith("table trailguard-dev is ready")
    assert "integrity key alias/trailguard-dev-integrity is ready (already existed, HMAC_256)" in again.output
    kms = boto3.client("kms")
    key = kms.describe_key(KeyId="alias/trailguard-dev-integrity")["KeyMetadata"]
    assert (key["KeySpec"], key["KeyUsage"], key["KeyState"]) == ("HMAC_256", "GENERATE_VERIFY_MAC", "Enabled")
    policy = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    [deny] = [statement for statement in policy["Statement"] if statement["Effect"] == "Deny"]
    assert deny["Action"] == "kms:GenerateMac"
    assert sorted(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]) == [
        f"arn:aws:iam::123456789012:role/trailguard-dev-{function}"
        for function in (
            "heartbeat",
            "posture_sweep",
            "respond_to_cloudtrail",
            "respond_to_cloudtrail_2",
            "respond_to_cloudtrail_3",
            "respond_to_cloudtrail_4",
            "respond_to_cloudtrail_5",
            "respond_to_cloudtrail_6",
            "slack_worker",
        )
    ]  # the rules' functions (API calls fill three patterns, GuardDuty, Security Hub and Insights one each), the sweep,
    # the heartbeat, the worker
    assert "the Slack bot token (ssm:/trailguard/dev/slack-bot-token) is set" in again.output
    # never overwritten
    assert (
        ssm.get_parameter(Name="/trailguard/dev/slack-bot-token", WithDecryption=True)["Parameter"]["Value"]
        == "xoxb-real"
    )
    assert boto3.client("dynamodb").describe_table(TableName="trailguard-dev")["Table"]["TableStatus"] == "ACTIVE"


def test_the_rest_api_is_the_one_chalice_deploy_recorded(tmp_path):
    from trailguard.generate.deployment import StageError, deployed_rest_api_id

    assert deployed_rest_api_id("dev", tmp_path) is None  # not deployed yet
    (tmp_path / "deployed").mkdir()
    record = {
        "resources": [
            {"name": "api_handler", "resource_type": "lambda_function", "lambda_arn": "arn:aws:lambda:::function:x"},
            {
                "name": "rest_api",
                "resource_type": "rest_api",
                "rest_api_id": "abc123",
                "rest_api_url": "https://x/api/",
            },
        ],
        "schema_version": "2.0",
        "backend": "api",
    }
    (tmp_path / "deployed" / "dev.json").write_text(json.dumps(record))
    assert deployed_rest_api_id("dev", tmp_path) == "abc123"
    (tmp_path / "deployed" / "dev.json").write_text("{")
    with pytest.raises(StageError, match=r"deployed/dev\.json"):
        deployed_rest_api_id("dev", tmp_path)


def test_bootstrap_refuses_an_unknown_stage_clearly():
    result = CliRunner().invoke(main, ["bootstrap", "--stage", "qa"])
    assert result.exit_code == 2 and "no stage 'qa' (stages: dev, prod)" in result.output


def test_incidents_lists_open_ones_and_shows_one_with_its_history(aws):
    import boto3

    from chalicelib.incidents.model import Incident, State
    from chalicelib.incidents.store import DynamoStore

    CliRunner().invoke(main, ["bootstrap", "--stage", "dev"])
    store = DynamoStore(boto3.client("dynamodb"), "trailguard-dev")
    incident = Incident(
        id="inc-1",
        playbook_id="cloudtrail-stop-logging",
        playbook_version=1,
        title="CloudTrail logging stopped",
        severity="critical",
        mode="approve",
        state=State.PROPOSED,
        event=EventSummary(
            {
                "eventID": "e1",
                "eventName": "StopLogging",
                "account": "123456789012",
                "region": "us-east-1",
                "actor": "IAMUser mallory",
                "eventTime": "t",
                "sourceIPAddress": "203.0.113.7",
            }
        ),
    )
    incident.record("trailguard", "open", "StopLogging by IAMUser mallory")
    incident.notification = {"channel": "C0ALERTS", "error": "Slack answered 503: fatal_error"}
    store.create(incident)
    listed = CliRunner().invoke(main, ["incidents", "--stage", "dev"])
    assert listed.exit_code == 0
    assert (
        "proposed" in listed.stdout and "inc-1" in listed.stdout and "StopLogging by IAMUser mallory" in listed.stdout
    )
    shown = CliRunner().invoke(main, ["incidents", "--stage", "dev", "inc-1"])
    assert "waiting for approval" in shown.output and "trailguard" in shown.output and "open" in shown.output
    assert (
        "Slack message C0ALERTS (not posted): waiting for delivery (last error: Slack answered 503: fatal_error)"
        in shown.output
    )
    missing = CliRunner().invoke(main, ["incidents", "--stage", "dev", "inc-2"])
    assert missing.exit_code == 1 and "no incident inc-2 in trailguard-dev" in missing.output


def test_incidents_reports_a_damaged_item_and_lists_the_others_and_marks_entries_not_kept(aws):
    import boto3

    from chalicelib.incidents.model import Incident, State
    from chalicelib.incidents.store import DynamoStore

    CliRunner().invoke(main, ["bootstrap", "--stage", "dev"])
    client = boto3.client("dynamodb")
    store = DynamoStore(client, "trailguard-dev")
    incident = Incident(
        id="inc-1",
        playbook_id="cloudtrail-stop-logging",
        playbook_version=1,
        title="CloudTrail logging stopped",
        severity="critical",
        mode="approve",
        state=State.PROPOSED,
        event=EventSummary(
            {
                "eventID": "e1",
                "eventName": "StopLogging",
                "account": "123456789012",
                "region": "us-east-1",
                "actor": "IAMUser mallory",
                "eventTime": "t",
                "sourceIPAddress": "203.0.113.7",
            }
        ),
    )
    for number in range(150):
        incident.record("slack:U1", "undo", f"attempt {number}")
    store.create(incident)
    client.put_item(
        TableName="trailguard-dev",
        Item={"pk": {"S": "inc-2"}, "openState": {"S": "proposed"}, "createdAt": {"S": "t"}, "body": {"S": "{"}},
    )
    listed = CliRunner().invoke(main, ["incidents", "--stage", "dev"])
    assert listed.exit_code == 0 and "inc-1" in listed.stdout
    assert "error: incident inc-2 cannot be read: Expecting property name" in listed.stderr
    damaged = CliRunner().invoke(main, ["incidents", "--stage", "dev", "inc-2"])
    assert damaged.exit_code == 1 and "error: incident inc-2 cannot be read" in damaged.output
    shown = CliRunner().invoke(main, ["incidents", "--stage", "dev", "inc-1"]).output.splitlines()
    marker = shown.index("  ... 50 entries in between not kept ...")
    assert shown[marker - 1].endswith("attempt 19") and shown[marker + 1].endswith("attempt 70")


def test_the_policy_reads_only_the_stages_slack_secrets_and_invokes_only_its_worker():
    import dataclasses

    from chalicelib.playbooks.catalog import Catalog
    from trailguard.generate.policy import lambda_policy

    settings = dataclasses.replace(
        Settings(),
        slack_token="ssm:/tg/prod/token",
        slack_signing_secret="secretsmanager:tg/prod/signing",
        slack_worker="tg-prod-slack_worker",
    )
    statements = {s["Sid"]: s for s in lambda_policy(Catalog.load([PLAYBOOKS]), settings)["Statement"]}
    assert statements["ReadSlackParameters"]["Action"] == "ssm:GetParameter"
    assert statements["ReadSlackParameters"]["Resource"] == ["arn:*:ssm:*:*:parameter/tg/prod/token"]
    assert statements["ReadSlackSecrets"]["Resource"] == ["arn:*:secretsmanager:*:*:secret:tg/prod/signing-??????"]
    assert statements["HandClicksToTheWorker"] == {
        "Sid": "HandClicksToTheWorker",
        "Effect": "Allow",
        "Action": "lambda:InvokeFunction",
        "Resource": "arn:*:lambda:*:*:function:tg-prod-slack_worker",
    }
    local = {s["Sid"] for s in lambda_policy(Catalog.load([PLAYBOOKS]), Settings(slack_token="xoxb-1"))["Statement"]}
    assert not local & {"ReadSlackParameters", "ReadSlackSecrets", "HandClicksToTheWorker"}


def test_incidents_render_as_ocsf_detection_findings_for_a_siem(aws):
    import boto3

    from chalicelib.incidents.model import State
    from chalicelib.incidents.store import DynamoStore
    from tests.outputs.conftest import sample

    CliRunner().invoke(main, ["bootstrap", "--stage", "dev"])
    incident = sample(State.FAILED, applied=False)
    DynamoStore(boto3.client("dynamodb"), "trailguard-dev").create(incident)
    listed = CliRunner().invoke(main, ["incidents", "--stage", "dev", "--ocsf"])
    [line] = listed.stdout.splitlines()
    finding = json.loads(line)
    assert (finding["class_uid"], finding["metadata"]["version"], finding["status"]) == (2004, "1.1.0", "In Progress")
    assert finding["finding_info"]["uid"] == f"trailguard/dev/{incident.id}"
    shown = CliRunner().invoke(main, ["incidents", "--stage", "dev", incident.id, "--ocsf"])
    assert json.loads(shown.stdout) == finding
