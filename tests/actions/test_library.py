"""Every action of the remediation library, against moto, through one harness:

- snapshot, then apply: the resource is safe, and it changed;
- re-apply: a fresh action finds it safe (check) and its snapshot is what apply left;
- undo: the resource is back as it was, field by field (what a person would compare);
- undo refused: when someone changed the resource after trailguard, undo touches nothing.

Each case says how to set the resource up, make it unsafe, observe it and tamper with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from chalicelib.actions import ActionError, UndoRefused, registered_actions
from chalicelib.actions.base import ActionContext
from chalicelib.memory import flow_logs, trails
from tests.conftest import ACCOUNT, REGION, python_function, remembering

pytestmark = pytest.mark.integration

OTHER_ACCOUNT = "111122223333"


@dataclass
class Setup:
    client: Any
    params: dict[str, Any]
    unsafe: Callable[[], Any]
    observe: Callable[[], Any]
    tamper: Callable[[], Any]
    memory: Any = None
    remember: Callable[[], Any] = field(default=lambda: None)


def _policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _client(service):
    return boto3.client(service, region_name=REGION)


def _object_acl():
    s3 = _client("s3")
    s3.create_bucket(Bucket="data-bucket")
    s3.put_object(Bucket="data-bucket", Key="report.csv", Body=b"x")
    owner = s3.get_object_acl(Bucket="data-bucket", Key="report.csv")["Owner"]

    def tamper():
        s3.put_object_acl(
            Bucket="data-bucket", Key="report.csv", GrantFullControl=f'id="{owner["ID"]}"', GrantRead=f'id="{"f" * 64}"'
        )

    return Setup(
        s3,
        {"bucket": "data-bucket", "key": "report.csv"},
        unsafe=lambda: s3.put_object_acl(Bucket="data-bucket", Key="report.csv", ACL="public-read"),
        observe=lambda: sorted(
            json.dumps(g, sort_keys=True) for g in s3.get_object_acl(Bucket="data-bucket", Key="report.csv")["Grants"]
        ),
        tamper=tamper,
    )


PUBLIC_READ = {
    "Sid": "Public",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::data-bucket/*",
}
FROM_VPCE = {
    "Sid": "Vpce",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::data-bucket/*",
    "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}},
}


def _bucket_policy():
    s3 = _client("s3")
    s3.create_bucket(Bucket="data-bucket")

    def policy():
        try:
            return json.loads(s3.get_bucket_policy(Bucket="data-bucket")["Policy"])
        except s3.exceptions.from_code("NoSuchBucketPolicy"):
            return None

    def put(*statements):
        s3.put_bucket_policy(
            Bucket="data-bucket", Policy=json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
        )

    return Setup(
        s3,
        {"bucket": "data-bucket", "trusted_accounts": [], "trusted_organizations": []},
        unsafe=lambda: put(FROM_VPCE, PUBLIC_READ),
        observe=policy,
        tamper=lambda: put({**FROM_VPCE, "Sid": "Changed"}),
    )


def _public_access_block(account_level: bool):
    if account_level:
        client = _client("s3control")
        target = {"AccountId": ACCOUNT}
        params = {"account": ACCOUNT}
    else:
        client = _client("s3")
        client.create_bucket(Bucket="data-bucket")
        target = {"Bucket": "data-bucket"}
        params = {"bucket": "data-bucket"}
    settings = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")

    def observe():
        try:
            return client.get_public_access_block(**target)["PublicAccessBlockConfiguration"]
        except Exception:
            return None

    def put(*on):
        client.put_public_access_block(**target, PublicAccessBlockConfiguration={s: s in on for s in settings})

    return Setup(
        client,
        params,
        unsafe=lambda: put("BlockPublicAcls"),
        observe=observe,
        tamper=lambda: put("BlockPublicAcls", "IgnorePublicAcls"),
    )


def _key_policy():
    kms = _client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    admin = {
        "Sid": "Admin",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    public = {"Sid": "Anyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"}

    def put(*statements):
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=_policy(*statements))

    return Setup(
        kms,
        {"key": key, "trusted_accounts": [], "trusted_organizations": []},
        unsafe=lambda: put(admin, public),
        observe=lambda: kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"],
        tamper=lambda: put({**admin, "Sid": "Changed"}),
    )


def _request_parameters(group, permissions):
    """An AuthorizeSecurityGroupIngress call's requestParameters, as CloudTrail writes them."""
    return {
        "groupId": group,
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": p["IpProtocol"],
                    "fromPort": p.get("FromPort"),
                    "toPort": p.get("ToPort"),
                    "ipRanges": {"items": [{"cidrIp": r["CidrIp"]} for r in p.get("IpRanges", [])]},
                    "ipv6Ranges": {"items": [{"cidrIpv6": r["CidrIpv6"]} for r in p.get("Ipv6Ranges", [])]},
                }
                for p in permissions
            ]
        },
    }


def _ranges_the_playbook_finds(group, permissions):
    """What the bundled playbook hands ec2.revoke_public_ingress for this call."""
    from chalicelib.playbooks.catalog import Catalog
    from tests.conftest import PLAYBOOKS

    playbook = Catalog.load([PLAYBOOKS], with_tests=False).get("ec2-security-group-public-admin-ingress")
    record = {"requestParameters": _request_parameters(group, permissions)}
    assert playbook.condition.search(record), "the playbook's condition does not object to this call"
    return playbook.steps[0].params["ranges"].search(record)


