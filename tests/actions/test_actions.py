"""Each action against moto: snapshot, apply, re-apply (no change), undo, undo refused.

Where moto is more lenient than AWS (it enables a key pending deletion; it accepts public
ACLs that AWS would refuse), the tests also check the calls sent and their order.
"""

from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.actions import ActionError, UndoRefused, registered_actions
from chalicelib.aws.quirks import ALL_USERS, AUTHENTICATED_USERS
from tests.conftest import REGION

pytestmark = pytest.mark.unit


def _action(name, client, **params):
    action_class = registered_actions()[name]
    defaults = {p.name: p.default for p in action_class.parameters if not p.required}
    return action_class(client, {**defaults, **params})


def _remediate(action):
    """The executor's sequence: snapshot, check, apply, snapshot."""
    before = action.snapshot()
    assert not action.check(before)
    action.apply(before)
    after = action.snapshot()
    assert action.check(after)
    return before, after


@pytest.mark.parametrize("name", sorted(registered_actions()))
def test_every_action_declares_its_contract(name):
    action = registered_actions()[name]
    assert name == action.name and "." in name
    assert all(":" in p for p in action.permissions)
    assert bool(action.permissions) == bool(action.service)  # only an action that calls nothing needs nothing
    assert ("iam:PassRole" in action.permissions) == bool(action.passes_role_to)
    assert "Example:" in (action.__doc__ or "") and f"action: {name}" in action.__doc__


@pytest.mark.parametrize("name", sorted(registered_actions()))
def test_every_docstring_example_is_a_valid_playbook_step(name, tmp_path):
    """The examples become the reference documentation: each must load as written."""
    import textwrap

    from chalicelib.playbooks.loader import load_playbook

    action = registered_actions()[name]
    example = textwrap.dedent(action.__doc__.split("Example:", 1)[1]).strip()
    path = tmp_path / "example.yaml"
    path.write_text(
        "id: example\ntitle: Example\nseverity: low\nmode: dry-run\n"
        "when: {source: example.amazonaws.com, events: [Example]}\n" + example + "\n"
    )
    [step] = load_playbook(path).steps
    assert step.action is action


# -- cloudtrail.start_logging ----------------------------------------------------------------


@pytest.fixture
def trail(aws):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="trail-logs")
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    cloudtrail.create_trail(Name="main", S3BucketName="trail-logs")
    return cloudtrail


def test_start_logging(trail, calls):
    calls.attach(trail)
    action = _action("cloudtrail.start_logging", trail, trail="main")
    before, after = _remediate(action)
    assert before == {"Trail": "main", "IsLogging": False}
    assert after == {"Trail": "main", "IsLogging": True}
    assert trail.get_trail_status(Name="main")["IsLogging"] is True
    assert calls.writes() == ["StartLogging"]


def test_start_logging_again_changes_nothing(trail, calls):
    trail.start_logging(Name="main")
    calls.attach(trail)
    action = _action("cloudtrail.start_logging", trail, trail="main")
    assert action.check(action.snapshot())
    assert calls.writes() == []


def test_start_logging_undo_stops_the_trail_again(trail):
    action = _action("cloudtrail.start_logging", trail, trail="main")
    before, after = _remediate(action)
    action.undo(before, after)
    assert action.snapshot() == before


def test_start_logging_undo_refused_when_the_trail_changed(trail, calls):
    action = _action("cloudtrail.start_logging", trail, trail="main")
    before, after = _remediate(action)
    trail.stop_logging(Name="main")  # someone else stopped it meanwhile
    calls.attach(trail)
    with pytest.raises(UndoRefused, match="IsLogging: True -> False"):
        action.undo(before, after)
    assert calls.writes() == []


# -- kms.enable_key --------------------------------------------------------------------------


@pytest.fixture
def kms(aws):
    return boto3.client("kms", region_name=REGION)


