"""The demo's story: a small account, an attacker's calls, and the buttons people press.

Each attack is a real API call against the local AWS; `read` reads the resource back from
it, so what the story shows before and after is what AWS says, not what trailguard thinks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
CHANNEL = "#security-alerts"
ON_CALL = "U0ONCALL"
DEVELOPER = "U0DEVELOPER"
TRAIL, TRAIL_BUCKET = "org-trail", "org-trail-logs"
OTHER_REGION = "eu-west-1"
OTHER_TRAIL, OTHER_TRAIL_BUCKET = "eu-trail", "eu-trail-logs"
"""A region with its own trail, which the heartbeat chapter blinds."""
HEARTBEAT_ROLE = "trailguard-demo-heartbeat"
"""The heartbeat's role, as the demo's stage names it among its own."""
CUSTOMER_BUCKET, REPORTS_BUCKET = "customer-data", "quarterly-reports"


def _user(name: str, key: str) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": f"AIDA{key}",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
        "accountId": ACCOUNT,
        "accessKeyId": f"AKIA{key}",
        "userName": name,
    }


ADMIN = _user("platform-admin", "DEMOPLATFORMADMIN")
ATTACKER = _user("mallory", "DEMOATTACKER")

Clients = dict[str, Any]
"""boto3 clients by service name, plus the ids the setup created (`payments_key`, `web_sg`...)."""


def set_up(c: Clients) -> None:
    """The account before the attack, made by the platform team (each call is recorded)."""
    c["s3"].create_bucket(Bucket=TRAIL_BUCKET)
    c["cloudtrail"].create_trail(
        Name=TRAIL, S3BucketName=TRAIL_BUCKET, IsMultiRegionTrail=True, EnableLogFileValidation=True
    )
    c["cloudtrail"].start_logging(Name=TRAIL)
    c["payments_key"] = c["kms"].create_key(Description="payments data")["KeyMetadata"]["KeyId"]
    c["backups_key"] = c["kms"].create_key(Description="backups")["KeyMetadata"]["KeyId"]
    c["s3"].create_bucket(Bucket=CUSTOMER_BUCKET)
    c["s3"].create_bucket(Bucket=REPORTS_BUCKET)
    vpc = c["ec2"].create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    c["web_sg"] = c["ec2"].create_security_group(GroupName="web", Description="web servers", VpcId=vpc)["GroupId"]


def describe_account(c: Clients) -> list[str]:
    return [
        f"trail {TRAIL} ({trail_state(c)}, to s3://{TRAIL_BUCKET}), KMS keys for payments and backups "
        f"({key_state('payments_key')(c)}),",
        f"private buckets {CUSTOMER_BUCKET} and {REPORTS_BUCKET}, security group web {c['web_sg']} ({ssh_state(c)})",
    ]


# -- what the story reads back from AWS ---------------------------------------------------------


def trail_state(c: Clients) -> str:
    trails = [t["Name"] for t in c["cloudtrail"].describe_trails()["trailList"]]
    if TRAIL not in trails:
        return "DELETED"
    return "logging" if c["cloudtrail"].get_trail_status(Name=TRAIL)["IsLogging"] else "NOT logging"


def key_state(key: str) -> Callable[[Clients], str]:
    def read(c: Clients) -> str:
        metadata = c["kms"].describe_key(KeyId=c[key])["KeyMetadata"]
        state = metadata["KeyState"]
        return f"{state} (deletion {metadata['DeletionDate']:%Y-%m-%d})" if state == "PendingDeletion" else state

    return read


def acl_state(c: Clients) -> str:
    grants = c["s3"].get_bucket_acl(Bucket=CUSTOMER_BUCKET)["Grants"]
    return (
        "PUBLIC (everyone can list it)" if any("AllUsers" in g["Grantee"].get("URI", "") for g in grants) else "private"
    )


def ssh_state(c: Clients) -> str:
    groups = c["ec2"].describe_security_groups(GroupIds=[c["web_sg"]])["SecurityGroups"]
    open_to_all = [
        p
        for p in groups[0]["IpPermissions"]
        if p.get("FromPort") == 22 and any(r["CidrIp"] == "0.0.0.0/0" for r in p.get("IpRanges", []))
    ]
    return "SSH OPEN to 0.0.0.0/0" if open_to_all else "no SSH from the internet"


def policy_state(c: Clients) -> str:
    try:
        policy = json.loads(c["s3"].get_bucket_policy(Bucket=REPORTS_BUCKET)["Policy"])
    except c["s3"].exceptions.ClientError:
        return "private (no policy)"
    public = [s for s in policy["Statement"] if s.get("Principal") in ("*", {"AWS": "*"}) and not s.get("Condition")]
    kept = len(policy["Statement"])
    return "PUBLIC (anyone can read)" if public else f"private ({kept} statement{'s' if kept != 1 else ''} kept)"


# -- the attack ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    title: str
    call: Callable[[Clients], Any]
    read: Callable[[Clients], str]
    expected: str
    """The resource's state once trailguard has answered."""
    expected_incident: str
    """The incident's state once trailguard has answered."""


