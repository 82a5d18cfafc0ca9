"""The `chalice deploy` path on moto: a stage as Chalice deploys it (its own client code makes
the rules and targets), then `ensure`: queues, targets, destinations, retention, alarms,
dashboard; a second run changes nothing; the next `chalice deploy` drops the targets'
dead-letter config, `drift` says so and `ensure` puts it back. And the table: point-in-time
recovery, as the merge template has it."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.conftest import ACCOUNT, REGION
from tests.trailguard.stage_on_moto import LAYOUT, chalice_deploys_the_rules, client, make_stage
from trailguard.bootstrap import ensure_table
from trailguard.generate.operations import RULE_RETRY, SCHEDULE_RETRY, AsyncInvokePolicy, OpsSettings, StageLayout
from trailguard.operations import BootstrapError, deployed, drift, ensure, ensure_async_config, ensure_log_retention

pytestmark = pytest.mark.integration


@pytest.fixture
def stage(aws) -> StageLayout:
    return make_stage()


def test_ensure_sets_up_what_the_merge_template_does(stage):
    done = ensure(boto3.client, stage)
    assert "created queue trailguard-dev-respond_to_cloudtrail-dlq" in done
    sqs, events, lambda_ = client("sqs"), client("events"), client("lambda")
    for function in stage.background_functions:
        url = sqs.get_queue_url(QueueName=stage.dead_letter_queue(function))["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["MessageRetentionPeriod"] == "1209600" and attributes["SqsManagedSseEnabled"] == "true"
        config = lambda_.get_function_event_invoke_config(FunctionName=stage.function_name(function))
        assert config["DestinationConfig"]["OnFailure"]["Destination"] == attributes["QueueArn"]
        policy = json.loads(attributes["Policy"])
        if function in stage.targeted_functions:
            [target] = events.list_targets_by_rule(Rule=stage.rule_name(function))["Targets"]
            assert target["Id"] == "1"  # Chalice's target, kept
            assert target["DeadLetterConfig"] == {"Arn": attributes["QueueArn"]}
            assert target["RetryPolicy"] == stage.retry_policy(function).to_api()
            [allow] = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
            assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == (
                f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{stage.rule_name(function)}"
            )
        else:
            assert [s["Effect"] for s in policy["Statement"]] == ["Deny", "Deny"]
        [only] = [s for s in policy["Statement"] if s["Sid"] == "OnlyTheRuleAndTheFunctionWrite"]
        role = f"arn:aws:iam::{ACCOUNT}:role/trailguard-dev-{function}"
        assert only["Effect"] == "Deny" and only["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == role
    assert (
        stage.retry_policy("posture_sweep") == SCHEDULE_RETRY
        and stage.retry_policy("respond_to_cloudtrail") == RULE_RETRY
    )
    groups = {g["logGroupName"]: g.get("retentionInDays") for g in client("logs").describe_log_groups()["logGroups"]}
    assert {stage.log_group(f): 365 for f in stage.all_functions}.items() <= groups.items()
    topic = client("sns").create_topic(Name="trailguard-dev-alarms")["TopicArn"]
    alarms = client("cloudwatch").describe_alarms(AlarmNamePrefix="trailguard-dev-")["MetricAlarms"]
    assert len(alarms) == 20 and all(a["AlarmActions"] == [topic] for a in alarms)
    assert json.loads(client("cloudwatch").get_dashboard(DashboardName="trailguard-dev")["DashboardBody"])["widgets"]
    assert drift(boto3.client, stage) == []


def test_a_second_run_changes_nothing(stage):
    ensure(boto3.client, stage)
    assert ensure(boto3.client, stage) == [
        "20 alarms notify arn:aws:sns:us-east-1:123456789012:trailguard-dev-alarms",
        "dashboard trailguard-dev is up to date",
    ]


def test_the_next_chalice_deploy_drops_the_dead_letter_config_drift_says_so_and_ensure_puts_it_back(stage):
    ensure(boto3.client, stage)
    chalice_deploys_the_rules()  # Chalice puts target "1" again, with its Arn only
    problems = drift(boto3.client, stage)
    assert "rule trailguard-dev-respond_to_cloudtrail-event target 1 has no dead-letter queue" in problems
    assert "rule trailguard-dev-posture_sweep-event target 1 has not the stage's retry policy" in problems
    repaired = ensure(boto3.client, stage)
    assert (
        "rule trailguard-dev-respond_to_cloudtrail-event: dead-letter queue and retry policy set on target 1"
        in repaired
    )
    assert drift(boto3.client, stage) == []


def test_drift_reports_log_groups_kept_forever_and_a_table_without_recovery(stage):
    client("dynamodb").update_continuous_backups(
        TableName="trailguard-dev", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    problems = drift(boto3.client, stage)
    assert "log group /aws/lambda/trailguard-dev-respond_to_cloudtrail keeps its lines forever" in problems
    assert "table trailguard-dev has no point-in-time recovery" in problems
    assert "function trailguard-dev-slack_worker has no on-failure destination" in problems


def test_the_table_gets_point_in_time_recovery_like_the_merge_templates(aws):
    dynamodb = client("dynamodb")
    assert ensure_table(dynamodb, "t-pitr")[-1] == "turned on point-in-time recovery on t-pitr"
    backups = dynamodb.describe_continuous_backups(TableName="t-pitr")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert ensure_table(dynamodb, "t-pitr") == []


def test_retention_is_set_on_a_group_lambda_made_without_it(stage):
    group = stage.log_group("respond_to_cloudtrail")
    assert ensure_log_retention(client("logs"), group, 30) == [f"log group {group} keeps 30 days"]
    assert ensure_log_retention(client("logs"), group, 30) == []


def test_before_chalice_deploy_bootstrap_says_what_to_do(aws):
    assert deployed(boto3.client, LAYOUT) is False
    with pytest.raises(BootstrapError, match="run chalice deploy --stage dev"):
        ensure(boto3.client, LAYOUT)


def test_an_existing_topic_is_notified_and_none_is_made(stage):
    topic = client("sns").create_topic(Name="security-pager")["TopicArn"]
    layout = StageLayout("dev", table="trailguard-dev", ops=OpsSettings(alarm_topic=topic))
    ensure(boto3.client, layout)
    assert [t["TopicArn"] for t in client("sns").list_topics()["Topics"]] == [topic]
    alarms = client("cloudwatch").describe_alarms(AlarmNamePrefix="trailguard-dev-")["MetricAlarms"]
    assert alarms and all(a["AlarmActions"] == [topic] for a in alarms)


def test_a_destination_iam_has_not_seen_yet_is_tried_again():
    """Lambda checks the role's permission when the config is put; IAM is eventually consistent."""

    class Lambda:
        class exceptions:  # botocore's shape
            class ResourceNotFoundException(Exception):
                pass

            class InvalidParameterValueException(Exception):
                pass

        puts = 0

        def get_function_event_invoke_config(self, FunctionName: str) -> dict:
            raise self.exceptions.ResourceNotFoundException()

        def put_function_event_invoke_config(self, **_: Any) -> dict:
            self.puts += 1
            if self.puts < 3:
                raise self.exceptions.InvalidParameterValueException(
                    "The function's execution role does not have permissions"
                )
            return {}

    fake, waits = Lambda(), []
    assert ensure_async_config(fake, "f", "arn:q", AsyncInvokePolicy(2, 3600), sleep=waits.append)
    assert fake.puts == 3 and waits == [2.0, 4.0]