def _security_group(opened=None):
    ec2 = _client("ec2")
    group = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}],
    )
    params: dict[str, Any] = {"group": group}
    open_ssh = opened or [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
    ]

    def unsafe():
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=open_ssh)
        params["ranges"] = _ranges_the_playbook_finds(group, open_ssh)

    def observe():
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
            "SecurityGroupRules"
        ]
        return sorted(
            (r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("CidrIpv4") or r.get("CidrIpv6"))
            for r in rules
            if not r["IsEgress"]
        )

    return Setup(
        ec2,
        params,
        unsafe=unsafe,
        observe=observe,
        tamper=lambda: ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=open_ssh[:1]),
    )


def _snapshot_share():
    ec2 = _client("ec2")
    volume = ec2.create_volume(Size=1, AvailabilityZone=f"{REGION}a")["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]

    def modify(groups=(), users=()):
        ec2.modify_snapshot_attribute(
            SnapshotId=snapshot,
            Attribute="createVolumePermission",
            OperationType="add",
            GroupNames=list(groups),
            UserIds=list(users),
        )

    return Setup(
        ec2,
        {"snapshot": snapshot},
        unsafe=lambda: modify(["all"], [OTHER_ACCOUNT]),
        observe=lambda: ec2.describe_snapshot_attribute(SnapshotId=snapshot, Attribute="createVolumePermission")[
            "CreateVolumePermissions"
        ],
        tamper=lambda: modify([], ["444455556666"]),
    )


def _image_share():
    ec2 = _client("ec2")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = ec2.create_image(InstanceId=instance, Name="golden-image")["ImageId"]

    def add(*entries):
        ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": list(entries)})

    return Setup(
        ec2,
        {"image": image, "accounts": [OTHER_ACCOUNT]},
        unsafe=lambda: add({"Group": "all"}, {"UserId": OTHER_ACCOUNT}, {"UserId": "444455556666"}),
        observe=lambda: sorted(
            json.dumps(p)
            for p in ec2.describe_image_attribute(ImageId=image, Attribute="launchPermission")["LaunchPermissions"]
        ),
        tamper=lambda: add({"UserId": "777788889999"}),
    )


def _db_snapshot_share():
    rds = _client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="admin_user",
        MasterUserPassword="a-long-password",
        AllocatedStorage=20,
    )
    rds.create_db_snapshot(DBSnapshotIdentifier="nightly", DBInstanceIdentifier="db")

    def add(*values):
        rds.modify_db_snapshot_attribute(
            DBSnapshotIdentifier="nightly", AttributeName="restore", ValuesToAdd=list(values)
        )

    return Setup(
        rds,
        {"snapshot": "nightly", "values": ["all"]},
        unsafe=lambda: add("all", OTHER_ACCOUNT),
        observe=lambda: sorted(
            rds.describe_db_snapshot_attributes(DBSnapshotIdentifier="nightly")["DBSnapshotAttributesResult"][
                "DBSnapshotAttributes"
            ][0]["AttributeValues"]
        ),
        tamper=lambda: add("444455556666"),
    )


def _flow_logs():
    ec2, s3 = _client("ec2"), _client("s3")
    s3.create_bucket(Bucket="flow-logs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    flow_log = ec2.create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="REJECT",
        LogDestinationType="s3",
        LogDestination="arn:aws:s3:::flow-logs",
    )["FlowLogIds"][0]
    memory = remembering()

    def observe():
        return sorted(flow_logs.identity(config) for config in flow_logs.describe_all(ec2).values())

    def tamper():
        ec2.delete_flow_logs(FlowLogIds=list(flow_logs.describe_all(ec2)))

    return Setup(
        ec2,
        {"flow_logs": [flow_log]},
        unsafe=lambda: ec2.delete_flow_logs(FlowLogIds=[flow_log]),
        observe=observe,
        tamper=tamper,
        memory=memory,
        remember=lambda: flow_logs.remember_all(memory, ec2, ACCOUNT, REGION),
    )


def _detector():
    guardduty = _client("guardduty")
    detector = guardduty.create_detector(Enable=True)["DetectorId"]

    def observe():
        return {d: guardduty.get_detector(DetectorId=d)["Status"] for d in guardduty.list_detectors()["DetectorIds"]}

    return Setup(
        guardduty,
        {},
        unsafe=lambda: guardduty.update_detector(DetectorId=detector, Enable=False),
        observe=observe,
        tamper=lambda: guardduty.update_detector(DetectorId=detector, Enable=False),
    )


def _recorder():
    config, s3 = _client("config"), _client("s3")
    s3.create_bucket(Bucket="config-history")
    config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": f"arn:aws:iam::{ACCOUNT}:role/config",
            "recordingGroup": {"allSupported": True},
        }
    )
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "config-history"})
    config.start_configuration_recorder(ConfigurationRecorderName="default")
    memory = remembering()
    from chalicelib.memory import config_channels

    def unsafe():
        config.stop_configuration_recorder(ConfigurationRecorderName="default")
        config.delete_delivery_channel(DeliveryChannelName="default")

    def observe():
        statuses = config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]
        return ({s["name"]: s["recording"] for s in statuses}, config.describe_delivery_channels()["DeliveryChannels"])

    return Setup(
        config,
        {},
        unsafe=unsafe,
        observe=observe,
        memory=memory,
        tamper=lambda: config.stop_configuration_recorder(ConfigurationRecorderName="default"),
        remember=lambda: config_channels.remember_all(memory, config, ACCOUNT, REGION),
    )


