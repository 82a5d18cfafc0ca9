"""The Chalice wiring: handlers run through chalice.test.Client against moto."""

from __future__ import annotations

import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.respond.handler import eventbridge_rules
from tests.conftest import envelope, record, stratus_record

pytestmark = pytest.mark.integration


@pytest.fixture
def client(aws, restart):
    # The runtime keeps its responder (and boto3 clients) for the life of a container;
    # each test is a fresh container inside its own moto.
    restart()
    with Client(chalice_app.app) as test_client:
        yield test_client


@pytest.fixture
def stopped_trail(make_trail):
    return make_trail("stratus-red-team-ct-stop-trail-buykxbqejv")


def test_one_rule_per_pattern_all_running_the_same_handler():
    rules = eventbridge_rules(chalice_app.runtime.catalog)
    registered = {
        config.name: config
        for config in chalice_app.app.event_sources
        if config.name not in ("posture_sweep", "heartbeat")
    }
    assert set(registered) == {rule.name for rule in rules}
    for rule in rules:
        assert registered[rule.name].event_pattern == rule.pattern
        assert registered[rule.name].handler_string == "app.respond_to_cloudtrail"


def test_a_real_stop_logging_event_is_remediated_through_the_handler(client, stopped_trail, datasets):
    event = envelope(stratus_record(datasets, "aws.defense-evasion.cloudtrail-stop", "StopLogging"))
    response = client.lambda_.invoke("respond_to_cloudtrail", event)
    assert response.payload["status"] == "handled"
    [incident] = response.payload["incidents"]
    assert incident["playbook"] == "cloudtrail-stop-logging"
    assert incident["state"] == "remediated" and incident["duplicate"] is False
    assert stopped_trail.get_trail_status(Name="stratus-red-team-ct-stop-trail-buykxbqejv")["IsLogging"] is True


def test_a_second_delivery_is_a_duplicate(client, stopped_trail, datasets):
    event = envelope(stratus_record(datasets, "aws.defense-evasion.cloudtrail-stop", "StopLogging"))
    client.lambda_.invoke("respond_to_cloudtrail", event)
    again = client.lambda_.invoke("respond_to_cloudtrail", event)
    assert again.payload["incidents"][0]["duplicate"] is True


def test_a_failed_call_is_skipped(client, stopped_trail):
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, errorCode="AccessDenied"))
    response = client.lambda_.invoke("respond_to_cloudtrail", event)
    assert response.payload["status"] == "skipped" and response.payload["skipped"] == "failed-call"
    assert response.payload["incidents"] == []


@pytest.mark.parametrize(
    "event,reason",
    [
        (
            {
                "detail-type": "AWS API Call via CloudTrail",
                "source": "aws.cloudtrail",
                "detail": {"eventName": "StopLogging"},
            },
            "missing field 'eventID'",
        ),
        (
            envelope(record("StopLogging", "cloudtrail.amazonaws.com"), source="attacker.custom"),
            "source is 'attacker.custom'",
        ),
        ({"hello": "world"}, "detail-type is None"),
        (
            {"detail-type": "AWS API Call via CloudTrail", "source": "aws.s3", "detail": "not a record"},
            "expected a CloudTrail record object, got string",
        ),
    ],
)
def test_malformed_or_spoofed_events_are_rejected_without_an_exception(client, event, reason):
    response = client.lambda_.invoke("respond_to_cloudtrail", event)
    assert response.payload["status"] == "rejected"
    assert reason in response.payload["reason"]


def _member_trail(member):
    from tests.conftest import member_session

    session = member_session(member)
    session.client("s3").create_bucket(Bucket="member-trail-logs")
    cloudtrail = session.client("cloudtrail")
    cloudtrail.create_trail(Name="main", S3BucketName="member-trail-logs")
    return cloudtrail


def _stop_logging_as_role(member, role, session):
    identity = {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "accountId": member,
        "arn": f"arn:aws:sts::{member}:assumed-role/{role}/{session}",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "userName": role, "arn": f"arn:aws:iam::{member}:role/{role}"}
        },
    }
    detail = record(
        "StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, userIdentity=identity, recipientAccountId=member
    )
    return envelope(detail)


