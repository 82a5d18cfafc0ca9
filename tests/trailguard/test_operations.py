"""The generated operations resources and permissions: what tells other tools is granted to the
acting roles only, and only when the stage turns it on, narrowed; the public endpoint gets
none of it; a member account imports only its own findings; the operational settings are
checked; an existing alarm topic replaces the stage's own."""

from __future__ import annotations

import json

import pytest

from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.handler import eventbridge_rules
from tests.conftest import PLAYBOOKS, ROOT
from trailguard.generate.deployment import chalice_config, stage_environment, stage_settings
from trailguard.generate.operations import OpsSettings, StageLayout
from trailguard.generate.policy import api_policy
from trailguard.generate.templates import operations_fragment

pytestmark = pytest.mark.integration


def _statements(path: str) -> list[dict]:
    return list(json.loads((ROOT / path).read_text())["Statement"])


def _granted(statements: list[dict], prefix: str) -> dict[str, object]:
    found = {}
    for statement in statements:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        for action in actions:
            if action.startswith(prefix) and statement["Effect"] == "Allow":
                found[action] = statement["Resource"]
    return found


def test_each_stage_names_itself():
    """The stage is every metric's `Stage` and part of every finding's id: a copy-pasted stage
    would publish under another's name."""
    for stage in chalice_config()["stages"]:
        assert stage_settings(stage).stage == stage


def test_outputs_are_granted_to_the_acting_roles_only_when_the_stage_turns_them_on():
    dev, prod = _statements(".chalice/policy-dev.json"), _statements(".chalice/policy-prod.json")
    assert not stage_settings("dev").security_hub and stage_settings("dev").events_out is None
    assert _granted(dev, "events:") == {} and _granted(dev, "securityhub:") == {}
    assert stage_settings("prod").security_hub and stage_settings("prod").events_out == "default"
    assert _granted(prod, "events:") == {"events:PutEvents": "arn:*:events:*:*:event-bus/default"}
    assert _granted(prod, "securityhub:") == {
        "securityhub:BatchImportFindings": "arn:*:securityhub:*:*:product/*/default",  # the account's own product
        "securityhub:BatchUpdateFindings": "arn:*:securityhub:*:*:hub/default",
    }


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_public_endpoint_may_tell_nobody(stage):
    """Clicks are claimed by the endpoint, but told by the worker: the endpoint's role gets no
    permission to put events, import findings, send to a queue or assume a member role."""
    statements = _statements(f".chalice/policy-{stage}-api.json")
    assert statements == api_policy(stage_settings(stage))["Statement"]
    for prefix in ("events:", "securityhub:", "sqs:", "sts:", "kms:"):
        assert _granted(statements, prefix) == {}, prefix


def test_a_member_account_may_import_and_update_only_its_own_findings_and_only_when_on():
    def member_policy(stage: str) -> list[dict]:
        template = json.loads((ROOT / "deploy" / f"member-{stage}.json").read_text())
        return list(template["Resources"]["MemberRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"])

    assert _granted(member_policy("dev"), "securityhub:") == {}
    assert _granted(member_policy("prod"), "securityhub:") == {
        "securityhub:BatchImportFindings": "arn:*:securityhub:*:*:product/*/default",
        "securityhub:BatchUpdateFindings": "arn:*:securityhub:*:*:hub/default",
    }
    assert _granted(member_policy("prod"), "events:") == {}  # events go on the central bus only


def test_events_on_a_named_bus_are_granted_on_that_bus_only():
    from dataclasses import replace

    from trailguard.generate.policy import output_statements

    arn = "arn:aws:events:us-east-1:111122223333:event-bus/security"
    [put] = output_statements(replace(stage_settings("dev"), events_out=arn))
    assert (put["Action"], put["Resource"]) == ("events:PutEvents", arn)
    [put] = output_statements(replace(stage_settings("dev"), events_out="security"))
    assert put["Resource"] == "arn:*:events:*:*:event-bus/security"


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("TRAILGUARD_LOG_RETENTION_DAYS", "100", "CloudWatch Logs keeps logs one of 1, 3, 5"),
        ("TRAILGUARD_LOG_RETENTION_DAYS", "a year", "expected a whole number of at least 1"),
        ("TRAILGUARD_ALARM_TOPIC", "security-team", "expected an SNS topic ARN"),
        ("TRAILGUARD_ALARM_UNDELIVERED_MINUTES", "0", "expected a whole number of at least 1"),
    ],
)
def test_bad_operational_settings_are_refused_clearly(name, value, message):
    with pytest.raises(ValueError, match=f"{name}.*{message}|{message}"):
        OpsSettings.from_environment({name: value})


def test_an_existing_alarm_topic_replaces_the_stages_own_and_thresholds_come_from_the_stage():
    topic = "arn:aws:sns:us-east-1:111122223333:security-pager"
    environment = {
        **stage_environment("dev"),
        "TRAILGUARD_ALARM_TOPIC": topic,
        "TRAILGUARD_LOG_RETENTION_DAYS": "90",
        "TRAILGUARD_ALARM_UNDELIVERED_MINUTES": "10",
    }
    rules = [rule.name for rule in eventbridge_rules(Catalog.load([PLAYBOOKS]))]
    layout = StageLayout.of("dev", stage_settings("dev"), rules, environment)
    resources = operations_fragment(layout)["Resources"]
    assert "AlarmTopic" not in resources
    alarms = [r["Properties"] for r in resources.values() if r.get("Type") == "AWS::CloudWatch::Alarm"]
    assert alarms and all(a["AlarmActions"] == [topic] for a in alarms)
    [undelivered] = [a for a in alarms if a["AlarmName"] == "trailguard-dev-slack-undelivered"]
    assert undelivered["Threshold"] == 600
    groups = [r["Properties"] for r in resources.values() if r.get("Type") == "AWS::Logs::LogGroup"]
    assert {g["RetentionInDays"] for g in groups} == {90}


def test_a_stage_whose_playbooks_need_two_rules_gets_a_queue_alarm_and_retry_policy_for_each():
    layout = StageLayout("dev", ("respond_to_cloudtrail", "respond_to_cloudtrail_2"))
    fragment = operations_fragment(layout)["Resources"]
    assert {"RespondToCloudtrailDeadLetterQueue", "RespondToCloudtrail2DeadLetterQueue"} <= set(fragment)
    second = fragment["RespondToCloudtrail2"]["Properties"]["Events"]["RespondToCloudtrail2Event"]["Properties"]
    assert second["RuleName"] == "trailguard-dev-respond_to_cloudtrail_2-event" and second["RetryPolicy"]
    alarms = {r["Properties"]["AlarmName"] for r in fragment.values() if r.get("Type") == "AWS::CloudWatch::Alarm"}
    assert "trailguard-dev-respond_to_cloudtrail_2-dead-letters" in alarms