def _trail_settings():
    cloudtrail, s3 = _client("cloudtrail"), _client("s3")
    s3.create_bucket(Bucket="org-trail-logs")
    cloudtrail.create_trail(
        Name="org",
        S3BucketName="org-trail-logs",
        IsMultiRegionTrail=True,
        EnableLogFileValidation=True,
        S3KeyPrefix="audit",
    )
    memory = remembering()

    def observe():
        [trail] = cloudtrail.describe_trails(trailNameList=["org"])["trailList"]
        return trail

    return Setup(
        cloudtrail,
        {"trail": "org"},
        memory=memory,
        unsafe=lambda: cloudtrail.update_trail(Name="org", IsMultiRegionTrail=False, EnableLogFileValidation=False),
        observe=observe,
        tamper=lambda: cloudtrail.update_trail(Name="org", S3KeyPrefix="elsewhere"),
        remember=lambda: trails.remember(memory, cloudtrail, "org", ACCOUNT, REGION),
    )


def _access_key():
    iam = _client("iam")
    iam.create_user(UserName="payroll-bot")
    key = iam.create_access_key(UserName="payroll-bot")["AccessKey"]["AccessKeyId"]
    return Setup(
        iam,
        {"user": "payroll-bot", "key": key},
        unsafe=lambda: None,
        observe=lambda: iam.list_access_keys(UserName="payroll-bot")["AccessKeyMetadata"][0]["Status"],
        tamper=lambda: iam.update_access_key(UserName="payroll-bot", AccessKeyId=key, Status="Active"),
    )


TRUST_EC2 = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}


def _trust_policy():
    iam = _client("iam")
    iam.create_role(
        RoleName="app", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [TRUST_EC2]})
    )
    backdoor = {
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/ops", "arn:aws:iam::193672423079:root"]},
        "Action": "sts:AssumeRole",
    }

    def put(*statements):
        iam.update_assume_role_policy(RoleName="app", PolicyDocument=_policy(*statements))

    return Setup(
        iam,
        {"role": "app", "trusted_accounts": [], "trusted_organizations": []},
        unsafe=lambda: put(TRUST_EC2, backdoor),
        observe=lambda: iam.get_role(RoleName="app")["Role"]["AssumeRolePolicyDocument"],
        tamper=lambda: put(TRUST_EC2),
    )


def _function_permission():
    iam, lam = _client("iam"), _client("lambda")
    python_function(iam, lam, "billing", "fn-role")
    lam.add_permission(
        FunctionName="billing",
        StatementId="events",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=f"arn:aws:events:{REGION}:{ACCOUNT}:rule/nightly",
    )

    def observe():
        return sorted(s["Sid"] for s in json.loads(lam.get_policy(FunctionName="billing")["Policy"])["Statement"])

    def add_backdoor():
        lam.add_permission(
            FunctionName="billing", StatementId="backdoor", Action="lambda:InvokeFunction", Principal="*"
        )

    return Setup(
        lam, {"function": "billing", "statement": "backdoor"}, unsafe=add_backdoor, observe=observe, tamper=add_backdoor
    )


def _tag():
    s3 = _client("s3")
    s3.create_bucket(Bucket="data-bucket")
    tagging = _client("resourcegroupstaggingapi")

    def observe():
        found = tagging.get_resources(ResourceARNList=["arn:aws:s3:::data-bucket"])["ResourceTagMappingList"]
        return {t["Key"]: t["Value"] for mapping in found for t in mapping["Tags"]}

    return Setup(
        tagging,
        {"arn": "arn:aws:s3:::data-bucket"},
        unsafe=lambda: None,
        observe=observe,
        tamper=lambda: tagging.tag_resources(
            ResourceARNList=["arn:aws:s3:::data-bucket"], Tags={"trailguard:incident": "someone-else"}
        ),
    )


def _cluster_snapshot_share():
    rds = _client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier="orders",
        Engine="aurora-postgresql",
        MasterUsername="admin_user",
        MasterUserPassword="a-long-password",
    )
    rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="orders-nightly", DBClusterIdentifier="orders")

    def add(*values):
        rds.modify_db_cluster_snapshot_attribute(
            DBClusterSnapshotIdentifier="orders-nightly", AttributeName="restore", ValuesToAdd=list(values)
        )

    def observe():
        result = rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier="orders-nightly")
        return sorted(result["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"][0]["AttributeValues"])

    return Setup(
        rds,
        {"snapshot": "orders-nightly", "values": ["all"]},
        unsafe=lambda: add("all", OTHER_ACCOUNT),
        observe=observe,
        tamper=lambda: add("444455556666"),
    )