def test_enable_key(kms, calls):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key)
    calls.attach(kms)
    action = _action("kms.enable_key", kms, key=key)
    before, after = _remediate(action)
    assert (before["KeyState"], after["KeyState"]) == ("Disabled", "Enabled")
    assert calls.writes() == ["EnableKey"]
    assert action.check(action.snapshot())  # re-apply: nothing to do


def test_enable_key_undo_and_refusal(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key)
    action = _action("kms.enable_key", kms, key=key)
    before, after = _remediate(action)
    action.undo(before, after)
    assert action.snapshot() == before
    # Enabled again by someone else, then scheduled for deletion: undo must not touch it.
    kms.enable_key(KeyId=key)
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    with pytest.raises(UndoRefused, match="KeyState: 'Enabled' -> 'PendingDeletion'"):
        action.undo(before, after)


def test_enable_key_refuses_a_key_pending_deletion_as_aws_does(kms, calls):
    # moto would enable it; AWS refuses (KMSInvalidStateException): the deletion must be cancelled first.
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    calls.attach(kms)
    action = _action("kms.enable_key", kms, key=key)
    state = action.snapshot()
    assert not action.check(state)
    with pytest.raises(ActionError, match="pending deletion"):
        action.apply(state)
    assert calls.writes() == []


# -- kms.cancel_key_deletion -----------------------------------------------------------------


def test_cancel_key_deletion_cancels_then_enables(kms, calls):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=20)
    calls.attach(kms)
    action = _action("kms.cancel_key_deletion", kms, key=key)
    before, after = _remediate(action)
    assert before["KeyState"] == "PendingDeletion" and before["DeletionDate"]
    assert after == {**before, "KeyState": "Enabled", "DeletionDate": None}
    # AWS leaves a cancelled key Disabled and refuses EnableKey before the cancel: order matters.
    assert calls.writes() == ["CancelKeyDeletion", "EnableKey"]


def test_cancel_key_deletion_again_changes_nothing(kms, calls):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    calls.attach(kms)
    action = _action("kms.cancel_key_deletion", kms, key=key)
    assert action.check(action.snapshot())
    assert calls.writes() == []


def test_cancel_key_deletion_can_leave_the_key_disabled(kms, calls):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    calls.attach(kms)
    action = _action("kms.cancel_key_deletion", kms, key=key, enable=False)
    _before, after = _remediate(action)
    assert after["KeyState"] == "Disabled"
    assert calls.writes() == ["CancelKeyDeletion"]


def test_cancel_key_deletion_undo_schedules_the_deletion_again(kms, calls):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=20)
    action = _action("kms.cancel_key_deletion", kms, key=key)
    before, after = _remediate(action)
    calls.attach(kms)
    action.undo(before, after)
    restored = action.snapshot()
    assert restored["KeyState"] == "PendingDeletion" and restored["DeletionDate"]
    assert calls.writes() == ["ScheduleKeyDeletion"]
    assert calls.calls.count("ScheduleKeyDeletion") == 1


def test_cancel_key_deletion_undo_refused_when_the_key_changed(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=20)
    action = _action("kms.cancel_key_deletion", kms, key=key)
    before, after = _remediate(action)
    kms.disable_key(KeyId=key)
    with pytest.raises(UndoRefused):
        action.undo(before, after)
    assert action.snapshot()["KeyState"] == "Disabled"


def test_remaining_window_stays_within_what_kms_accepts():
    import datetime as dt

    from chalicelib.actions.kms import _remaining_window

    now = dt.datetime.now(dt.UTC)
    assert _remaining_window((now + dt.timedelta(days=20, hours=1)).isoformat()) == 21
    assert _remaining_window((now + dt.timedelta(days=2)).isoformat()) == 7
    assert _remaining_window((now + dt.timedelta(days=90)).isoformat()) == 30
    assert _remaining_window(None) == 30


# -- s3.remove_public_acl --------------------------------------------------------------------


OTHER_ACCOUNT = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"


