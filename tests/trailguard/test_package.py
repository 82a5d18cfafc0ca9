"""`chalice package` with the stage's merge template: the deployment package holds every
playbook, the rules are the catalog's, the table and the names are there, and cfn-lint
passes on it and on every other template trailguard generates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.events.finding import DETAIL_TYPES
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.guards import stage_roles
from chalicelib.respond.handler import eventbridge_rules
from chalicelib.settings import Settings
from tests.conftest import PLAYBOOKS, ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    from trailguard.bytecode import compile_package

    out = tmp_path_factory.mktemp("package") / "out"
    compile_package()  # the bytecode step before chalice package (trailguard/bytecode.py)
    chalice = Path(sys.executable).parent / "chalice"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    merge = ROOT / "deploy" / "merge-dev.json"
    result = subprocess.run(
        [str(chalice), "package", "--stage", "dev", "--merge-template", str(merge), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_zip_holds_the_app_the_library_and_every_playbook(package):
    names = set(zipfile.ZipFile(package / "deployment.zip").namelist())
    assert "app.py" in names and "chalicelib/runtime.py" in names and "chalicelib/actions/kms.py" in names
    playbooks = {f"playbooks/{p.name}" for p in PLAYBOOKS.glob("*.yaml")}
    assert len(playbooks) >= 4
    assert playbooks <= names
    assert {"yaml/__init__.py", "fastjsonschema/__init__.py", "jmespath/__init__.py", "slack_sdk/__init__.py"} <= names


def test_zip_holds_no_tooling(package):
    """The CLI, the demo, the local AWS and Slack and the generators stay out of the Lambda
    package, and so do the tooling's dependencies: DuckDB (replay's engine) and orjson."""
    names = zipfile.ZipFile(package / "deployment.zip").namelist()
    assert not [name for name in names if name.startswith(("trailguard/", "tests/", "bench/"))]
    assert "chalicelib/cli.py" not in names and "chalicelib/demo/__init__.py" not in names
    assert not [name for name in names if name.split("/")[0].lower().startswith(("duckdb", "_duckdb", "orjson"))]


def test_template_rules_are_the_catalogs_patterns(package):
    template = json.loads((package / "sam.json").read_text())
    functions = {name: res for name, res in template["Resources"].items() if res["Type"] == "AWS::Serverless::Function"}
    patterns = [
        event["Properties"]["Pattern"]
        for fn in functions.values()
        for event in fn["Properties"].get("Events", {}).values()
        if event["Type"] == "CloudWatchEvent"
    ]
    expected = [rule.pattern for rule in eventbridge_rules(Catalog.load([PLAYBOOKS]))]
    assert patterns == expected
    handlers = {fn["Properties"]["Handler"] for fn in functions.values()}
    # the rules' handler, the sweep, the heartbeat, the Slack route (the API's handler) and the click worker
    assert handlers == {
        "app.respond_to_cloudtrail",
        "app.posture_sweep",
        "app.heartbeat",
        "app.app",
        "app.slack_worker",
    }
    assert all(
        fn["Properties"]["Runtime"] == f"python{sys.version_info[0]}.{sys.version_info[1]}" for fn in functions.values()
    )


RULE_FUNCTIONS = [rule.name for rule in eventbridge_rules(Catalog.load([PLAYBOOKS]))]
"""The rules' functions: one per EventBridge rule the playbooks need (two: their events
outgrew one pattern)."""


def _role(function: str) -> str:
    """Chalice's name for a function's role in the template (`respond_to_cloudtrail_2` ->
    `RespondToCloudtrail2Role`)."""
    return "".join(part.capitalize() for part in function.split("_")) + "Role"


def test_each_role_holds_its_committed_least_privilege_file(package):
    template = json.loads((package / "sam.json").read_text())
    roles = {name: res for name, res in template["Resources"].items() if res["Type"] == "AWS::IAM::Role"}
    acting = json.loads((ROOT / ".chalice" / "policy-dev.json").read_text())
    api = json.loads((ROOT / ".chalice" / "policy-dev-api.json").read_text())
    assert set(roles) == {
        *(_role(f) for f in RULE_FUNCTIONS),
        "PostureSweepRole",
        "HeartbeatRole",
        "SlackWorkerRole",
        "ApiHandlerRole",
    }
    for name, role in roles.items():
        assert role["Properties"]["Policies"][0]["PolicyDocument"] == (api if name == "ApiHandlerRole" else acting)
    for statement in acting["Statement"] + api["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        assert not any(a == "*" or a.endswith(":*") for a in actions)
        if "iam:PassRole" in actions and statement["Effect"] == "Allow":  # passing only to the services named
            assert actions == ["iam:PassRole"] and "iam:PassedToService" in statement["Condition"]["StringEquals"]


def test_the_merge_template_adds_the_table_and_chalice_deploys_names(package):
    from chalicelib.incidents.store import table_definition

    resources = json.loads((package / "sam.json").read_text())["Resources"]
    table = resources["IncidentTable"]
    assert table["Type"] == "AWS::DynamoDB::Table" and table["DeletionPolicy"] == "Retain"
    assert {k: v for k, v in table["Properties"].items() if k in table_definition("x")} == table_definition(
        "trailguard-dev"
    )
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    names = {
        res["Properties"]["FunctionName"]: res["Properties"]["Environment"]["Variables"]
        for res in resources.values()
        if res["Type"] == "AWS::Serverless::Function"
    }
    # the worker the settings and the policy name is the one CloudFormation creates
    assert set(names) == {
        "trailguard-dev",
        *(f"trailguard-dev-{function}" for function in RULE_FUNCTIONS),
        "trailguard-dev-posture_sweep",
        "trailguard-dev-heartbeat",
        "trailguard-dev-slack_worker",
    }
    # each function derives its stage's names from its own name: the worker is the one created
    roles = {res["Properties"]["RoleName"] for res in resources.values() if res["Type"] == "AWS::IAM::Role"}
    catalog = Catalog.load([PLAYBOOKS], with_tests=False)
    for function, environment in names.items():
        settings = Settings.from_environment({**environment, "AWS_LAMBDA_FUNCTION_NAME": function})
        assert settings.stage == "dev" and settings.slack_worker == "trailguard-dev-slack_worker"
        assert roles <= set(stage_roles(settings, catalog))  # no role of trailguard's is ever answered


def test_cfn_lint_passes_on_the_package_and_every_generated_template(package):
    templates = [
        package / "sam.json",
        *sorted((ROOT / "deploy").glob("member-*.json")),
        *sorted((ROOT / "deploy").glob("central-bus-*.json")),
        *sorted((ROOT / "deploy").glob("event-destinations-*.json")),
    ]
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), *map(str, templates)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _functions(package: Path) -> dict[str, dict]:
    resources = json.loads((package / "sam.json").read_text())["Resources"]
    return {name: res["Properties"] for name, res in resources.items() if res["Type"] == "AWS::Serverless::Function"}


def test_every_function_has_a_reserved_concurrency_and_the_public_endpoint_a_small_one(package):
    """Reserved concurrency both guarantees and caps: a flood on the public URL (or of clicks)
    runs at most a few functions at once and cannot take the concurrency the rest of the
    account, or trailguard's handler, needs; the handler keeps its own capacity whatever
    else runs; one sweep at a time."""
    reserved = {name: props.get("ReservedConcurrentExecutions") for name, props in _functions(package).items()}
    assert all(isinstance(count, int) and count >= 1 for count in reserved.values()), reserved
    assert reserved["APIHandler"] <= 10 and reserved["SlackWorker"] <= 10
    assert reserved["RespondToCloudtrail"] > reserved["APIHandler"] + reserved["SlackWorker"]
    assert reserved["PostureSweep"] == 1 and reserved["Heartbeat"] == 1
    # Lambda keeps 100 of an account's concurrency unreserved: two stages fit in the default 1,000
    assert 2 * sum(reserved.values()) + 100 <= 1000


def test_the_merge_template_turns_on_access_logs_without_the_request_body(package):
    from trailguard.generate.access_logs import ACCESS_LOG_RETENTION_DAYS

    resources = json.loads((package / "sam.json").read_text())["Resources"]
    api = resources["RestAPI"]
    assert api["Type"] == "AWS::Serverless::Api"
    setting = api["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${ApiAccessLogs}"
    }
    group = resources["ApiAccessLogs"]
    assert group["Type"] == "AWS::Logs::LogGroup" and group["DeletionPolicy"] == "Retain"
    assert group["Properties"] == {
        "LogGroupName": "/trailguard/dev/api-access",
        "RetentionInDays": ACCESS_LOG_RETENTION_DAYS,
    }
    fields = json.loads(setting["Format"])  # one JSON object per line
    assert {"requestId", "sourceIp", "httpMethod", "status", "integrationRequestId"} <= set(fields)
    variables = list(fields.values())
    assert all(value.startswith("$context.") and " " not in value for value in variables), variables
    # the body is reachable only through $input; headers, the user agent, the raw path and
    # error messages carry text the caller chooses
    assert not any(
        value.startswith(("$input", "$context.requestOverride", "$context.responseOverride"))
        or value in ("$context.identity.userAgent", "$context.path", "$context.error.message")
        for value in variables
    ), variables
    # no execution logging with full request and response data either
    assert not any(settings.get("DataTraceEnabled") for settings in api["Properties"].get("MethodSettings", []))


# -- what keeps the stage observable and loses nothing (issue 21) -----------------------------


@pytest.fixture(scope="module")
def transformed(package) -> dict:
    """What CloudFormation runs after SAM's transform (samtranslator, as cfn-lint runs it)."""
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    class NoManagedPolicies(ManagedPolicyLoader):
        def __init__(self) -> None:
            pass

        def load(self) -> dict[str, str]:
            return {}

    template = json.loads((package / "sam.json").read_text())
    for function in _of_type(template, "AWS::Serverless::Function").values():  # as `cloudformation package` does
        function["Properties"]["CodeUri"] = "s3://trailguard-artifacts/deployment.zip"
    return dict(transform(template, {"AWS::Region": "us-east-1"}, NoManagedPolicies(), Parser()))


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _cfn(name: str) -> str:
    from chalice.utils import to_cfn_resource_name

    return str(to_cfn_resource_name(name))