def _findings_filter():
    guardduty = _client("guardduty")
    detector = guardduty.create_detector(Enable=True)["DetectorId"]
    guardduty.create_filter(
        DetectorId=detector, Name="quiet", Action="NOOP", FindingCriteria={"Criterion": {"severity": {"Gte": 0}}}
    )

    def set_action(action):
        guardduty.update_filter(DetectorId=detector, FilterName="quiet", Action=action)

    return Setup(
        guardduty,
        {"detector": detector, "filter": "quiet"},
        unsafe=lambda: set_action("ARCHIVE"),
        observe=lambda: guardduty.get_filter(DetectorId=detector, FilterName="quiet")["Action"],
        tamper=lambda: set_action("ARCHIVE"),
    )


OPEN_TO_ANYONE = {"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}
OUR_ACCOUNT_ONLY = {
    "Sid": "Ours",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "*",
    "Resource": "*",
}
TRUSTED_NOBODY = {"trusted_accounts": [], "trusted_organizations": []}


def _policy_case(client, name, get, put):
    """A resource policy case: our statement, then one open to anyone added; tampering changes ours."""
    put(_policy(OUR_ACCOUNT_ONLY))
    return Setup(
        client,
        {name: None, **TRUSTED_NOBODY},
        unsafe=lambda: put(_policy(OUR_ACCOUNT_ONLY, OPEN_TO_ANYONE)),
        observe=lambda: json.loads(get() or "null"),
        tamper=lambda: put(_policy({**OUR_ACCOUNT_ONLY, "Sid": "Changed"})),
    )


def _queue_policy():
    sqs = _client("sqs")
    queue = sqs.create_queue(QueueName="orders")["QueueUrl"]

    def get():
        return sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"]).get("Attributes", {}).get("Policy")

    setup = _policy_case(
        sqs, "queue", get, lambda policy: sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": policy})
    )
    setup.params["queue"] = queue
    return setup


def _topic_policy():
    sns = _client("sns")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    setup = _policy_case(
        sns,
        "topic",
        lambda: sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"],
        lambda policy: sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=policy),
    )
    setup.params["topic"] = topic
    return setup


def _repository_policy():
    ecr = _client("ecr")
    ecr.create_repository(repositoryName="payments-api")

    def get():
        try:
            return ecr.get_repository_policy(repositoryName="payments-api")["policyText"]
        except ecr.exceptions.RepositoryPolicyNotFoundException:
            return None

    setup = _policy_case(
        ecr,
        "repository",
        get,
        lambda policy: ecr.set_repository_policy(repositoryName="payments-api", policyText=policy),
    )
    setup.params["repository"] = "payments-api"
    return setup


def _secret_policy():
    secrets = _client("secretsmanager")
    secrets.create_secret(Name="db-password", SecretString="s3cr3t")
    setup = _policy_case(
        secrets,
        "secret",
        lambda: secrets.get_resource_policy(SecretId="db-password").get("ResourcePolicy"),
        lambda policy: secrets.put_resource_policy(SecretId="db-password", ResourcePolicy=policy),
    )
    setup.params["secret"] = "db-password"
    return setup


CLOUDTRAIL_WRITES = {
    "Sid": "AWSCloudTrailWrite",
    "Effect": "Allow",
    "Principal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": "s3:PutObject",
    "Resource": "arn:aws:s3:::trail-logs/AWSLogs/*",
}
KEEP_A_YEAR = {"ID": "keep-a-year", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 365}}
NUKE = {
    "ID": "nuke-cloudtrail-logs-after-1-day",
    "Status": "Enabled",
    "Filter": {"Prefix": ""},
    "Expiration": {"Days": 1},
}


def _log_expiration():
    s3 = _client("s3")
    s3.create_bucket(Bucket="trail-logs")
    s3.put_bucket_policy(Bucket="trail-logs", Policy=_policy(CLOUDTRAIL_WRITES))

    def rules(*given):
        s3.put_bucket_lifecycle_configuration(Bucket="trail-logs", LifecycleConfiguration={"Rules": list(given)})

    rules(KEEP_A_YEAR)
    return Setup(
        s3,
        {"bucket": "trail-logs", "days": 90},
        unsafe=lambda: rules(KEEP_A_YEAR, NUKE),  # Stratus Red Team's cloudtrail-lifecycle-rule
        observe=lambda: s3.get_bucket_lifecycle_configuration(Bucket="trail-logs")["Rules"],
        tamper=lambda: rules({**KEEP_A_YEAR, "Expiration": {"Days": 400}}),
    )


def _grant():
    kms = _client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    params = {"key": key, "grant": "none-yet"}

    def grant():
        params["grant"] = kms.create_grant(
            KeyId=key, GranteePrincipal="arn:aws:iam::193672423079:root", Operations=["Decrypt"]
        )["GrantId"]

    return Setup(
        kms,
        params,
        unsafe=grant,
        observe=lambda: sorted(g["GranteePrincipal"] for g in kms.list_grants(KeyId=key)["Grants"]),
        tamper=lambda: kms.create_grant(
            KeyId=key, GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:role/backup", Operations=["Decrypt"]
        ),
    )