@pytest.mark.parametrize(
    "role,session",
    [
        ("trailguard-dev-respond_to_cloudtrail", "trailguard-dev-respond_to_cloudtrail"),  # a function role's name
        ("trailguard-remediator", "trailguard"),  # the member role, its trust rewritten by the account's admin
    ],
)
def test_a_role_named_like_trailguards_in_a_member_account_does_not_switch_it_off(client, aws, role, session, restart):
    """Issue 23's critical finding: a member-account administrator creates a role named like
    one of trailguard's (or takes over the member role) and stops a trail with it. Before,
    the name alone made the call "ours": no incident, no message. It is answered now."""
    # As before the fix, the member role among the names (settings added it to TRAILGUARD_OWN_ROLES).
    stage_roles = frozenset(
        {"trailguard-dev-respond_to_cloudtrail", "trailguard-dev-slack_worker", "trailguard-remediator"}
    )
    restart(own_role_names=stage_roles)
    member = "210987654321"
    cloudtrail = _member_trail(member)
    response = client.lambda_.invoke("respond_to_cloudtrail", _stop_logging_as_role(member, role, session))
    assert response.payload["status"] == "handled", response.payload
    [incident] = response.payload["incidents"]
    assert incident["playbook"] == "cloudtrail-stop-logging" and incident["state"] == "remediated"
    assert cloudtrail.get_trail_status(Name="main")["IsLogging"] is True


def test_the_calls_trailguard_made_through_the_member_role_are_skipped(client, aws):
    """The worker's Undo in a member account stops the trail again through the member role;
    the handler must not start it again: trailguard noted that call's request id."""
    member = "210987654321"
    cloudtrail = _member_trail(member)
    cloudtrail.start_logging(Name="main")
    runtime = chalice_app.runtime
    runtime.clients.client("cloudtrail", member, "us-east-1").stop_logging(Name="main")  # as an Undo would
    [request_id] = runtime.own_calls._ids  # the one write call trailguard made
    event = _stop_logging_as_role(member, "trailguard-remediator", "trailguard")
    event["detail"]["requestID"] = request_id
    response = client.lambda_.invoke("respond_to_cloudtrail", event)
    assert response.payload["status"] == "skipped" and response.payload["skipped"] == "own-identity"
    assert cloudtrail.get_trail_status(Name="main")["IsLogging"] is False


def test_a_record_for_another_account_than_eventbridge_delivered_it_for_is_rejected(client, make_trail):
    """Act only where AWS says the event happened: the envelope's account, set by EventBridge."""
    stopped_trail = make_trail("main")
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    event["account"] = "210987654321"
    response = client.lambda_.invoke("respond_to_cloudtrail", event)
    assert response.payload["status"] == "rejected"
    assert (
        "names account '123456789012' but EventBridge delivered it for account 210987654321"
        in (response.payload["reason"])
    )
    assert stopped_trail.get_trail_status(Name="main")["IsLogging"] is False


# -- "restricted" is decided with the organization's own lists, from settings ---------------------

OTHER_ORG = "o-aa111bb222"


def _organization_only_policy(bucket):
    # The IAM user guide's aws:PrincipalOrgID example: everyone, but only in one organization.
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowGetObject",
                "Principal": {"AWS": "*"},
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": [OTHER_ORG]}},
            }
        ],
    }


@pytest.mark.parametrize("trusted,proposed", [("", True), (OTHER_ORG, False)])
def test_a_bucket_for_everyone_in_one_organization_is_public_unless_it_is_ours(
    client, trusted, proposed, restart, tmp_path
):
    from chalicelib.organization.loader import load_organization

    settings_file = tmp_path / "prod.yaml"
    settings_file.write_text(f"lists:\n  trusted_organizations: [{trusted}]\n")
    restart(organization=load_organization(settings_file))
    request = {"bucketName": "reports", "bucketPolicy": _organization_only_policy("reports")}
    response = client.lambda_.invoke(
        "respond_to_cloudtrail", envelope(record("PutBucketPolicy", "s3.amazonaws.com", request))
    )
    playbooks = {incident["playbook"]: incident["state"] for incident in response.payload["incidents"]}
    assert playbooks == ({"s3-bucket-policy-public": "proposed"} if proposed else {})


def test_ssh_opened_to_the_internet_in_two_halves_is_revoked_through_the_handler(client):
    import boto3

    from tests.conftest import REGION

    ec2 = boto3.client("ec2", region_name=REGION)
    group = ec2.create_security_group(GroupName="bastion", Description="bastion")["GroupId"]
    halves = [{"CidrIp": "0.0.0.0/1"}, {"CidrIp": "128.0.0.0/1"}]
    ec2.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": halves}]
    )
    request = {  # the call as CloudTrail records it (Panther's ipPermissions shape)
        "groupId": group,
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": 22,
                    "toPort": 22,
                    "ipRanges": {"items": [{"cidrIp": "0.0.0.0/1"}, {"cidrIp": "128.0.0.0/1"}]},
                }
            ]
        },
    }
    event = envelope(record("AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", request))
    response = client.lambda_.invoke("respond_to_cloudtrail", event)
    [incident] = response.payload["incidents"]
    assert (incident["playbook"], incident["state"]) == ("ec2-security-group-public-admin-ingress", "remediated")
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    assert [r for r in rules if not r["IsEgress"]] == []
