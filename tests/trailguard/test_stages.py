"""Any stage name works: a third stage (`staging`) gets its own worker, member role, table,
key, loop guard and policies, derived from its name, and a stage copied from another with
the other's names left in is refused before anything is generated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from chalicelib.events.record import CloudTrailEvent
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.guards import OwnIdentities, skip_reason, stage_roles
from chalicelib.settings import ConfigurationError, Settings
from chalicelib.stages import Stage, StageNameError
from tests.conftest import PLAYBOOKS, ROOT, record
from trailguard.cli import deployment_files, main
from trailguard.generate import deployment
from trailguard.generate.deployment import StageError, stage_settings

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load([PLAYBOOKS], with_tests=False)


@pytest.fixture
def chalice_dir(tmp_path) -> Path:
    """The project's .chalice/ with a third stage, `staging`, added as a person would: dev's
    entry copied, its Slack parameters renamed."""
    folder = tmp_path / ".chalice"
    shutil.copytree(ROOT / ".chalice", folder)
    config = json.loads((folder / "config.json").read_text())
    staging = json.loads(json.dumps(config["stages"]["dev"]).replace("/trailguard/dev/", "/trailguard/staging/"))
    staging["environment_variables"]["TRAILGUARD_STAGE"] = "staging"
    staging["iam_policy_file"] = "policy-staging.json"
    staging["lambda_functions"]["api_handler"]["iam_policy_file"] = "policy-staging-api.json"
    config["stages"]["staging"] = staging
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def test_a_function_knows_its_stage_from_its_name():
    assert Stage.of_function("trailguard-staging-respond_to_cloudtrail") == Stage("staging")
    assert Stage.of_function("trailguard-staging-respond_to_cloudtrail_2") == Stage("staging")
    assert Stage.of_function("trailguard-acme-prod-slack_worker") == Stage("acme-prod")
    assert Stage.of_function("trailguard-acme-prod") == Stage("acme-prod")  # the API's function
    assert Stage.of_function("my-function") is None and Stage.of_function(None) is None
    with pytest.raises(StageNameError, match="expected up to 20 letters"):
        Stage("a stage with spaces")


def test_every_name_of_a_third_stage_is_derived_from_its_name():
    settings = Settings.from_environment({"AWS_LAMBDA_FUNCTION_NAME": "trailguard-staging-posture_sweep"})
    assert settings.stage == "staging"
    assert (settings.table, settings.integrity_key) == ("trailguard-staging", "alias/trailguard-staging-integrity")
    assert (settings.member_role, settings.external_id) == ("trailguard-staging-remediator", "trailguard-staging")
    assert settings.slack_worker == "trailguard-staging-slack_worker"
    assert settings.switch_parameter == "/trailguard/staging/switch"
    # a variable still wins, and a stage told twice must be told the same
    assert Settings.from_environment({"TRAILGUARD_STAGE": "staging", "TRAILGUARD_TABLE": "t"}).table == "t"
    with pytest.raises(ConfigurationError, match="belongs to stage 'staging'"):
        Settings.from_environment(
            {"TRAILGUARD_STAGE": "dev", "AWS_LAMBDA_FUNCTION_NAME": "trailguard-staging-slack_worker"}
        )


def test_a_third_stages_loop_guard_covers_its_own_roles_and_not_devs(catalog):
    settings = Settings.from_environment({"AWS_LAMBDA_FUNCTION_NAME": "trailguard-staging-respond_to_cloudtrail"})
    own = OwnIdentities.of(settings, ACCOUNT, stage_roles(settings, catalog))

    def called_by(role: str) -> CloudTrailEvent:
        identity = {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:s",
            "accountId": ACCOUNT,
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/s",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}"}},
        }
        return CloudTrailEvent.from_record(
            record("StopLogging", "cloudtrail.amazonaws.com", {"name": "t"}, userIdentity=identity)
        )

    for function in ("respond_to_cloudtrail", "posture_sweep", "slack_worker", "api_handler"):
        skipped = skip_reason(called_by(f"trailguard-staging-{function}"), own)
        assert skipped is not None and skipped.code == "own-identity", function
    assert skip_reason(called_by("trailguard-dev-slack_worker"), own) is None  # another stage's role is not ours


def test_policy_write_on_a_third_stage_names_only_that_stage(chalice_dir, catalog, monkeypatch, tmp_path):
    monkeypatch.setattr(deployment, "CHALICE_DIR", chalice_dir)
    monkeypatch.setattr(deployment, "TEMPLATES_DIR", tmp_path / "deploy")
    result = CliRunner().invoke(main, ["policy", "--stage", "staging", "--write"])
    assert result.exit_code == 0, result.output
    written = {
        path.name: path.read_text() for path in [*chalice_dir.glob("*staging*"), *(tmp_path / "deploy").glob("*")]
    }
    assert set(written) == {
        "policy-staging.json",
        "policy-staging-api.json",
        "merge-staging.json",
        "member-staging.json",
        "central-bus-staging.json",
    }
    for name, text in written.items():
        assert "trailguard-dev" not in text and "/trailguard/dev/" not in text and "trailguard-prod" not in text, name
    acting = json.loads(written["policy-staging.json"])
    statements = {statement["Sid"]: statement for statement in acting["Statement"]}
    assert statements["Incidents"]["Resource"][0] == "arn:*:dynamodb:*:*:table/trailguard-staging"
    assert statements["SealIncidents"]["Condition"]["ForAnyValue:StringEquals"] == {
        "kms:ResourceAliases": "alias/trailguard-staging-integrity"
    }
    assert statements["AssumeMemberRole"]["Resource"] == "arn:*:iam::*:role/trailguard-staging-remediator"
    assert (
        statements["HandClicksToTheWorker"]["Resource"] == "arn:*:lambda:*:*:function:trailguard-staging-slack_worker"
    )
    assert "arn:*:iam::*:role/trailguard-staging-respond_to_cloudtrail" in statements["NeverChangeOwnRoles"]["Resource"]
    member = json.loads(written["member-staging.json"])
    assert member["Resources"]["MemberRole"]["Properties"]["RoleName"] == "trailguard-staging-remediator"
    merge = json.loads(written["merge-staging.json"])
    assert merge["Resources"]["SlackWorker"]["Properties"]["FunctionName"] == "trailguard-staging-slack_worker"
    # what the generated files say is what the stage's functions run with
    files = deployment_files("staging", stage_settings("staging", chalice_dir), catalog)
    assert {path.name for path in files} == set(written)


def test_a_stage_copied_with_another_stages_names_is_refused_naming_both(chalice_dir):
    config = json.loads((chalice_dir / "config.json").read_text())
    config["stages"]["staging"]["environment_variables"]["TRAILGUARD_SLACK_WORKER"] = "trailguard-dev-slack_worker"
    (chalice_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(StageError) as refused:
        stage_settings("staging", chalice_dir)
    assert "stage 'staging' sets TRAILGUARD_SLACK_WORKER=trailguard-dev-slack_worker" in str(refused.value)
    assert "names stage 'dev'" in str(refused.value)
    # the Slack parameters of dev, copied as they are, are another stage's too
    config["stages"]["staging"]["environment_variables"] = json.loads(json.dumps(config["stages"]["dev"]))[
        "environment_variables"
    ]
    (chalice_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(StageError, match="stage 'staging' sets TRAILGUARD_STAGE=dev"):
        stage_settings("staging", chalice_dir)
    config["stages"]["staging"]["environment_variables"]["TRAILGUARD_STAGE"] = "staging"
    (chalice_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(StageError, match="TRAILGUARD_SLACK_SIGNING_SECRET=ssm:/trailguard/dev/slack-signing-secret"):
        stage_settings("staging", chalice_dir)


def test_a_stage_whose_name_contains_anothers_is_not_taken_for_it():
    assert Stage("dev-eu").other_stage_named("trailguard-dev-eu-slack_worker", ["dev", "dev-eu"]) is None
    assert Stage("dev").other_stage_named("trailguard-dev-eu-slack_worker", ["dev", "dev-eu"]) == "dev-eu"
    assert Stage("dev2").other_stage_named("alias/trailguard-dev-integrity", ["dev", "dev2"]) == "dev"