CLOUDTRAIL_CHECKS = {
    "Sid": "AWSCloudTrailAclCheck",
    "Effect": "Allow",
    "Principal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": "s3:GetBucketAcl",
    "Resource": "arn:aws:s3:::trail-logs",
}
DENY_HTTP = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::trail-logs", "arn:aws:s3:::trail-logs/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def _trail_bucket_policy():
    """The audit chain: a trail's bucket whose policy no longer lets CloudTrail write."""
    s3 = _client("s3")
    s3.create_bucket(Bucket="trail-logs")

    def policy():
        try:
            return json.loads(s3.get_bucket_policy(Bucket="trail-logs")["Policy"])
        except s3.exceptions.from_code("NoSuchBucketPolicy"):
            return None

    s3.put_bucket_policy(Bucket="trail-logs", Policy=_policy(DENY_HTTP, CLOUDTRAIL_CHECKS, CLOUDTRAIL_WRITES))
    return Setup(
        s3,
        {"bucket": "trail-logs"},
        unsafe=lambda: s3.put_bucket_policy(Bucket="trail-logs", Policy=_policy(DENY_HTTP)),
        observe=policy,
        tamper=lambda: s3.delete_bucket_policy(Bucket="trail-logs"),
    )


def _trail_bucket_versioning():
    s3 = _client("s3")
    s3.create_bucket(Bucket="trail-logs")

    def status(value):
        s3.put_bucket_versioning(Bucket="trail-logs", VersioningConfiguration={"Status": value})

    status("Enabled")
    return Setup(
        s3,
        {"bucket": "trail-logs"},
        unsafe=lambda: status("Suspended"),
        observe=lambda: s3.get_bucket_versioning(Bucket="trail-logs").get("Status"),
        tamper=lambda: status("Suspended"),
    )


CLOUDTRAIL_ENCRYPTS = {
    "Sid": "Allow CloudTrail to encrypt logs",
    "Effect": "Allow",
    "Principal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": "kms:GenerateDataKey*",
    "Resource": "*",
    "Condition": {
        "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"}
    },
}
ROOT_ADMINISTERS = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def _trail_key_policy():
    kms = _client("kms")
    key = kms.create_key(Policy=_policy(ROOT_ADMINISTERS, CLOUDTRAIL_ENCRYPTS))["KeyMetadata"]["KeyId"]

    def put(*statements):
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=_policy(*statements))

    return Setup(
        kms,
        {"key": key},
        unsafe=lambda: put(ROOT_ADMINISTERS),
        observe=lambda: json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]),
        tamper=lambda: put(ROOT_ADMINISTERS, {**ROOT_ADMINISTERS, "Sid": "Another"}),
    )


def _trail_log_group():
    logs = _client("logs")
    logs.create_log_group(logGroupName="org-trail")
    return Setup(
        logs,
        {"log_group": "org-trail"},
        unsafe=lambda: logs.delete_log_group(logGroupName="org-trail"),
        observe=lambda: [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]],
        tamper=lambda: logs.put_retention_policy(logGroupName="org-trail", retentionInDays=1),
    )


def _trusted_access():
    organizations = _client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    organizations.enable_aws_service_access(ServicePrincipal="cloudtrail.amazonaws.com")
    return Setup(
        organizations,
        {"service": "cloudtrail.amazonaws.com"},
        unsafe=lambda: organizations.disable_aws_service_access(ServicePrincipal="cloudtrail.amazonaws.com"),
        observe=lambda: [
            p["ServicePrincipal"]
            for p in organizations.list_aws_service_access_for_organization()["EnabledServicePrincipals"]
        ],
        tamper=lambda: organizations.disable_aws_service_access(ServicePrincipal="cloudtrail.amazonaws.com"),
    )


def _role_sessions():
    iam = _client("iam")
    iam.create_role(RoleName="app-server", AssumeRolePolicyDocument=_policy(TRUST_EC2), Path="/apps/")

    def revocation():
        try:
            return iam.get_role_policy(RoleName="app-server", PolicyName="trailguard-revoke-older-sessions")[
                "PolicyDocument"
            ]
        except iam.exceptions.NoSuchEntityException:
            return None

    return Setup(
        iam,
        {"role": "app-server", "since": "2026-01-01T00:00:00Z"},
        unsafe=lambda: None,  # a role whose sessions are all valid
        observe=revocation,
        tamper=lambda: iam.put_role_policy(
            RoleName="app-server",
            PolicyName="trailguard-revoke-older-sessions",
            PolicyDocument=_policy({"Effect": "Deny", "Action": "s3:*", "Resource": "*"}),
        ),
    )


def _quarantined_role():
    iam = _client("iam")
    iam.create_role(RoleName="app-server", AssumeRolePolicyDocument=_policy(TRUST_EC2))
    arn = f"arn:aws:iam::{ACCOUNT}:policy/trailguard/trailguard-quarantine"
    return Setup(
        iam,
        {"role": "app-server"},
        unsafe=lambda: None,
        observe=lambda: sorted(
            p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName="app-server")["AttachedPolicies"]
        ),
        tamper=lambda: iam.detach_role_policy(RoleName="app-server", PolicyArn=arn),
    )


def _quarantined_user():
    iam = _client("iam")
    iam.create_user(UserName="mallory")
    arn = f"arn:aws:iam::{ACCOUNT}:policy/trailguard/trailguard-quarantine"
    return Setup(
        iam,
        {"user": "mallory"},
        unsafe=lambda: None,
        observe=lambda: sorted(
            p["PolicyArn"] for p in iam.list_attached_user_policies(UserName="mallory")["AttachedPolicies"]
        ),
        tamper=lambda: iam.detach_user_policy(UserName="mallory", PolicyArn=arn),
    )


