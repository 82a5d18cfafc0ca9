"""What an incident's resource is in the terms findings use: a type and an identifier.

CloudTrail gives the name the call acted on (`EventSummary.resource`: a trail name, a
bucket, a key id...); Security Hub's and OCSF's resources want a type and, for AWS
resources, an ARN. What cannot be typed is `Other`, named as the event names it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.aws.clients import partition_of
from chalicelib.events.record import EventSummary


@dataclass(frozen=True)
class Resource:
    type: str
    id: str
    name: str | None
    partition: str
    region: str | None


_BY_SOURCE = {
    "cloudtrail.amazonaws.com": ("AwsCloudTrailTrail", "cloudtrail", "trail/{}"),
    "kms.amazonaws.com": ("AwsKmsKey", "kms", "key/{}"),
    "lambda.amazonaws.com": ("AwsLambdaFunction", "lambda", "function:{}"),
    "guardduty.amazonaws.com": ("AwsGuardDutyDetector", "guardduty", "detector/{}"),
}
"""Services whose resource names become an ARN in the event's account and region."""


def resource_of(event: EventSummary) -> Resource:
    source, name, region, account = event.source, event.name, event.region, event.account or ""
    partition = partition_of(region)
    resource = event.resource
    if not resource:
        return Resource("Other", f"{source}/{name}", None, partition, region)
    if resource.startswith("arn:"):
        kind = _BY_SOURCE.get(source, ("Other", "", ""))[0]
        return Resource(kind, resource, resource.rsplit("/", 1)[-1].rsplit(":", 1)[-1], partition, region)

    def arn(service: str, path: str, where: str = region) -> str:
        return f"arn:{partition}:{service}:{where}:{account}:{path}"

    if source == "s3.amazonaws.com":
        return Resource("AwsS3Bucket", f"arn:{partition}:s3:::{resource}", resource, partition, region)
    if not account:
        return Resource("Other", resource, resource, partition, region)
    if source in _BY_SOURCE:
        kind, service, path = _BY_SOURCE[source]
        return Resource(kind, arn(service, path.format(resource)), resource, partition, region)
    if source == "ec2.amazonaws.com" and resource.startswith("sg-"):
        return Resource("AwsEc2SecurityGroup", arn("ec2", f"security-group/{resource}"), resource, partition, region)
    if source == "iam.amazonaws.com" and "Role" in name:
        return Resource("AwsIamRole", arn("iam", f"role/{resource}", ""), resource, partition, region)
    if source == "iam.amazonaws.com" and any(word in name for word in ("User", "LoginProfile", "AccessKey")):
        return Resource("AwsIamUser", arn("iam", f"user/{resource}", ""), resource, partition, region)
    if source == "rds.amazonaws.com" and "Snapshot" in name:
        return Resource("AwsRdsDbSnapshot", arn("rds", f"snapshot:{resource}"), resource, partition, region)
    return Resource("Other", resource, resource, partition, region)