RULE_FUNCTIONS = [rule.name for rule in eventbridge_rules(Catalog.load([PLAYBOOKS]))]
"""The functions behind the CloudTrail rules: more than one when the playbooks' patterns
outgrow EventBridge's 2,048 characters (`catalog.eventbridge_rules`)."""
BACKGROUND = {
    **{_cfn(function): function for function in RULE_FUNCTIONS},
    "PostureSweep": "posture_sweep",
    "Heartbeat": "heartbeat",
    "SlackWorker": "slack_worker",
}


def test_every_rule_is_named_as_chalice_deploy_names_it_with_a_dead_letter_queue_and_a_retry_policy(transformed):
    """SAM names a CloudWatchEvent's rule from `RuleName` but a Schedule's from `Name`; both
    pass DeadLetterConfig and RetryPolicy on to the target."""
    rules = {r["Properties"]["Name"]: r["Properties"] for r in _of_type(transformed, "AWS::Events::Rule").values()}
    assert len(RULE_FUNCTIONS) >= 2  # the bundled playbooks need two patterns today
    assert set(rules) == {f"trailguard-dev-{f}-event" for f in [*RULE_FUNCTIONS, "posture_sweep", "heartbeat"]}
    for name, queue, retry in (
        *((f"trailguard-dev-{f}-event", f"{_cfn(f)}DeadLetterQueue", (185, 3600)) for f in RULE_FUNCTIONS),
        ("trailguard-dev-posture_sweep-event", "PostureSweepDeadLetterQueue", (3, 600)),
        ("trailguard-dev-heartbeat-event", "HeartbeatDeadLetterQueue", (3, 600)),
    ):
        [target] = rules[name]["Targets"]
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue, "Arn"]}}
        policy = target["RetryPolicy"]
        assert (policy["MaximumRetryAttempts"], policy["MaximumEventAgeInSeconds"]) == retry
    for function in RULE_FUNCTIONS:
        pattern = rules[f"trailguard-dev-{function}-event"]["EventPattern"]
        # Chalice's pattern survived the merge: API calls, or a detector's findings
        assert pattern["detail-type"][0] in ("AWS API Call via CloudTrail", *DETAIL_TYPES)