def _user_access_keys():
    iam = _client("iam")
    iam.create_user(UserName="payroll-bot")
    iam.create_access_key(UserName="payroll-bot")
    old = iam.create_access_key(UserName="payroll-bot")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="payroll-bot", AccessKeyId=old, Status="Inactive")  # stays inactive after undo
    return Setup(
        iam,
        {"user": "payroll-bot"},
        unsafe=lambda: None,
        observe=lambda: sorted(
            (k["AccessKeyId"], k["Status"]) for k in iam.list_access_keys(UserName="payroll-bot")["AccessKeyMetadata"]
        ),
        tamper=lambda: iam.update_access_key(UserName="payroll-bot", AccessKeyId=old, Status="Active"),
    )


@pytest.fixture(autouse=True)
def _interface_groups_are_replaced(monkeypatch):
    """AWS replaces an interface's security groups (ModifyNetworkInterfaceAttribute: "the new
    set of groups you specify replaces the current set"); moto 5.2 reports them joined with
    the groups its instance was launched with. The interface's own groups are reported here."""
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    monkeypatch.setattr(NetworkInterface, "group_set", property(lambda self: self._group_set))


def _isolated_instance():
    ec2 = _client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    other = ec2.create_security_group(GroupName="other", Description="other", VpcId=vpc)["GroupId"]
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SecurityGroupIds=[web])["Instances"][0]

    def interface() -> str:
        found = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
        return found["NetworkInterfaces"][0]["NetworkInterfaceId"]

    def groups():
        eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[interface()])["NetworkInterfaces"][0]
        return sorted(g["GroupId"] for g in eni["Groups"])

    return Setup(
        ec2,
        {"instance": instance["InstanceId"]},
        unsafe=lambda: None,
        observe=groups,
        tamper=lambda: ec2.modify_network_interface_attribute(NetworkInterfaceId=interface(), Groups=[other]),
    )


def _bucket_denial():
    s3, iam = _client("s3"), _client("iam")
    s3.create_bucket(Bucket="data-bucket")
    s3.put_bucket_policy(Bucket="data-bucket", Policy=_policy(PUBLIC_READ))
    iam.create_role(
        RoleName="app-server",
        Path="/apps/",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [TRUST_EC2]}),
    )

    def tamper():
        document = json.loads(s3.get_bucket_policy(Bucket="data-bucket")["Policy"])
        document["Statement"][-1]["Action"] = "s3:GetObject"
        s3.put_bucket_policy(Bucket="data-bucket", Policy=json.dumps(document))

    return Setup(
        s3,
        {"bucket": "data-bucket", "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/app-server/i-0a1b2c3d4e5f67890"},
        unsafe=lambda: None,
        observe=lambda: json.loads(s3.get_bucket_policy(Bucket="data-bucket")["Policy"]),
        tamper=tamper,
    )


def _key_denial():
    kms, iam = _client("kms"), _client("iam")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    iam.create_user(UserName="payroll-bot")

    def tamper():
        document = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
        document["Statement"] = document["Statement"][:-1]
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(document))

    return Setup(
        kms,
        {"key": key, "principal": f"arn:aws:iam::{ACCOUNT}:user/payroll-bot"},
        unsafe=lambda: None,
        observe=lambda: json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]),
        tamper=tamper,
    )


def _contained_function():
    setup = _function_permission()
    lam = setup.client
    lam.create_function_url_config(FunctionName="billing", AuthType="NONE")

    def observe():
        statements = json.loads(lam.get_policy(FunctionName="billing")["Policy"])["Statement"]
        return lam.get_function_url_config(FunctionName="billing")["AuthType"], sorted(s["Sid"] for s in statements)

    return Setup(
        lam,
        {"function": "billing", "trusted_accounts": [], "trusted_organizations": []},
        unsafe=setup.unsafe,
        observe=observe,
        tamper=lambda: lam.update_function_url_config(FunctionName="billing", AuthType="NONE"),
    )


def _auto_scaled_instance():
    autoscaling = _client("autoscaling")
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="web", ImageId="ami-12c6146b", InstanceType="t2.micro"
    )
    for name, maximum in (("web", 2), ("other", 3)):
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchConfigurationName="web",
            MinSize=1,
            MaxSize=maximum,
            DesiredCapacity=1,
            AvailabilityZones=[f"{REGION}a"],
        )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    instance = group["Instances"][0]["InstanceId"]

    def observe():
        found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"]
        return found[0]["AutoScalingGroupName"] if found else None

    return Setup(
        autoscaling,
        {"instance": instance},
        unsafe=lambda: None,
        observe=observe,
        tamper=lambda: autoscaling.attach_instances(InstanceIds=[instance], AutoScalingGroupName="other"),
    )