PUBLIC_READ_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InternalReaders",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{REPORTS_BUCKET}/*",
            },
            {
                "Sid": "EveryoneReads",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{REPORTS_BUCKET}/*",
            },
        ],
    }
)

ATTACKS = (
    Attack(
        "stops the organization's trail",
        lambda c: c["cloudtrail"].stop_logging(Name=TRAIL),
        trail_state,
        "logging",
        "remediated",
    ),
    Attack(
        "disables the payments key",
        lambda c: c["kms"].disable_key(KeyId=c["payments_key"]),
        key_state("payments_key"),
        "Enabled",
        "remediated",
    ),
    Attack(
        "schedules the backups key for deletion",
        lambda c: c["kms"].schedule_key_deletion(KeyId=c["backups_key"], PendingWindowInDays=7),
        key_state("backups_key"),
        "Enabled",
        "remediated",
    ),
    Attack(
        "makes the customer bucket public-read",
        lambda c: c["s3"].put_bucket_acl(Bucket=CUSTOMER_BUCKET, ACL="public-read"),
        acl_state,
        "private",
        "remediated",
    ),
    Attack(
        "opens SSH on the web servers to the world",
        lambda c: c["ec2"].authorize_security_group_ingress(
            GroupId=c["web_sg"],
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        ),
        ssh_state,
        "no SSH from the internet",
        "remediated",
    ),
    Attack(
        "deletes the organization's trail",
        lambda c: c["cloudtrail"].delete_trail(Name=TRAIL),
        trail_state,
        "logging",
        "remediated",
    ),
    Attack(
        "adds a statement to the reports bucket's policy letting anyone read it",
        lambda c: c["s3"].put_bucket_policy(Bucket=REPORTS_BUCKET, Policy=PUBLIC_READ_POLICY),
        policy_state,
        "PUBLIC (anyone can read)",
        "proposed",
    ),
)


# -- the buttons people press -------------------------------------------------------------------


@dataclass(frozen=True)
class Press:
    title: str
    transition: str
    attack: int
    """Which attack's incident (its index in ATTACKS)."""
    user: str
    expected_status: int
    expected: str
    expected_incident: str
    forged: bool = False


PRESSES = (
    Press(
        "the on-call engineer: the payments key is being retired on purpose; presses Undo",
        "undo",
        1,
        ON_CALL,
        200,
        "Disabled",
        "undone",
    ),
    Press(
        "the on-call engineer: the reports bucket must not be public; presses Approve",
        "approve",
        6,
        ON_CALL,
        200,
        "private (1 statement kept)",
        "remediated",
    ),
    Press(
        "a developer who is not an approver presses Undo on the SSH fix",
        "undo",
        4,
        DEVELOPER,
        200,
        "no SSH from the internet",
        "remediated",
    ),
    Press(
        "a forged request: Undo on the trail, signed with a guessed secret",
        "undo",
        0,
        ON_CALL,
        401,
        "logging",
        "remediated",
        forged=True,
    ),
)


# -- operating it: an exception, and the kill switch ----------------------------------------------

MIGRATION = "the web servers' SSH stays open during this week's data-center migration (CHG-4411)"
"""Why the on-call engineer marks the SSH change as expected."""
FREEZE = "change freeze: the quarter's close"
"""Why the security lead pauses trailguard."""


def open_ssh(c: Clients) -> Any:
    return c["ec2"].authorize_security_group_ingress(
        GroupId=c["web_sg"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )


EXPECTED_SSH = Attack(
    "opens SSH again, as the migration needs", open_ssh, ssh_state, "SSH OPEN to 0.0.0.0/0", "notified"
)
"""The change marked as expected, made again (by platform-admin): told, not acted on."""
PAUSED_STOP = Attack(
    "stops the organization's trail while trailguard is paused",
    lambda c: c["cloudtrail"].stop_logging(Name=TRAIL),
    trail_state,
    "NOT logging",
    "simulated",
)
RESUMED_STOP = Attack(
    "stops the trail again, after the resume",
    lambda c: c["cloudtrail"].stop_logging(Name=TRAIL),
    trail_state,
    "logging",
    "remediated",
)


# -- a detector's verdict: stolen instance credentials, contained on approval ----------------------

APP_ROLE = "app-server"
"""The web servers' instance role, whose credentials the attacker copied off an instance."""
STOLEN_SESSION_ISSUED = "2026-11-26T17:05:00Z"
"""When the instance's session the attacker copied was issued (before the finding, before the revocation)."""


def stolen_credentials_finding(now: str, finding_id: str) -> dict[str, Any]:
    """GuardDuty's "credentials of an instance role used outside AWS" finding, in the shape
    tests/data/findings documents (a reconstruction from GuardDuty's documentation), as
    EventBridge delivers it, about `APP_ROLE` in the demo account."""
    detail = {
        "schemaVersion": "2.0",
        "accountId": ACCOUNT,
        "region": REGION,
        "partition": "aws",
        "id": finding_id,
        "arn": f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/d4b0/finding/{finding_id}",
        "type": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        "resource": {
            "resourceType": "AccessKey",
            "accessKeyDetails": {
                "accessKeyId": "ASIAQXAMPLE7STOLEN01",
                "principalId": "AROAQXAMPLEAPPROLE01:i-0a1b2c3d4e5f67890",
                "userName": APP_ROLE,
                "userType": "AssumedRole",
            },
        },
        "service": {
            "serviceName": "guardduty",
            "action": {
                "actionType": "AWS_API_CALL",
                "awsApiCallAction": {
                    "api": "ListBuckets",
                    "serviceName": "s3.amazonaws.com",
                    "callerType": "Remote IP",
                    "remoteIpDetails": {"ipAddressV4": "203.0.113.77"},
                },
            },
            "archived": False,
            "count": 3,
        },
        "severity": 8,
        "createdAt": now,
        "updatedAt": now,
        "title": f"Credentials for instance role {APP_ROLE} used from external IP address.",
    }
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d16de",
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": ACCOUNT,
        "time": now,
        "region": REGION,
        "resources": [],
        "detail": detail,
    }


def app_role_sessions(c: Clients) -> str:
    """Whether the copied session still works, as AWS would judge it by the revocation
    statement (moto does not evaluate IAM policies: `contain_iam.session_denied` checks the
    statement's one condition, aws:TokenIssueTime, as AWS documents it)."""
    import datetime as dt

    from chalicelib.actions.contain_iam import REVOCATION_POLICY, session_denied

    iam = c["iam"]
    try:
        document = iam.get_role_policy(RoleName=APP_ROLE, PolicyName=REVOCATION_POLICY)["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return "stolen session VALID"
    stolen = dt.datetime.fromisoformat(STOLEN_SESSION_ISSUED)
    return "stolen session refused" if session_denied(document, stolen) else "stolen session VALID"


STOLEN_CREDENTIALS = Attack(
    "uses the web servers' instance credentials from outside AWS (GuardDuty reports it)",
    lambda c: None,
    app_role_sessions,
    "stolen session refused",
    "remediated",
)