def test_each_dead_letter_queue_lets_in_only_its_own_rule(transformed):
    queues = _of_type(transformed, "AWS::SQS::Queue")
    assert {q["Properties"]["QueueName"] for q in queues.values()} == {
        f"trailguard-dev-{function}-dlq" for function in BACKGROUND.values()
    }
    assert all(q["Properties"]["MessageRetentionPeriod"] == 1_209_600 for q in queues.values())
    policies = _of_type(transformed, "AWS::SQS::QueuePolicy")
    handler = policies["RespondToCloudtrailDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
    [allow] = [s for s in handler["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"].endswith(
        ":rule/trailguard-dev-respond_to_cloudtrail-event"
    )
    [only] = [s for s in handler["Statement"] if s["Sid"] == "OnlyTheRuleAndTheFunctionWrite"]
    # redrive hands what is in the queue to the function: nobody else may write there, whatever IAM allows
    assert (only["Effect"], only["Principal"], only["Action"]) == ("Deny", "*", "sqs:SendMessage")
    assert only["Condition"]["ArnNotEquals"] == {
        "aws:PrincipalArn": {"Fn::GetAtt": ["RespondToCloudtrailRole", "Arn"]},
        "aws:SourceArn": allow["Condition"]["ArnEquals"]["aws:SourceArn"],
    }
    worker = policies["SlackWorkerDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
    assert [s["Effect"] for s in worker["Statement"]] == [
        "Deny",
        "Deny",
    ]  # Lambda sends with the role, EventBridge never
    [only] = [s for s in worker["Statement"] if s["Sid"] == "OnlyTheRuleAndTheFunctionWrite"]
    assert only["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["SlackWorkerRole", "Arn"]}}}


def test_every_background_function_sends_what_fails_every_retry_to_its_queue(transformed):
    """The rule's dead-letter queue catches only what EventBridge could not hand to Lambda:
    a function that fails every attempt is caught by Lambda's on-failure destination."""
    configs = {
        c["Properties"]["FunctionName"]["Ref"]: c["Properties"]
        for c in _of_type(transformed, "AWS::Lambda::EventInvokeConfig").values()
    }
    assert set(configs) == set(BACKGROUND)
    for function, config in configs.items():
        assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": [f"{function}DeadLetterQueue", "Arn"]
        }
    acting = json.loads((ROOT / ".chalice" / "policy-dev.json").read_text())
    [send] = [s for s in acting["Statement"] if s["Action"] == "sqs:SendMessage"]
    assert sorted(send["Resource"]) == sorted(f"arn:*:sqs:*:*:trailguard-dev-{f}-dlq" for f in BACKGROUND.values())
    api = json.loads((ROOT / ".chalice" / "policy-dev-api.json").read_text())
    assert not [s for s in api["Statement"] if "sqs:" in json.dumps(s["Action"])]


def test_every_function_has_a_log_group_with_retention_made_before_it(transformed):
    groups = {g["Properties"]["LogGroupName"]: g for g in _of_type(transformed, "AWS::Logs::LogGroup").values()}
    functions = _of_type(transformed, "AWS::Lambda::Function")
    for function in functions.values():
        group = groups[f"/aws/lambda/{function['Properties']['FunctionName']}"]
        assert group["Properties"]["RetentionInDays"] == 365 and group["DeletionPolicy"] == "Retain"
        assert any(dependency.endswith("LogGroup") for dependency in function["DependsOn"])
    assert all(group["Properties"].get("RetentionInDays") for group in groups.values())  # the access logs' too


def test_the_table_keeps_point_in_time_recovery(transformed):
    table = transformed["Resources"]["IncidentTable"]["Properties"]
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_alarms_cover_what_operators_must_hear_of_and_notify_the_topic(transformed):
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"] for a in _of_type(transformed, "AWS::CloudWatch::Alarm").values()
    }
    wanted = {
        "trailguard-dev-remediation-failed",
        "trailguard-dev-slack-undelivered",
        "trailguard-dev-time-to-remediate-p99",
        "trailguard-dev-outputs-failed",
        "trailguard-dev-events-rejected",
        "trailguard-dev-posture_sweep-not-running",
        "trailguard-dev-heartbeat-not-running",
        "trailguard-dev-heartbeat-gap",
        *(f"trailguard-dev-{f}-dead-letters" for f in BACKGROUND.values()),
        *(f"trailguard-dev-{f}-errors" for f in [*BACKGROUND.values(), "api_handler"]),
        *(f"trailguard-dev-{f}-events-lost" for f in [*RULE_FUNCTIONS, "posture_sweep", "heartbeat"]),
    }
    assert set(alarms) == wanted
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] == a["OKActions"] for a in alarms.values())
    assert alarms["trailguard-dev-slack-undelivered"]["Threshold"] == 30 * 60
    ttr = alarms["trailguard-dev-time-to-remediate-p99"]
    assert (ttr["ExtendedStatistic"], ttr["Threshold"]) == ("p99", 120)
    dlq = alarms["trailguard-dev-respond_to_cloudtrail-dead-letters"]
    assert (dlq["MetricName"], dlq["ComparisonOperator"], dlq["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        "GreaterThanThreshold",
        0,
    )
    assert alarms["trailguard-dev-posture_sweep-not-running"]["TreatMissingData"] == "breaching"


def test_the_dashboard_shows_the_headline_figures_per_playbook_and_per_account(transformed):
    [dashboard] = _of_type(transformed, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(dashboard["Properties"]["DashboardBody"]["Fn::Sub"].replace("${AWS::Region}", "eu-west-1"))
    text = json.dumps(body)
    assert "TimeToRemediate" in text and '"p99"' in text and "Stage,Playbook" in text
    logs = [w["properties"]["query"] for w in body["widgets"] if w["type"] == "log"]
    assert logs and all("SOURCE '/aws/lambda/trailguard-dev-respond_to_cloudtrail'" in q for q in logs)
    assert any("by account" in q for q in logs)


def test_cfn_lint_would_catch_a_broken_fragment(package, tmp_path):
    """The lint of the merged package is not vacuous: a queue with an unknown property fails it."""
    broken = json.loads((package / "sam.json").read_text())
    broken["Resources"]["SlackWorkerDeadLetterQueue"]["Properties"]["MessageRetention"] = 5
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    assert subprocess.run([str(cfn_lint), str(path)], capture_output=True, timeout=300).returncode != 0


def test_the_slack_endpoint_has_the_memory_its_three_seconds_need_and_ships_its_bytecode(package):
    """Lambda's CPU grows with memory (one vCPU at 1,769 MB): at 256 MB a cold first click
    was estimated at 2.3-2.6 s of Slack's 3 s; 1,024 MB gives it four times the CPU. The
    other functions keep 256 MB. The zip holds app.py's bytecode beside it (trailguard.bytecode)."""
    import zipfile

    resources = json.loads((package / "sam.json").read_text())["Resources"]
    memory = {
        res["Properties"]["Handler"]: res["Properties"]["MemorySize"]
        for res in resources.values()
        if res["Type"] == "AWS::Serverless::Function"
    }
    assert memory.pop("app.app") == 1024
    assert set(memory.values()) == {256}
    with zipfile.ZipFile(package / "deployment.zip") as zipped:
        names = set(zipped.namelist())
    assert f"__pycache__/app.{sys.implementation.cache_tag}.pyc" in names
    assert f"chalicelib/playbooks/__pycache__/catalog.{sys.implementation.cache_tag}.pyc" in names
    assert f"chalicelib/playbooks/__pycache__/playbooks.{sys.implementation.cache_tag}.bin" in names  # precompiled
