"""The real `chalice deploy` and `chalice delete`, against moto's server on 127.0.0.1.

The project is copied to a temporary folder (deploy writes `.chalice/deployed/`), the
Chalice CLI runs in its own process with the local AWS's endpoint and fake credentials,
and what it created is read back through boto3. moto's API Gateway import needs a
test-only shim (tests/trailguard/deploy_aws.py), which this test uses and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from chalicelib.events.synthetic import api_call_record
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.handler import eventbridge_rules
from tests.conftest import MALLORY, PLAYBOOKS, ROOT
from tests.trailguard.deploy_aws import deploy_aws
from trailguard.generate.deployment import function_name, role_name, stage_environment
from trailguard.local.aws import LocalAws

pytestmark = pytest.mark.e2e

STAGE = "dev"
RULE_FUNCTIONS = tuple(rule.name for rule in eventbridge_rules(Catalog.load([PLAYBOOKS])))
"""One function per EventBridge rule the playbooks need (two: their events outgrew one pattern)."""
FUNCTIONS = (*RULE_FUNCTIONS, "posture_sweep", "heartbeat", "slack_worker", "api_handler")


def _copy_project(to: Path) -> Path:
    for name in ("app.py", "requirements.txt"):
        shutil.copy(ROOT / name, to / name)
    for name in ("chalicelib", "trailguard", "playbooks", "settings"):
        shutil.copytree(ROOT / name, to / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "vendor", to / "vendor", symlinks=True)
    (to / ".chalice").mkdir()
    for path in (ROOT / ".chalice").glob("*.json"):
        shutil.copy(path, to / ".chalice" / path.name)
    return to


def _run(project: Path, local: LocalAws, *command: str) -> subprocess.CompletedProcess[str]:
    """A command in the project copy, against the local AWS only, for the stage."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(local.environment())
    return subprocess.run(
        [*command, "--stage", STAGE], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )


