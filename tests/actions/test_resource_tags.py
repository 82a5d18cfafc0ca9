"""The actions that read their resource's tags (the organization's opt-out tag, a playbook's tag
scope) read them through their own client, with a permission they declare: otherwise a tagged
queue, topic, repository, secret, key grant or log bucket could not opt out, or the read would
be refused in a member account (the member role holds only what actions declare)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from chalicelib.actions import registered_actions
from chalicelib.actions.base import ActionContext
from tests.conftest import ACCOUNT, REGION

pytestmark = pytest.mark.integration

TAGS = {"trailguard:exempt": "true", "trailguard:exempt-reason": "public by design, ticket SEC-42"}


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def _queue() -> dict[str, Any]:
    return {"queue": _client("sqs").create_queue(QueueName="orders", tags=TAGS)["QueueUrl"]}


def _topic() -> dict[str, Any]:
    pairs = [{"Key": k, "Value": v} for k, v in TAGS.items()]
    return {"topic": _client("sns").create_topic(Name="alerts", Tags=pairs)["TopicArn"]}


def _repository() -> dict[str, Any]:
    _client("ecr").create_repository(
        repositoryName="payments-api", tags=[{"Key": k, "Value": v} for k, v in TAGS.items()]
    )
    return {"repository": "payments-api"}


def _secret() -> dict[str, Any]:
    pairs = [{"Key": k, "Value": v} for k, v in TAGS.items()]
    _client("secretsmanager").create_secret(Name="db-password", SecretString="s3cr3t", Tags=pairs)
    return {"secret": "db-password"}


def _grant_key() -> dict[str, Any]:
    pairs = [{"TagKey": k, "TagValue": v} for k, v in TAGS.items()]
    return {"key": _client("kms").create_key(Tags=pairs)["KeyMetadata"]["KeyId"], "grant": "g-1"}


def _log_bucket() -> dict[str, Any]:
    s3 = _client("s3")
    s3.create_bucket(Bucket="trail-logs")
    s3.put_bucket_tagging(Bucket="trail-logs", Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in TAGS.items()]})
    return {"bucket": "trail-logs"}


CASES: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "sqs.remove_public_policy_statements": (_queue, "sqs:ListQueueTags"),
    "sns.remove_public_policy_statements": (_topic, "sns:ListTagsForResource"),
    "ecr.remove_public_policy_statements": (_repository, "ecr:ListTagsForResource"),
    "secretsmanager.remove_public_policy_statements": (_secret, "secretsmanager:DescribeSecret"),
    "kms.revoke_grant": (_grant_key, "kms:ListResourceTags"),
    "s3.remove_log_expiration": (_log_bucket, "s3:GetBucketTagging"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_action_reads_its_resources_tags_with_a_permission_it_declares(aws, name):
    make, permission = CASES[name]
    action_class = registered_actions()[name]
    action = action_class(_client(action_class.service), make(), ActionContext(ACCOUNT, REGION))
    assert action.resource_tags() == TAGS
    assert permission in action_class.permissions