CASES: dict[str, Callable[[], Setup]] = {
    "autoscaling.detach_instance": _auto_scaled_instance,
    "iam.revoke_role_sessions": _role_sessions,
    "iam.quarantine_role": _quarantined_role,
    "iam.quarantine_user": _quarantined_user,
    "iam.deactivate_user_access_keys": _user_access_keys,
    "ec2.isolate_instance": _isolated_instance,
    "s3.deny_principal": _bucket_denial,
    "kms.deny_principal": _key_denial,
    "lambda.contain_function": _contained_function,
    "s3.remove_public_object_acl": _object_acl,
    "s3.remove_public_policy_statements": _bucket_policy,
    "s3.block_public_access": lambda: _public_access_block(False),
    "s3.block_account_public_access": lambda: _public_access_block(True),
    "kms.restore_key_policy": _key_policy,
    "ec2.revoke_public_ingress": _security_group,
    "ec2.remove_public_snapshot_permission": _snapshot_share,
    "ec2.remove_public_image_permission": _image_share,
    "rds.remove_snapshot_share": _db_snapshot_share,
    "ec2.restore_flow_logs": _flow_logs,
    "guardduty.restore_detector": _detector,
    "config.start_recorder": _recorder,
    "cloudtrail.restore_trail_settings": _trail_settings,
    "iam.deactivate_access_key": _access_key,
    "iam.restore_trust_policy": _trust_policy,
    "lambda.remove_permission": _function_permission,
    "tag.resource": _tag,
    "rds.remove_cluster_snapshot_share": _cluster_snapshot_share,
    "guardduty.stop_auto_archive": _findings_filter,
    "sqs.remove_public_policy_statements": _queue_policy,
    "sns.remove_public_policy_statements": _topic_policy,
    "ecr.remove_public_policy_statements": _repository_policy,
    "secretsmanager.remove_public_policy_statements": _secret_policy,
    "s3.remove_log_expiration": _log_expiration,
    "kms.revoke_grant": _grant,
    "s3.restore_cloudtrail_write": _trail_bucket_policy,
    "s3.enable_versioning": _trail_bucket_versioning,
    "kms.restore_cloudtrail_encrypt": _trail_key_policy,
    "logs.recreate_log_group": _trail_log_group,
    "organizations.enable_service_access": _trusted_access,
}


def _action(name, setup):
    action_class = registered_actions()[name]
    defaults = {p.name: p.default for p in action_class.parameters if not p.required}
    context = ActionContext(ACCOUNT, REGION, setup.memory, incident_id="inc-0123456789abcdef0123", clients=_client)
    return action_class(setup.client, {**defaults, **setup.params}, context)


def _remediated(name, setup):
    setup.remember()
    setup.unsafe()
    unsafe = setup.observe()
    action = _action(name, setup)
    before = action.snapshot()
    assert not action.check(before)
    action.apply(before)
    after = action.snapshot()
    assert action.check(after), after
    assert setup.observe() != unsafe
    return action, before, after, unsafe


@pytest.mark.parametrize("name", sorted(CASES))
def test_apply_reapply_and_undo_restore_the_snapshot(name, aws):
    setup = CASES[name]()
    action, before, after, unsafe = _remediated(name, setup)
    again = _action(name, setup)
    assert again.snapshot() == after and again.check(after)  # nothing left to do: re-applying changes nothing
    action.undo(before, after)
    assert setup.observe() == unsafe


@pytest.mark.parametrize("name", sorted(CASES))
def test_undo_is_refused_when_the_resource_changed_since(name, aws):
    setup = CASES[name]()
    action, before, after, _ = _remediated(name, setup)
    setup.tamper()
    tampered = setup.observe()
    with pytest.raises(UndoRefused, match="changed since trailguard acted"):
        action.undo(before, after)
    assert setup.observe() == tampered


def test_every_resource_action_has_a_case():
    tested_elsewhere = {
        "cloudtrail.start_logging",
        "cloudtrail.restore_trail",
        "cloudtrail.restore_event_selectors",
        "kms.enable_key",
        "kms.cancel_key_deletion",
        "s3.remove_public_acl",
        "iam.delete_login_profile",
        "notify.note",
        "cloudtrail.restore_insight_selectors",  # moto appends selectors instead of replacing them
        "ec2.snapshot_volumes",  # undo keeps the evidence (tests/actions/test_containment.py)
    }
    assert set(registered_actions()) - tested_elsewhere == set(CASES)


# -- the cases the harness cannot express -----------------------------------------------------


def test_a_console_password_is_deleted_and_its_undo_refused_with_the_reason(aws):
    iam = _client("iam")
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Sup3r-secret-pass!", PasswordResetRequired=False)
    action = _action(
        "iam.delete_login_profile", Setup(iam, {"user": "alice"}, lambda: None, lambda: None, lambda: None)
    )
    before = action.snapshot()
    assert before == {"User": "alice", "LoginProfile": True, "PasswordResetRequired": False}
    action.apply(before)
    after = action.snapshot()
    assert action.check(after) and after["LoginProfile"] is False
    with pytest.raises(ActionError, match="cannot be put back"):
        action.undo(before, after)


def test_a_deleted_detector_is_created_again_and_undo_deletes_it(aws):
    guardduty = _client("guardduty")
    action = _action("guardduty.restore_detector", Setup(guardduty, {}, lambda: None, lambda: None, lambda: None))
    before = action.snapshot()
    assert before == {"Detectors": {}}
    action.apply(before)
    after = action.snapshot()
    assert list(after["Detectors"].values()) == ["ENABLED"]
    action.undo(before, after)
    assert guardduty.list_detectors()["DetectorIds"] == []