@pytest.fixture
def public_bucket(aws):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="exposed")
    owner = s3.get_bucket_acl(Bucket="exposed")["Owner"]
    s3.put_bucket_acl(
        Bucket="exposed",
        AccessControlPolicy={
            "Owner": owner,
            "Grants": [
                {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
                {"Grantee": {"Type": "CanonicalUser", "ID": OTHER_ACCOUNT}, "Permission": "READ"},
                {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
                {"Grantee": {"Type": "Group", "URI": AUTHENTICATED_USERS}, "Permission": "WRITE"},
            ],
        },
    )
    return s3


def _grantees(s3, bucket="exposed"):
    return sorted(
        (g["Grantee"].get("URI") or g["Grantee"].get("ID"), g["Permission"])
        for g in s3.get_bucket_acl(Bucket=bucket)["Grants"]
    )


def test_remove_public_acl_keeps_every_other_grant(public_bucket, calls):
    owner = public_bucket.get_bucket_acl(Bucket="exposed")["Owner"]["ID"]
    calls.attach(public_bucket)
    action = _action("s3.remove_public_acl", public_bucket, bucket="exposed")
    before, after = _remediate(action)
    assert _grantees(public_bucket) == sorted([(owner, "FULL_CONTROL"), (OTHER_ACCOUNT, "READ")])
    assert len(before["Grants"]) == 4 and len(after["Grants"]) == 2
    assert calls.writes() == ["PutBucketAcl"]


def test_remove_public_acl_again_changes_nothing(public_bucket, calls):
    action = _action("s3.remove_public_acl", public_bucket, bucket="exposed")
    _remediate(action)
    calls.attach(public_bucket)
    assert action.check(action.snapshot())
    assert calls.writes() == []


def test_remove_public_acl_undo_restores_the_acl_field_by_field(public_bucket):
    action = _action("s3.remove_public_acl", public_bucket, bucket="exposed")
    original = public_bucket.get_bucket_acl(Bucket="exposed")
    before, after = _remediate(action)
    action.undo(before, after)
    restored = public_bucket.get_bucket_acl(Bucket="exposed")
    assert restored["Owner"]["ID"] == original["Owner"]["ID"]
    key = lambda g: (g["Grantee"].get("URI") or g["Grantee"].get("ID"), g["Permission"])  # noqa: E731
    for was, now in zip(sorted(original["Grants"], key=key), sorted(restored["Grants"], key=key), strict=True):
        assert was["Permission"] == now["Permission"]
        for field in ("Type", "ID", "URI"):
            assert was["Grantee"].get(field) == now["Grantee"].get(field)


def test_remove_public_acl_undo_refused_when_the_acl_changed(public_bucket, calls):
    action = _action("s3.remove_public_acl", public_bucket, bucket="exposed")
    before, after = _remediate(action)
    public_bucket.put_bucket_acl(Bucket="exposed", ACL="private")
    calls.attach(public_bucket)
    with pytest.raises(UndoRefused, match="Grants"):
        action.undo(before, after)
    assert calls.writes() == []


def test_a_refused_undo_names_what_changed_without_copying_whole_policies():
    from chalicelib.actions.base import describe_change

    policy = json.dumps({"Statement": [{"Sid": f"S{n}", "Effect": "Allow", "Action": "kms:*"} for n in range(800)]})
    changed = policy.replace('"S799"', '"Mallory"')
    line = describe_change({"Key": "k", "Policy": policy, "Rules": list(range(500))}, {"Key": "k", "Policy": changed})
    assert line.startswith('Policy: \'{"Statement": [{"Sid": "S0", "Effect": … (')
    assert f"({len(repr(changed)):,} characters)" in line and "Rules: (list of 500 items) -> None" in line
    assert len(line) < 250 and "Key" not in line
    assert describe_change({"KeyState": "Enabled"}, {"KeyState": "Disabled"}) == "KeyState: 'Enabled' -> 'Disabled'"
