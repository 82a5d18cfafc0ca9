"""Containment actions (issue 20) beyond the library's harness (tests/actions/test_library.py,
which runs apply, re-apply, undo and undo-after-drift for each): the statement AWS documents
for revoking sessions, the refusals, trailguard's own quarantine policy and group."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest

from chalicelib.actions import ActionError, registered_actions
from chalicelib.actions.base import NOTHING_PROTECTED, ActionContext, Protected
from chalicelib.actions.contain_iam import REVOCATION_POLICY, revocation_cutoff, session_denied
from tests.conftest import ACCOUNT, REGION

pytestmark = pytest.mark.integration

TRUST_EC2 = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)


def _action(name: str, params: dict, protected: Protected = NOTHING_PROTECTED):
    action_class = registered_actions()[name]
    client = boto3.client(action_class.service, region_name=REGION)
    return action_class(client, params, ActionContext(ACCOUNT, REGION, protected=protected))


def _revocation(iam, role: str):
    return iam.get_role_policy(RoleName=role, PolicyName=REVOCATION_POLICY)["PolicyDocument"]


def test_revoking_sessions_writes_aws_s_documented_deny_on_token_issue_time(aws):
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(RoleName="app-server", AssumeRolePolicyDocument=TRUST_EC2)
    action = _action("iam.revoke_role_sessions", {"role": "app-server", "since": "2026-11-26T17:14:09Z"})
    before = action.snapshot()
    assert before["Revocation"] is None and not action.check(before)
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    action.apply(before)
    [statement] = _revocation(iam, "app-server")["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == ["*"] and statement["Resource"] == ["*"]
    cutoff = dt.datetime.fromisoformat(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"])
    assert cutoff >= started
    # What AWS evaluates: a session issued before the cutoff is denied, one issued after is not.
    document = _revocation(iam, "app-server")
    assert session_denied(document, cutoff - dt.timedelta(minutes=5))
    assert not session_denied(document, cutoff + dt.timedelta(seconds=1))
    assert action.note and "are denied every action" in action.note


def test_a_later_misuse_moves_trailguard_s_earlier_revocation_and_undo_puts_it_back(aws):
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(RoleName="app-server", AssumeRolePolicyDocument=TRUST_EC2)
    earlier = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TrailguardRevokeOlderSessions",
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-01-01T00:00:00Z"}},
            }
        ],
    }
    iam.put_role_policy(RoleName="app-server", PolicyName=REVOCATION_POLICY, PolicyDocument=json.dumps(earlier))
    old = _action("iam.revoke_role_sessions", {"role": "app-server", "since": "2025-12-31T00:00:00Z"})
    assert old.check(old.snapshot())  # misuse before the cutoff: already revoked
    action = _action("iam.revoke_role_sessions", {"role": "app-server", "since": "2026-11-26T17:14:09Z"})
    before = action.snapshot()
    assert not action.check(before)  # sessions issued since the earlier cutoff are still valid
    action.apply(before)
    after = action.snapshot()
    assert revocation_cutoff(after["Revocation"]) > revocation_cutoff(earlier)  # type: ignore[operator]
    action.undo(before, after)
    assert _revocation(iam, "app-server") == earlier


@pytest.fixture
def roles(aws):
    iam = boto3.client("iam", region_name=REGION)
    linked = iam.create_service_linked_role(AWSServiceName="elasticbeanstalk.amazonaws.com")["Role"]["RoleName"]
    iam.create_role(
        RoleName="AWSReservedSSO_AdministratorAccess_0123456789abcdef",
        Path="/aws-reserved/sso.amazonaws.com/",
        AssumeRolePolicyDocument=TRUST_EC2,
    )
    iam.create_role(RoleName="trailguard-remediator", AssumeRolePolicyDocument=TRUST_EC2)
    iam.create_role(RoleName="break-glass", AssumeRolePolicyDocument=TRUST_EC2)
    return iam, linked


PROTECTED = Protected(
    own_roles=frozenset({"trailguard-remediator"}),
    break_glass_roles=frozenset({f"arn:aws:iam::{ACCOUNT}:role/break-glass"}),
)


@pytest.mark.parametrize("name", ["iam.revoke_role_sessions", "iam.quarantine_role"])
@pytest.mark.parametrize(
    ("role", "reason"),
    [
        (None, "is a service-linked role"),
        ("AWSReservedSSO_AdministratorAccess_0123456789abcdef", "is an IAM Identity Center permission-set role"),
        ("trailguard-remediator", "is trailguard's own"),
        ("break-glass", "is a break-glass role"),
    ],
)
def test_containment_refuses_roles_it_must_not_touch_saying_why(roles, name, role, reason):
    iam, linked = roles
    role = role or linked
    params = {"role": role, "since": "2026-11-26T17:14:09Z"} if name == "iam.revoke_role_sessions" else {"role": role}
    action = _action(name, params, PROTECTED)
    before = action.snapshot()
    with pytest.raises(ActionError, match=f"refused: role {role} {reason}.*nothing was changed"):
        action.apply(before)
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == []
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []


def test_the_quarantine_policy_is_trailguard_s_deny_all_and_a_changed_one_is_not_attached(aws):
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="mallory")
    iam.create_user(UserName="eve")
    action = _action("iam.quarantine_user", {"user": "mallory"})
    action.apply(action.snapshot())
    arn = f"arn:aws:iam::{ACCOUNT}:policy/trailguard/trailguard-quarantine"
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document["Statement"] == [{"Sid": "TrailguardQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}]
    opened = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(opened), SetAsDefault=True)
    second = _action("iam.quarantine_user", {"user": "eve"})
    with pytest.raises(ActionError, match="is not trailguard's deny-all any more"):
        second.apply(second.snapshot())
    assert iam.list_attached_user_policies(UserName="eve")["AttachedPolicies"] == []


def test_the_quarantine_group_has_no_rule_and_is_made_once_per_vpc(aws):
    ec2 = boto3.client("ec2", region_name=REGION)
    launched = ec2.run_instances(ImageId="ami-12c6146b", MinCount=2, MaxCount=2)["Instances"]
    groups = set()
    for instance in launched:
        action = _action("ec2.isolate_instance", {"instance": instance["InstanceId"]})
        action.apply(action.snapshot())
        groups.add(action.snapshot()["QuarantineGroup"])
    [group] = groups
    described = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    assert described["GroupName"] == "trailguard-quarantine"
    assert described["IpPermissions"] == [] and described["IpPermissionsEgress"] == []


def test_the_stage_protects_its_own_roles_and_the_settings_break_glass_roles(aws, restart):
    """What the runtime hands every action (`ActionBinder`): the roles containment refuses."""
    from chalicelib.organization.loader import load_organization
    from chalicelib.settings import PROJECT_ROOT

    organization = load_organization(PROJECT_ROOT / "settings" / "example.yaml")
    runtime = restart(organization=organization, stage="dev", member_role="trailguard-remediator")
    protected = runtime.protected
    assert "arn:aws:iam::111122223333:role/break-glass" in protected.break_glass_roles
    assert {"trailguard-remediator", "trailguard-dev-slack_worker", "trailguard-dev-respond_to_cloudtrail"} <= (
        protected.own_roles
    )
    action = runtime.incidents.steps.actions.bind(
        "iam.revoke_role_sessions",
        {"role": "break-glass", "since": "2026-01-01T00:00:00Z"},
        account=ACCOUNT,
        region=REGION,
    )
    assert action.context.protected is protected


# -- forensics: the disks kept, the instance kept out of its Auto Scaling group ---------------


def _evidence(ec2, incident: str):
    snapshots = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:trailguard:incident", "Values": [incident]}]
    )["Snapshots"]
    return {s["VolumeId"]: {t["Key"]: t["Value"] for t in s["Tags"]} for s in snapshots}


def test_every_attached_volume_is_snapshotted_once_tagged_with_the_incident_and_undo_keeps_them(aws):
    ec2 = boto3.client("ec2", region_name=REGION)
    instance = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "us-east-1a"}
    )["Instances"][0]["InstanceId"]
    data = ec2.create_volume(Size=8, AvailabilityZone="us-east-1a")["VolumeId"]
    ec2.attach_volume(VolumeId=data, InstanceId=instance, Device="/dev/sdf")
    action_class = registered_actions()["ec2.snapshot_volumes"]
    context = ActionContext(ACCOUNT, REGION, incident_id="inc-0123456789abcdef0123")
    action = action_class(ec2, {"instance": instance}, context)

    before = action.snapshot()
    assert len(before["Volumes"]) == 2 and data in before["Volumes"] and before["Snapshots"] == {}
    assert not action.check(before)
    action.apply(before)
    after = action.snapshot()
    assert action.check(after) and sorted(after["Snapshots"]) == before["Volumes"]
    evidence = _evidence(ec2, "inc-0123456789abcdef0123")
    assert evidence[data] == {
        "trailguard:incident": "inc-0123456789abcdef0123",
        "trailguard:instance": instance,
        "trailguard:volume": data,
        "trailguard:purpose": "forensics",
    }
    again = action_class(ec2, {"instance": instance}, context)
    assert again.snapshot() == after and again.check(after)  # a retry takes no second snapshot

    action.undo(before, after)

    assert _evidence(ec2, "inc-0123456789abcdef0123").keys() == evidence.keys()  # evidence is never deleted
    assert "kept as evidence" in (action.note or "")
    other = action_class(ec2, {"instance": instance}, ActionContext(ACCOUNT, REGION, incident_id="inc-other"))
    assert not other.check(other.snapshot())  # another incident keeps its own evidence


def test_an_instance_in_no_auto_scaling_group_is_already_safe(aws):
    ec2 = boto3.client("ec2", region_name=REGION)
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    action = _action("autoscaling.detach_instance", {"instance": instance})
    assert action.snapshot() == {"Instance": instance, "Group": None} and action.check(action.snapshot())


def _grouped(maximum: int):
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="web", ImageId="ami-12c6146b", InstanceType="t2.micro"
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web",
        LaunchConfigurationName="web",
        MinSize=1,
        MaxSize=maximum,
        DesiredCapacity=1,
        AvailabilityZones=[f"{REGION}a"],
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    return autoscaling, group["Instances"][0]["InstanceId"]


def test_detaching_keeps_the_group_s_capacity_so_it_launches_a_replacement(aws):
    autoscaling, instance = _grouped(maximum=2)
    action = _action("autoscaling.detach_instance", {"instance": instance})
    action.apply(action.snapshot())
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 1 and instance not in [i["InstanceId"] for i in group["Instances"]]
    assert len(group["Instances"]) == 1  # the replacement


def test_undo_of_a_detach_is_refused_when_the_group_has_no_room_or_is_gone(aws):
    from chalicelib.actions import UndoRefused

    autoscaling, instance = _grouped(maximum=1)
    action = _action("autoscaling.detach_instance", {"instance": instance})
    before = action.snapshot()
    action.apply(before)
    after = action.snapshot()
    with pytest.raises(UndoRefused, match=r"has no room for .*desired 1, maximum 1.*raise its maximum size"):
        action.undo(before, after)
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName="web", ForceDelete=True)
    with pytest.raises(UndoRefused, match="the Auto Scaling group web no longer exists"):
        action.undo(before, after)