def test_flow_logs_never_seen_fail_the_step_and_say_so(aws):
    ec2 = _client("ec2")
    action = _action(
        "ec2.restore_flow_logs",
        Setup(
            ec2, {"flow_logs": ["fl-0e17aa62a21d4bbfe"]}, lambda: None, lambda: None, lambda: None, memory=remembering()
        ),
    )
    with pytest.raises(ActionError, match=r"no configuration was ever remembered for flow log.*fl-0e17aa62a21d4bbfe"):
        action.snapshot()


def test_only_public_ingress_to_admin_ports_is_revoked(aws):
    setup = _security_group()
    _remediated("ec2.revoke_public_ingress", setup)
    assert setup.observe() == [("tcp", 22, 22, "10.0.0.0/8"), ("tcp", 443, 443, "0.0.0.0/0")]


def test_a_trust_policy_keeps_its_trusted_principals(aws):
    setup = _trust_policy()
    _remediated("iam.restore_trust_policy", setup)
    assert setup.observe()["Statement"] == [
        TRUST_EC2,
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/ops"}, "Action": "sts:AssumeRole"},
    ]


def test_a_bucket_policy_keeps_its_restricted_statements(aws):
    setup = _bucket_policy()
    _remediated("s3.remove_public_policy_statements", setup)
    assert setup.observe()["Statement"] == [FROM_VPCE]


def test_a_note_calls_nothing_and_says_its_text():
    action = registered_actions()["notify.note"](None, {"text": "Check the instance profile."})
    before = action.snapshot()
    action.apply(before)
    assert action.note == "Check the instance profile." and action.snapshot() == before


# -- "restricted" means pinned to the organization (the same definition as the conditions) ----

OUR_ORG, OTHER_ORG = "o-a1b2c3d4e5", "o-aa111bb222"


def _statement(sid, condition, principal="*"):
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::data-bucket/*",
        "Condition": condition,
    }


def test_the_internet_opened_in_halves_on_admin_ports_is_revoked_and_https_is_left(aws):
    halves = [{"CidrIp": "0.0.0.0/1"}, {"CidrIp": "128.0.0.0/1"}]
    setup = _security_group(
        [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": halves},
            {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": [{"CidrIpv6": "::/1"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": halves},
        ]
    )
    _remediated("ec2.revoke_public_ingress", setup)
    assert setup.observe() == [
        ("tcp", 22, 22, "10.0.0.0/8"),
        ("tcp", 443, 443, "0.0.0.0/1"),
        ("tcp", 443, 443, "128.0.0.0/1"),
    ]


def test_a_bucket_policy_loses_what_strangers_can_use_and_keeps_what_the_organization_pins(aws):
    setup = _bucket_policy()
    ours = _statement("Ours", {"StringEquals": {"aws:PrincipalOrgID": OUR_ORG}})
    open_to_strangers = [
        _statement("OtherOrg", {"StringEquals": {"aws:PrincipalOrgID": OTHER_ORG}}),
        _statement("ForAllValues", {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": [OUR_ORG]}}),
        _statement("Halves", {"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}}),
        _statement("AnyAccountsRole", {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/deploy"}}),
    ]
    setup.unsafe = lambda: setup.client.put_bucket_policy(
        Bucket="data-bucket", Policy=_policy(FROM_VPCE, ours, *open_to_strangers)
    )
    setup.params["trusted_organizations"] = [OUR_ORG]
    _remediated("s3.remove_public_policy_statements", setup)
    assert setup.observe()["Statement"] == [FROM_VPCE, ours]


def test_a_key_policy_loses_what_another_account_can_use_and_keeps_this_accounts(aws):
    setup = _key_policy()
    admin = {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*"}

    def through_s3(sid, account):
        # The key policy of AWS managed keys (KMS developer guide): everyone in one account, through S3.
        return {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:CallerAccount": account}
            },
        }

    setup.unsafe = lambda: setup.client.put_key_policy(
        KeyId=setup.params["key"],
        PolicyName="default",
        Policy=_policy({**admin, "Resource": "*"}, through_s3("Ours", ACCOUNT), through_s3("Theirs", OTHER_ACCOUNT)),
    )
    _remediated("kms.restore_key_policy", setup)
    assert [s["Sid"] for s in json.loads(setup.observe())["Statement"]] == ["Admin", "Ours"]


def test_a_trust_policy_loses_an_open_github_trust_and_keeps_one_pinned_to_a_repository_owner(aws):
    setup = _trust_policy()
    github = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"

    def trust(sub):
        # GitHub's "Configuring OpenID Connect in Amazon Web Services".
        condition = {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}
        return {
            "Effect": "Allow",
            "Principal": {"Federated": github},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {**condition, "StringLike": {"token.actions.githubusercontent.com:sub": sub}},
        }

    org_wide = {
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": OUR_ORG}},
    }
    setup.unsafe = lambda: setup.client.update_assume_role_policy(
        RoleName="app", PolicyDocument=_policy(TRUST_EC2, trust("repo:*"), trust("repo:octo-org/octo-repo:*"), org_wide)
    )
    setup.params["trusted_organizations"] = [OUR_ORG]
    _remediated("iam.restore_trust_policy", setup)
    assert setup.observe()["Statement"] == [TRUST_EC2, trust("repo:octo-org/octo-repo:*"), org_wide]
