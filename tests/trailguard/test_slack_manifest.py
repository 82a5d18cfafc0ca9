"""The Slack app manifest of a stage validates against the shape of Slack's manifest schema,
asks only for the scopes trailguard's calls need, and points interactivity at the stage's
endpoint; what is missing is said clearly."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from trailguard.cli import main
from trailguard.generate.slack_manifest import ManifestError, endpoint_from_deployed, manifest

pytestmark = pytest.mark.unit

SCHEMA = json.loads((Path(__file__).parent / "slack-manifest.schema.json").read_text())
"""Written from Slack's manifest reference and the limits of the schema Slack publishes
(github.com/slackapi/manifest-schema): the parts an app like trailguard uses; unknown
members are refused, as Slack refuses them."""
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
ENDPOINT = "https://abc123defg.execute-api.us-east-1.amazonaws.com/api/"


def test_the_schema_is_itself_valid():
    jsonschema.Draft7Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("stage", ["dev", "prod", "a-rather-long-stage-name"])
def test_the_manifest_of_each_stage_validates(stage):
    assert list(VALIDATOR.iter_errors(manifest(stage, ENDPOINT))) == []


def test_interactivity_goes_to_the_apps_route_and_the_scopes_are_what_trailguard_calls():
    made = manifest("prod", ENDPOINT)
    assert made["settings"]["interactivity"] == {
        "is_enabled": True,
        "request_url": "https://abc123defg.execute-api.us-east-1.amazonaws.com/api/slack/interactions",
    }
    assert made["oauth_config"]["scopes"]["bot"] == ["chat:write"]  # no chat:write.public: invite the bot
    assert made["display_information"]["name"] == "trailguard"
    assert manifest("dev", ENDPOINT)["features"]["bot_user"]["display_name"] == "trailguard dev"
    grouped = manifest("prod", ENDPOINT, ["U0ALICE", "S0SECURITY"])
    assert grouped["oauth_config"]["scopes"]["bot"] == ["chat:write", "usergroups:read"]
    assert "settings" in made and "event_subscriptions" not in made["settings"]  # trailguard subscribes to nothing


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m["display_information"].update(name="x" * 36),
        lambda m: m["settings"]["interactivity"].update(request_url="http://insecure.example/slack"),
        lambda m: m["settings"]["interactivity"].pop("is_enabled"),
        lambda m: m["features"]["bot_user"].update(display_name=""),
        lambda m: m["oauth_config"]["scopes"].update(bot=["chat:write", "chat:write"]),
        lambda m: m.update(unknown_section={}),
        lambda m: m["display_information"].update(background_color="blue"),
    ],
)
def test_the_schema_refuses_what_slack_refuses(change):
    made = manifest("prod", ENDPOINT)
    change(made)
    assert list(VALIDATOR.iter_errors(made))


def test_bad_inputs_get_a_clear_answer():
    with pytest.raises(ManifestError, match="must be an https URL"):
        manifest("prod", "http://localhost:8000/")
    with pytest.raises(ManifestError, match="Slack takes 1 to 35"):
        manifest("prod", ENDPOINT, bot_name="trailguard for the whole organization, prod")


def test_the_endpoint_is_the_one_chalice_deploy_recorded(tmp_path):
    (tmp_path / "deployed").mkdir()
    record = {"resources": [{"name": "rest_api", "resource_type": "rest_api", "rest_api_url": ENDPOINT}]}
    (tmp_path / "deployed" / "prod.json").write_text(json.dumps(record))
    assert endpoint_from_deployed("prod", tmp_path) == ENDPOINT
    with pytest.raises(ManifestError, match="deploy the stage first, or give --endpoint-url"):
        endpoint_from_deployed("dev", tmp_path)


def test_the_command_prints_a_manifest_or_says_what_is_missing(monkeypatch, tmp_path):
    ok = CliRunner().invoke(main, ["slack-manifest", "--stage", "prod", "--endpoint-url", ENDPOINT])
    assert ok.exit_code == 0, ok.output
    assert list(VALIDATOR.iter_errors(json.loads(ok.stdout))) == []
    (tmp_path / "config.json").write_text((ROOT / ".chalice" / "config.json").read_text())  # no deployed/ beside it
    monkeypatch.setattr("trailguard.generate.deployment.CHALICE_DIR", tmp_path)
    missing = CliRunner().invoke(main, ["slack-manifest", "--stage", "prod"])
    assert missing.exit_code == 2 and "give --endpoint-url" in missing.output
