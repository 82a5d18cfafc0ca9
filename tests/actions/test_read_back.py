"""Every action, on moto: a change that does not hold fails the step.

AWS answers a write call, and the resource read back is still not safe: the attacker put
it back at once, or the call changed nothing (a multi-Region key AWS kept scheduled, a
setting another guard overrode). The step runner reads the resource back after every
apply and fails the step with the reason; it never reports success on the word of the
call that made it (DESIGN: never report success that was not achieved).

Each test makes every write call of the action's client a no-op that AWS answered with
200, runs the action through the step runner, and checks that the incident failed saying
why. Without the read-back the same run ends `remediated`: each of these tests fails.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import boto3
import pytest

from chalicelib.actions import registered_actions
from chalicelib.actions.base import ActionContext
from chalicelib.aws import retrying
from chalicelib.events.record import CloudTrailEvent
from chalicelib.events.synthetic import api_call_record
from chalicelib.incidents.model import Incident, State, StepStatus
from chalicelib.incidents.steps import StepRunner
from chalicelib.memory import trails
from chalicelib.playbooks.plan import PlannedStep
from tests.actions.test_library import CASES, Setup, _action, _interface_groups_are_replaced  # noqa: F401 (autouse)
from tests.conftest import ACCOUNT, MALLORY, REGION, remembering

pytestmark = pytest.mark.integration

READS = ("Get", "Describe", "List", "Head")
ANSWERS: dict[str, dict[str, Any]] = {
    "CreateTrail": {"TrailARN": f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/main"},
    "CreateFlowLogs": {"FlowLogIds": ["fl-0000000000000000a"]},
    "CreateSnapshot": {"SnapshotId": "snap-0000000000000000a"},
}
"""What a no-op write answers where the action reads the answer (what it created)."""


class _Answered:
    """The HTTP side of an answer botocore takes without sending the request."""

    status_code = 200
    headers: Mapping[str, str] = {}


def _writes_do_not_hold(client: Any) -> list[str]:
    """Make every write call of `client` answer 200 and change nothing; returns the calls made."""
    made: list[str] = []

    def answer(model: Any, **_: Any) -> tuple[_Answered, dict[str, Any]] | None:
        if model.name.startswith(READS):
            return None
        made.append(model.name)
        return _Answered(), dict(ANSWERS.get(model.name, {}))

    client.meta.events.register("before-call.*.*", answer)
    return made


class _Bound:
    """A binder that hands the step runner the action already made for the test."""

    def __init__(self, action: Any) -> None:
        self.action = action

    def bind(self, action: str, params: Mapping[str, Any], **_: Any) -> Any:
        return self.action


def _incident(name: str, params: dict[str, Any]) -> Incident:
    event = CloudTrailEvent.from_record(
        api_call_record("Test", "test.amazonaws.com", {}, identity=MALLORY, region=REGION)
    )
    return Incident(
        id="inc-0123456789abcdef0123",
        playbook_id="read-back",
        playbook_version=1,
        title="read back",
        severity="high",
        mode="auto",
        event=event.summary(),
        state=State.REMEDIATING,
        plan=[PlannedStep(name, params)],
    )


def _run(action: Any) -> Incident:
    runner = StepRunner(_Bound(action), save=lambda incident: None, clock=lambda: dt.datetime.now(dt.UTC), undone=print)
    return runner.remediate(_incident(action.name, action.params))


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    """Reads AWS documents as lagging are retried; here without waiting between them."""
    monkeypatch.setattr(retrying, "MAX_WAIT_SECONDS", 0)


# -- the actions the library's harness does not set up --------------------------------------


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def _stopped_trail() -> Setup:
    cloudtrail = _client("cloudtrail")
    _client("s3").create_bucket(Bucket="main-logs")
    cloudtrail.create_trail(Name="main", S3BucketName="main-logs")
    return Setup(cloudtrail, {"trail": "main"}, unsafe=lambda: None, observe=lambda: None, tamper=lambda: None)


def _deleted_trail() -> Setup:
    setup = _stopped_trail()
    memory = remembering()
    trails.remember(memory, setup.client, "main", ACCOUNT, REGION)
    setup.client.delete_trail(Name="main")
    setup.memory = memory
    return setup


def _blinded_trail() -> Setup:
    setup = _stopped_trail()
    setup.client.put_event_selectors(TrailName="main", EventSelectors=[{"IncludeManagementEvents": False}])
    return setup


def _disabled_key() -> Setup:
    kms = _client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key)
    return Setup(kms, {"key": key}, unsafe=lambda: None, observe=lambda: None, tamper=lambda: None)


def _key_pending_deletion() -> Setup:
    kms = _client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    return Setup(kms, {"key": key}, unsafe=lambda: None, observe=lambda: None, tamper=lambda: None)


def _public_bucket_acl() -> Setup:
    s3 = _client("s3")
    s3.create_bucket(Bucket="data-bucket")
    s3.put_bucket_acl(Bucket="data-bucket", ACL="public-read")
    return Setup(s3, {"bucket": "data-bucket"}, unsafe=lambda: None, observe=lambda: None, tamper=lambda: None)


def _login_profile() -> Setup:
    iam = _client("iam")
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Sup3r-secret-pass!")
    return Setup(iam, {"user": "alice"}, unsafe=lambda: None, observe=lambda: None, tamper=lambda: None)


def _trail_without_insights() -> Setup:
    return _stopped_trail()


def _instance_beside_a_quarantine_group() -> Setup:
    """The library's case, its VPC's quarantine group already made (by an earlier isolation):
    what a no-op write cannot create, the read-back needs."""
    setup = CASES["ec2.isolate_instance"]()
    ec2 = setup.client
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    ec2.create_security_group(GroupName="trailguard-quarantine", Description="quarantine", VpcId=vpc)
    return setup


def _instance_with_a_volume() -> Setup:
    ec2 = _client("ec2")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return Setup(ec2, {"instance": instance}, unsafe=lambda: None, observe=lambda: None, tamper=lambda: None)


ELSEWHERE = {
    "ec2.isolate_instance": _instance_beside_a_quarantine_group,
    "ec2.snapshot_volumes": _instance_with_a_volume,
    "cloudtrail.start_logging": _stopped_trail,
    "cloudtrail.restore_insight_selectors": _trail_without_insights,
    "cloudtrail.restore_trail": _deleted_trail,
    "cloudtrail.restore_event_selectors": _blinded_trail,
    "kms.enable_key": _disabled_key,
    "kms.cancel_key_deletion": _key_pending_deletion,
    "s3.remove_public_acl": _public_bucket_acl,
    "iam.delete_login_profile": _login_profile,
}
"""Set up here: the library tests these actions on their own."""

NO_RESOURCE = {"notify.note": "it calls no AWS service: its note is what it does"}


def _unsafe(name: str) -> Setup:
    if name in ELSEWHERE:
        return ELSEWHERE[name]()
    setup = CASES[name]()
    setup.remember()
    setup.unsafe()
    return setup


def test_every_action_is_read_back_here():
    assert set(registered_actions()) == set(CASES) | set(ELSEWHERE) | set(NO_RESOURCE)


@pytest.mark.parametrize("name", sorted(set(registered_actions()) - set(NO_RESOURCE)))
def test_a_change_that_does_not_hold_fails_the_step(name, aws):
    setup = _unsafe(name)
    action = _action(name, setup)
    assert not action.check(action.snapshot()), "the resource must start unsafe"
    made = _writes_do_not_hold(setup.client)

    incident = _run(action)

    assert made, f"{name} made no write call"
    assert incident.state is State.FAILED and incident.steps[0].status is StepStatus.FAILED, incident.steps
    assert "applied, but the resource read back is still not safe" in (incident.error or "")


@pytest.mark.parametrize("name", sorted(ELSEWHERE))
def test_the_same_change_that_holds_is_reported_done(name, aws):
    """The control: with the write calls made, the same step ends applied (so the tests above
    fail on the read-back, not on the set-up)."""
    setup = _unsafe(name)
    incident = _run(_action(name, setup))
    assert incident.state is State.REMEDIATED and incident.steps[0].status is StepStatus.APPLIED, incident.error


def test_a_multi_region_primary_pending_replica_deletion_is_cancelled(aws):
    """KMS API reference (ScheduleKeyDeletion): a multi-Region primary with replicas is in
    PendingReplicaDeletion, and CancelKeyDeletion cancels it. moto knows only PendingDeletion,
    so the key reads as AWS would show it until the cancellation."""
    kms = _client("kms")
    key = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=30)
    cancelled: list[str] = []

    def as_aws_shows_it(parsed: dict[str, Any], **_: Any) -> None:
        if not cancelled and parsed.get("KeyMetadata", {}).get("KeyState") == "PendingDeletion":
            parsed["KeyMetadata"]["KeyState"] = "PendingReplicaDeletion"
            parsed["KeyMetadata"].pop("DeletionDate", None)

    kms.meta.events.register("after-call.kms.DescribeKey", as_aws_shows_it)
    kms.meta.events.register("after-call.kms.CancelKeyDeletion", lambda **_: cancelled.append("done"))
    action = registered_actions()["kms.cancel_key_deletion"](
        kms, {"key": key, "enable": True}, ActionContext(ACCOUNT, REGION)
    )
    assert action.snapshot()["KeyState"] == "PendingReplicaDeletion"
    incident = _run(action)
    assert incident.state is State.REMEDIATED and cancelled
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