def _chalice(project: Path, local: LocalAws, *args: str) -> subprocess.CompletedProcess[str]:
    result = _run(project, local, str(Path(sys.executable).parent / "chalice"), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _bootstrap(project: Path, local: LocalAws) -> subprocess.CompletedProcess[str]:
    # `python -m` from the copy's folder runs the copy's tooling, which reads the copy's .chalice/deployed/
    return _run(project, local, sys.executable, "-m", "trailguard", "bootstrap")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Iterator[tuple[LocalAws, Path, str]]:
    project = _copy_project(tmp_path_factory.mktemp("project"))
    with deploy_aws() as local:
        result = _chalice(project, local, "deploy")
        yield local, project, result.stdout


@pytest.fixture(scope="module")
def rules() -> list[Any]:
    return eventbridge_rules(Catalog.load([PLAYBOOKS]))


def test_deploy_creates_the_functions_on_a_current_runtime_with_the_stage_settings(deployed):
    local, _, output = deployed
    functions = {f["FunctionName"]: f for f in local.client("lambda").list_functions()["Functions"]}
    assert set(functions) == {function_name(STAGE, name) for name in FUNCTIONS}
    for name in FUNCTIONS:
        function = functions[function_name(STAGE, name)]
        assert function["Runtime"] in ("python3.12", "python3.13", "python3.14"), function["Runtime"]
        assert function["Environment"]["Variables"] == stage_environment(STAGE)
        assert function["Role"].endswith(f":role/{role_name(STAGE, name)}")  # one role per function
    assert "Rest API URL: " in output


def test_each_function_role_holds_its_committed_policy(deployed):
    local, _, _ = deployed
    iam = local.client("iam")
    acting = json.loads((ROOT / ".chalice" / f"policy-{STAGE}.json").read_text())
    api = json.loads((ROOT / ".chalice" / f"policy-{STAGE}-api.json").read_text())
    for function in FUNCTIONS:
        role = role_name(STAGE, function)
        (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
        document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
        assert document == (api if function == "api_handler" else acting), role
    assert not any(s["Sid"].startswith("Remediate") for s in api["Statement"])


def test_each_function_runs_with_the_reserved_concurrency_the_config_gives_it(deployed):
    local, _, _ = deployed
    configured = json.loads((ROOT / ".chalice" / "config.json").read_text())["lambda_functions"]
    for name in FUNCTIONS:
        reserved = local.client("lambda").get_function_concurrency(FunctionName=function_name(STAGE, name))
        assert reserved["ReservedConcurrentExecutions"] == configured[name]["reserved_concurrency"], name


def test_bootstrap_after_deploy_turns_on_the_apis_access_logs(deployed):
    """Chalice cannot turn access logs on; bootstrap does, once the API exists, and says how
    to give API Gateway its account-wide CloudWatch Logs role when the account has none.
    (moto replaces a stage on every deployment, AWS keeps its settings: a redeploy is not
    checked here.)"""
    from trailguard.generate.access_logs import ACCESS_LOG_FORMAT, ACCESS_LOG_RETENTION_DAYS, LOGGING_ROLE

    local, project, _ = deployed
    apigateway = local.client("apigateway")
    refused = _bootstrap(project, local)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "API Gateway has no CloudWatch Logs role in this account and region" in refused.stderr
    assert "aws apigateway update-account --patch-operations op=replace,path=/cloudwatchRoleArn," in refused.stderr
    (api,) = apigateway.get_rest_apis()["items"]
    assert not apigateway.get_stage(restApiId=api["id"], stageName="api").get("accessLogSettings")

    # the commands the refusal gives, through boto3; moto holds AWS managed policies only when
    # told to load them all (MOTO_IAM_LOAD_MANAGED_POLICIES), so the role's policy is not attached here
    trust = {"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}
    role = local.client("iam").create_role(
        RoleName=LOGGING_ROLE, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
    )["Role"]["Arn"]
    apigateway.update_account(patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role}])

    first = _bootstrap(project, local)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"turned on the access logs of REST API {api['id']} stage api, to /trailguard/dev/api-access" in first.stdout
    assert "next: chalice deploy" not in first.stdout
    account = local.client("sts").get_caller_identity()["Account"]
    settings = apigateway.get_stage(restApiId=api["id"], stageName="api")["accessLogSettings"]
    assert settings == {
        "destinationArn": f"arn:aws:logs:us-east-1:{account}:log-group:/trailguard/dev/api-access",
        "format": ACCESS_LOG_FORMAT,
    }
    (group,) = local.client("logs").describe_log_groups(logGroupNamePrefix="/trailguard/dev/api-access")["logGroups"]
    assert group["retentionInDays"] == ACCESS_LOG_RETENTION_DAYS
    again = _bootstrap(project, local)
    assert again.returncode == 0 and "access logs of REST API" in again.stdout and "turned on" not in again.stdout


def test_rules_carry_the_generated_patterns_and_target_the_handler(deployed, rules):
    local, _, _ = deployed
    events = local.client("events")
    deployed_rules = {rule["Name"]: rule for rule in events.list_rules()["Rules"]}
    for rule in rules:
        name = function_name(STAGE, rule.name) + "-event"  # Chalice's name for a function's rule
        assert json.loads(deployed_rules[name]["EventPattern"]) == rule.pattern
        (target,) = events.list_targets_by_rule(Rule=name)["Targets"]
        assert target["Arn"].endswith(f":function:{function_name(STAGE, rule.name)}")  # the handler, per rule
    sweep = function_name(STAGE, "posture_sweep")
    assert deployed_rules[f"{sweep}-event"]["ScheduleExpression"] == "rate(15 minutes)"
    (target,) = events.list_targets_by_rule(Rule=f"{sweep}-event")["Targets"]
    assert target["Arn"].endswith(f":function:{sweep}")
    heartbeat = function_name(STAGE, "heartbeat")
    assert deployed_rules[f"{heartbeat}-event"]["ScheduleExpression"] == "rate(5 minutes)"


def test_a_sample_event_matches_each_deployed_pattern_and_a_failed_call_does_not(deployed, rules):
    local, _, _ = deployed
    events = local.client("events")
    for rule in rules:
        stored = json.loads(events.describe_rule(Name=function_name(STAGE, rule.name) + "-event")["EventPattern"])
        pattern = EventPattern.load(json.dumps(stored))
        if stored["detail-type"] != ["AWS API Call via CloudTrail"]:
            continue  # a detector's findings: tests/playbooks/test_catalog.py matches real ones
        selections = stored["detail"].get("$or", [stored["detail"]])
        for selection in selections:
            source, name = selection["eventSource"][0], selection["eventName"][0]
            detail = api_call_record(name, source, {}, identity=MALLORY, region="us-east-1")
            event = {
                "source": "aws." + source.split(".")[0],
                "detail-type": "AWS API Call via CloudTrail",
                "detail": detail,
                "account": detail["recipientAccountId"],
                "region": "us-east-1",
            }
            assert pattern.matches_event(event), (rule.name, source, name)
            failed = {**event, "detail": {**detail, "errorCode": "AccessDenied"}}
            assert not pattern.matches_event(failed), (rule.name, source, name)
        read = api_call_record("DescribeTrails", "cloudtrail.amazonaws.com", {}, identity=MALLORY, region="us-east-1")
        assert not pattern.matches_event(
            {"source": "aws.cloudtrail", "detail-type": "AWS API Call via CloudTrail", "detail": read}
        )


def test_the_slack_route_is_a_post_to_the_api_handler(deployed):
    # moto's API Gateway import is reached through the test-only shim in tests/trailguard/deploy_aws.py
    local, _, _ = deployed
    apigateway = local.client("apigateway")
    (api,) = apigateway.get_rest_apis()["items"]
    assert api["name"] == "trailguard"
    resources = {r["path"]: r for r in apigateway.get_resources(restApiId=api["id"])["items"]}
    route = resources["/slack/interactions"]
    assert set(route["resourceMethods"]) == {"POST"}
    integration = apigateway.get_integration(restApiId=api["id"], resourceId=route["id"], httpMethod="POST")
    assert function_name(STAGE, "api_handler") in integration["uri"]


def test_bootstrap_after_every_deploy_keeps_dead_letter_queues_on_the_rules_and_check_says_when_not(deployed):
    """Chalice puts each rule's target again on every deploy, without its dead-letter queue
    and retry policy: bootstrap puts them back, and `bootstrap --check` tells the gap."""
    local, project, _ = deployed
    first = _bootstrap(project, local)  # (the access-log test above ran it already: its first run made them)
    rule_functions = [rule.name for rule in eventbridge_rules(Catalog.load([PLAYBOOKS]))]
    # three per rule's function (errors, dead letters, events lost), seventeen for the rest of the stage
    alarms = 17 + 3 * len(rule_functions)
    assert f"{alarms} alarms notify" in first.stdout and "dashboard trailguard-dev is up to date" in first.stdout
    events, lambda_ = local.client("events"), local.client("lambda")
    for rule_function in rule_functions:
        (target,) = events.list_targets_by_rule(Rule=function_name(STAGE, rule_function) + "-event")["Targets"]
        dlq = f"trailguard-dev-{rule_function}-dlq"
        queue = local.client("sqs").get_queue_url(QueueName=dlq)["QueueUrl"]
        assert target["DeadLetterConfig"]["Arn"].endswith(f":{dlq}") and queue
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 3600}
    for name in (*rule_functions, "posture_sweep", "heartbeat", "slack_worker"):
        config = lambda_.get_function_event_invoke_config(FunctionName=function_name(STAGE, name))
        assert config["DestinationConfig"]["OnFailure"]["Destination"].endswith(f":trailguard-dev-{name}-dlq")
    checked = _run(project, local, sys.executable, "-m", "trailguard", "bootstrap", "--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    _chalice(project, local, "deploy")
    checked = _run(project, local, sys.executable, "-m", "trailguard", "bootstrap", "--check")
    again = _bootstrap(project, local)
    for rule_function in rule_functions:
        rule = function_name(STAGE, rule_function) + "-event"
        assert checked.returncode == 1 and f"rule {rule} target 1 has no dead-letter queue" in checked.stdout
        assert f"rule {rule}: dead-letter queue and retry policy set on target 1" in again.stdout
    assert _run(project, local, sys.executable, "-m", "trailguard", "bootstrap", "--check").returncode == 0


def test_redeploy_changes_nothing_and_delete_removes_everything(deployed):
    local, project, _ = deployed
    before = sorted(f["FunctionName"] for f in local.client("lambda").list_functions()["Functions"])
    _chalice(project, local, "deploy")
    assert sorted(f["FunctionName"] for f in local.client("lambda").list_functions()["Functions"]) == before
    _chalice(project, local, "delete")
    assert local.client("lambda").list_functions()["Functions"] == []
    remaining = [r["Name"] for r in local.client("events").list_rules()["Rules"] if r["Name"].startswith("trailguard-")]
    assert remaining == []
    roles = [
        r["RoleName"] for r in local.client("iam").list_roles()["Roles"] if r["RoleName"].startswith("trailguard-")
    ]
    assert roles == []
    assert local.client("apigateway").get_rest_apis()["items"] == []
