"""Reading the tags of the resource a step acts on, through the action's own client: what the
organization's opt-out tag (`trailguard:exempt`) and a playbook's tag scope read before
anything is changed (`respond.controls`).

Each action that can tell declares the permission it reads them with among its own
`permissions` and answers `resource_tags()` with one of these functions: S3 buckets
(`s3:GetBucketTagging`), KMS keys (`kms:ListResourceTags`), CloudTrail trails
(`cloudtrail:ListTags`), EC2 security groups, snapshots and images (`ec2:DescribeTags`),
IAM roles and users (`iam:ListRoleTags`, `iam:ListUserTags`), Lambda functions
(`lambda:ListTags`), SQS queues (`sqs:ListQueueTags`), SNS topics (`sns:ListTagsForResource`),
ECR repositories (`ecr:ListTagsForResource`) and Secrets Manager secrets
(`secretsmanager:DescribeSecret`). The others (a deleted trail, GuardDuty, Config, RDS snapshots, an
account's public access block) answer None: a tag cannot opt them out.
"""

from __future__ import annotations

from typing import Any

from chalicelib.aws.clients import partition_of
from chalicelib.aws.retrying import error_code


def bucket_tags(s3: Any, bucket: str) -> dict[str, str]:
    try:
        tag_set = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except s3.exceptions.ClientError as error:
        if error_code(error) == "NoSuchTagSet":
            return {}
        raise
    return {tag["Key"]: tag["Value"] for tag in tag_set}


def key_tags(kms: Any, key: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for page in kms.get_paginator("list_resource_tags").paginate(KeyId=key):
        tags.update({tag["TagKey"]: tag["TagValue"] for tag in page.get("Tags", [])})
    return tags


def ec2_tags(ec2: Any, resource_id: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    pages = ec2.get_paginator("describe_tags").paginate(Filters=[{"Name": "resource-id", "Values": [resource_id]}])
    for page in pages:
        tags.update({tag["Key"]: tag["Value"] for tag in page.get("Tags", [])})
    return tags


def trail_tags(cloudtrail: Any, trail: str, account: str | None, region: str | None) -> dict[str, str]:
    """A trail's tags; ListTags takes an ARN, so a name is made one in the step's account and region."""
    arn = trail
    if not trail.startswith("arn:"):
        arn = f"arn:{partition_of(region or '')}:cloudtrail:{region}:{account}:trail/{trail}"
    found = cloudtrail.list_tags(ResourceIdList=[arn]).get("ResourceTagList", [])
    return {tag["Key"]: tag.get("Value", "") for entry in found for tag in entry.get("TagsList", [])}


def role_tags(iam: Any, role: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for page in iam.get_paginator("list_role_tags").paginate(RoleName=role):
        tags.update({tag["Key"]: tag["Value"] for tag in page.get("Tags", [])})
    return tags


def user_tags(iam: Any, user: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for page in iam.get_paginator("list_user_tags").paginate(UserName=user):
        tags.update({tag["Key"]: tag["Value"] for tag in page.get("Tags", [])})
    return tags


def function_tags(lambda_client: Any, function: str, account: str | None, region: str | None) -> dict[str, str]:
    """A function's tags; ListTags takes an ARN, so a name is made one (without a qualifier)."""
    arn = ":".join(function.split(":")[:7])  # a version or alias is not what is tagged
    if not function.startswith("arn:"):
        arn = f"arn:{partition_of(region or '')}:lambda:{region}:{account}:function:{function.split(':')[0]}"
    tags: dict[str, str] = lambda_client.list_tags(Resource=arn).get("Tags", {})
    return tags


def queue_tags(sqs: Any, queue_url: str) -> dict[str, str]:
    return dict(sqs.list_queue_tags(QueueUrl=queue_url).get("Tags", {}))


def topic_tags(sns: Any, topic_arn: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in sns.list_tags_for_resource(ResourceArn=topic_arn).get("Tags", [])}


def secret_tags(secrets: Any, secret: str) -> dict[str, str]:
    return {tag["Key"]: tag.get("Value", "") for tag in secrets.describe_secret(SecretId=secret).get("Tags", [])}


def repository_tags(ecr: Any, repository: str, account: str | None, region: str | None) -> dict[str, str]:
    """A repository's tags; ListTagsForResource takes an ARN, so a name is made one in the
    step's account and region."""
    arn = repository
    if not repository.startswith("arn:"):
        arn = f"arn:{partition_of(region or '')}:ecr:{region}:{account}:repository/{repository}"
    return {tag["Key"]: tag["Value"] for tag in ecr.list_tags_for_resource(resourceArn=arn).get("tags", [])}
