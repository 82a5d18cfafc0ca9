"""The audit chain: which buckets, keys, log groups and roles the trails depend on, remembered
from the trails trailguard saw, and the playbooks that answer a change to one of them (moto)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from chalice.test import Client

import app as chalice_app
from chalicelib.actions import registered_actions
from chalicelib.actions.base import ActionContext
from chalicelib.incidents.model import State
from chalicelib.memory import chain, trails
from chalicelib.named_lists import TRAIL_BUCKETS, TRAIL_KEYS, TRAIL_LOG_GROUPS, NamedLists
from tests.conftest import ACCOUNT, REGION, TABLE, envelope, record, remembering

pytestmark = pytest.mark.integration

TRAIL_ARN = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/org-trail"


def _trail(with_key: bool = True) -> str | None:
    """A trail with its bucket (CloudTrail's documented policy), key and log group; its key ARN."""
    s3, kms, logs = (boto3.client(s, region_name=REGION) for s in ("s3", "kms", "logs"))
    s3.create_bucket(Bucket="org-trail-logs")
    s3.put_bucket_policy(
        Bucket="org-trail-logs",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AWSCloudTrailAclCheck",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudtrail.amazonaws.com"},
                        "Action": "s3:GetBucketAcl",
                        "Resource": "arn:aws:s3:::org-trail-logs",
                    },
                    {
                        "Sid": "AWSCloudTrailWrite",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudtrail.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": "arn:aws:s3:::org-trail-logs/AWSLogs/*",
                    },
                ],
            }
        ),
    )
    key = kms.create_key()["KeyMetadata"]["Arn"] if with_key else None
    logs.create_log_group(logGroupName="org-trail")
    group = logs.describe_log_groups(logGroupNamePrefix="org-trail")["logGroups"][0]["arn"]
    boto3.client("cloudtrail", region_name=REGION).create_trail(
        Name="org-trail",
        S3BucketName="org-trail-logs",
        CloudWatchLogsLogGroupArn=group,
        CloudWatchLogsRoleArn=f"arn:aws:iam::{ACCOUNT}:role/CloudTrail_CloudWatchLogs_Role",
        **({"KmsKeyId": key} if key else {}),
    )
    return key


def test_remembering_a_trail_remembers_its_links_and_the_trails_that_use_them(aws):
    key = _trail()
    memory = remembering()
    trails.remember(memory, boto3.client("cloudtrail", region_name=REGION), "org-trail", ACCOUNT, REGION)
    links = chain.recalled(memory)
    assert links[TRAIL_BUCKETS] == {"org-trail-logs": [TRAIL_ARN]}
    assert links[TRAIL_KEYS] == {key: [TRAIL_ARN]}
    assert links[TRAIL_LOG_GROUPS] == {f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:org-trail": [TRAIL_ARN]}
    lists = chain.with_remembered_links(NamedLists.of({TRAIL_BUCKETS: ["named-in-settings"]}), memory)
    assert lists.get(TRAIL_BUCKETS) == ["named-in-settings", "org-trail-logs"]


def test_a_trail_moved_to_another_bucket_keeps_the_old_one_guarded(aws):
    _trail(with_key=False)
    memory = remembering()
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    trails.remember(memory, cloudtrail, "org-trail", ACCOUNT, REGION)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="elsewhere")
    cloudtrail.update_trail(Name="org-trail", S3BucketName="elsewhere")
    trails.remember(memory, cloudtrail, "org-trail", ACCOUNT, REGION)  # unjudged: memory keeps the old bucket
    assert "org-trail-logs" in chain.recalled(memory)[TRAIL_BUCKETS]


@pytest.fixture
def stage(dynamo_store, integrity_key, restart):
    runtime = restart(table=TABLE, integrity_key=integrity_key, sweep_regions=frozenset({REGION}))
    with Client(chalice_app.app) as client:
        yield runtime, client


def _deliver(client, detail):
    return client.lambda_.invoke("respond_to_cloudtrail", envelope(detail)).payload


def test_the_policy_of_a_trails_bucket_deleted_is_given_back_to_cloudtrail_and_undone(stage):
    runtime, client = stage
    _trail(with_key=False)
    s3 = boto3.client("s3", region_name=REGION)
    trails.remember(runtime.memory, boto3.client("cloudtrail", region_name=REGION), "org-trail", ACCOUNT, REGION)
    s3.delete_bucket_policy(Bucket="org-trail-logs")

    answer = _deliver(client, record("DeleteBucketPolicy", "s3.amazonaws.com", {"bucketName": "org-trail-logs"}))

    incident = runtime.incidents.get(answer["incidents"][0]["id"])
    assert (incident.playbook_id, incident.state) == ("s3-trail-bucket-policy-changed", State.REMEDIATED)
    policy = json.loads(s3.get_bucket_policy(Bucket="org-trail-logs")["Policy"])
    write = next(s for s in policy["Statement"] if s["Sid"] == "AWSCloudTrailWrite")
    assert write["Condition"]["StringEquals"]["aws:SourceArn"] == [TRAIL_ARN]  # narrowed to the trail that writes
    runtime.incidents.undo(incident.id, "U0ONCALL")
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket="org-trail-logs")


def test_the_policy_of_a_bucket_no_trail_writes_to_is_left_alone(stage):
    runtime, client = stage
    _trail(with_key=False)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="website-assets")
    trails.remember(runtime.memory, boto3.client("cloudtrail", region_name=REGION), "org-trail", ACCOUNT, REGION)

    answer = _deliver(client, record("DeleteBucketPolicy", "s3.amazonaws.com", {"bucketName": "website-assets"}))

    assert answer["incidents"] == []
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket="website-assets")


def test_a_trails_key_policy_without_cloudtrail_is_given_back_narrowed_to_its_trail(stage):
    runtime, client = stage
    key = _trail()
    kms = boto3.client("kms", region_name=REGION)
    trails.remember(runtime.memory, boto3.client("cloudtrail", region_name=REGION), "org-trail", ACCOUNT, REGION)
    bare = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(bare))
    request = {"keyId": key, "policyName": "default", "policy": json.dumps(bare)}
    resources = [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key}]

    answer = _deliver(client, record("PutKeyPolicy", "kms.amazonaws.com", request, resources=resources))

    incident = runtime.incidents.get(answer["incidents"][0]["id"])
    assert (incident.playbook_id, incident.state) == ("kms-trail-key-policy-changed", State.REMEDIATED)
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    added = policy["Statement"][-1]
    assert added["Principal"] == {"Service": "cloudtrail.amazonaws.com"} and added["Action"] == "kms:GenerateDataKey*"
    assert added["Condition"]["StringEquals"]["aws:SourceArn"] == [TRAIL_ARN]
    assert policy["Statement"][0] == bare["Statement"][0]


def test_a_trails_log_group_deleted_is_created_again(stage):
    runtime, client = stage
    _trail(with_key=False)
    logs = boto3.client("logs", region_name=REGION)
    trails.remember(runtime.memory, boto3.client("cloudtrail", region_name=REGION), "org-trail", ACCOUNT, REGION)
    logs.delete_log_group(logGroupName="org-trail")

    answer = _deliver(client, record("DeleteLogGroup", "logs.amazonaws.com", {"logGroupName": "org-trail"}))

    incident = runtime.incidents.get(answer["incidents"][0]["id"])
    assert (incident.playbook_id, incident.state) == ("logs-trail-log-group-deleted", State.REMEDIATED)
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == ["org-trail"]


def test_insights_are_put_back_with_every_kind_and_undo_puts_back_the_selectors_from_before():
    """moto appends Insights selectors instead of replacing them: the calls are checked instead."""
    client = boto3.client("cloudtrail", region_name=REGION)
    action = registered_actions()["cloudtrail.restore_insight_selectors"](
        client, {"trail": "org-trail", "types": ["ApiCallRateInsight", "ApiErrorRateInsight"]}, ActionContext()
    )
    both = [{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]
    with Stubber(client) as stub:
        stub.add_client_error("get_insight_selectors", "InsightNotEnabledException")
        stub.add_response("put_insight_selectors", {}, {"TrailName": "org-trail", "InsightSelectors": both})
        stub.add_response("get_insight_selectors", {"InsightSelectors": both})
        stub.add_response("get_insight_selectors", {"InsightSelectors": both})
        stub.add_response("put_insight_selectors", {}, {"TrailName": "org-trail", "InsightSelectors": []})
        before = action.snapshot()
        assert before == {"Trail": "org-trail", "Types": []} and not action.check(before)
        action.apply(before)
        after = action.snapshot()
        assert action.check(after)
        action.undo(before, after)
        stub.assert_no_pending_responses()
