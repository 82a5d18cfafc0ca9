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

from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.guards import stage_roles
from chalicelib.respond.handler import eventbridge_rules
from chalicelib.settings import Settings
from tests.conftest import PLAYBOOKS, ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package") / "out"
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
    """The CLI, the demo, the local AWS and Slack and the generators stay out of the Lambda package."""
    names = zipfile.ZipFile(package / "deployment.zip").namelist()
    assert not [name for name in names if name.startswith(("trailguard/", "tests/", "bench/"))]
    assert "chalicelib/cli.py" not in names and "chalicelib/demo/__init__.py" not in names


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
    # the rules' handler, the sweep, the Slack route (the API's handler) and the click worker
    assert handlers == {"app.respond_to_cloudtrail", "app.posture_sweep", "app.app", "app.slack_worker"}
    assert all(
        fn["Properties"]["Runtime"] == f"python{sys.version_info[0]}.{sys.version_info[1]}" for fn in functions.values()
    )


def test_each_role_holds_its_committed_least_privilege_file(package):
    template = json.loads((package / "sam.json").read_text())
    roles = {name: res for name, res in template["Resources"].items() if res["Type"] == "AWS::IAM::Role"}
    acting = json.loads((ROOT / ".chalice" / "policy-dev.json").read_text())
    api = json.loads((ROOT / ".chalice" / "policy-dev-api.json").read_text())
    assert set(roles) == {"RespondToCloudtrailRole", "PostureSweepRole", "SlackWorkerRole", "ApiHandlerRole"}
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
        "trailguard-dev-respond_to_cloudtrail",
        "trailguard-dev-posture_sweep",
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
    assert reserved["PostureSweep"] == 1
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
