"""Containing a principal on a bucket or a key, and a Lambda function (issue 20), beyond the
library's harness (tests/actions/test_library.py runs apply, re-apply, undo and undo after
drift for each): the exact statement added and removed, a bucket without a policy, the size
limits, every refusal, KMS's lockout check, what the Lambda containment keeps."""

from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.actions import ActionError, UndoRefused, registered_actions
from chalicelib.actions.base import NOTHING_PROTECTED, ActionContext, Protected
from chalicelib.actions.contain_resource import BUCKET_POLICY_LIMIT, KEY_POLICY_LIMIT
from tests.actions.test_library import _function_permission
from tests.conftest import ACCOUNT, REGION

pytestmark = pytest.mark.integration

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/app-server/i-0a1b2c3d4e5f67890"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/apps/app-server"
READ = {
    "Sid": "TeamReads",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::data-bucket/*",
}


def _client(service):
    return boto3.client(service, region_name=REGION)


def _action(name: str, params: dict, protected: Protected = NOTHING_PROTECTED):
    action_class = registered_actions()[name]
    context = ActionContext(ACCOUNT, REGION, protected=protected, clients=_client)
    return action_class(_client(action_class.service), params, context)


def _bucket_policy(s3) -> dict:
    return json.loads(s3.get_bucket_policy(Bucket="data-bucket")["Policy"])


@pytest.fixture
def bucket(aws):
    s3 = _client("s3")
    s3.create_bucket(Bucket="data-bucket")
    _client("iam").create_role(RoleName="app-server", Path="/apps/", AssumeRolePolicyDocument=TRUST)
    return s3


def test_a_session_is_denied_on_the_bucket_as_its_role_by_principal_arn_and_undo_removes_exactly_that(bucket):
    bucket.put_bucket_policy(Bucket="data-bucket", Policy=json.dumps({"Version": "2012-10-17", "Statement": [READ]}))
    action = _action("s3.deny_principal", {"bucket": "data-bucket", "principal": SESSION})
    before = action.snapshot()
    assert not action.check(before)
    action.apply(before)
    kept, added = _bucket_policy(bucket)["Statement"]
    assert kept == READ
    assert added == {
        "Sid": before["Sid"],
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::data-bucket", "arn:aws:s3:::data-bucket/*"],
        "Condition": {"ArnLike": {"aws:PrincipalArn": ROLE}},  # the role with its path, never the session
    }
    assert before["Sid"].startswith("TrailguardContain")
    after = action.snapshot()
    assert action.check(after)
    # Someone changes another statement meanwhile: undo takes out trailguard's statement only.
    document = _bucket_policy(bucket)
    document["Statement"][0]["Action"] = ["s3:GetObject", "s3:ListBucket"]
    bucket.put_bucket_policy(Bucket="data-bucket", Policy=json.dumps(document))
    action.undo(before, after)
    assert _bucket_policy(bucket)["Statement"] == [{**READ, "Action": ["s3:GetObject", "s3:ListBucket"]}]


def test_a_bucket_without_a_policy_gets_one_and_undo_deletes_it(bucket):
    action = _action("s3.deny_principal", {"bucket": "data-bucket", "principal": ROLE})
    before = action.snapshot()
    assert before["Policy"] is None
    action.apply(before)
    [statement] = _bucket_policy(bucket)["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"ArnLike": {"aws:PrincipalArn": ROLE}}
    action.undo(before, action.snapshot())
    with pytest.raises(bucket.exceptions.ClientError, match="NoSuchBucketPolicy"):
        bucket.get_bucket_policy(Bucket="data-bucket")


def test_undo_is_refused_with_the_reason_when_trailguard_s_statement_was_removed(bucket):
    bucket.put_bucket_policy(Bucket="data-bucket", Policy=json.dumps({"Version": "2012-10-17", "Statement": [READ]}))
    action = _action("s3.deny_principal", {"bucket": "data-bucket", "principal": ROLE})
    before = action.snapshot()
    action.apply(before)
    after = action.snapshot()
    bucket.put_bucket_policy(Bucket="data-bucket", Policy=json.dumps({"Version": "2012-10-17", "Statement": [READ]}))
    with pytest.raises(UndoRefused, match=f"its statement {before['Sid']} was removed"):
        action.undo(before, after)
    assert _bucket_policy(bucket)["Statement"] == [READ]


def test_a_principal_of_another_account_is_denied_by_both_forms_of_its_role_arn(bucket):
    session = "arn:aws:sts::111122223333:assumed-role/exfil/attacker"
    action = _action("s3.deny_principal", {"bucket": "data-bucket", "principal": session})
    action.apply(action.snapshot())
    [statement] = _bucket_policy(bucket)["Statement"]
    assert statement["Condition"]["ArnLike"]["aws:PrincipalArn"] == [
        "arn:aws:iam::111122223333:role/exfil",
        "arn:aws:iam::111122223333:role/*/exfil",  # its path is not in the session's ARN
    ]


def test_the_bucket_denial_is_refused_when_the_policy_would_exceed_20_kb(bucket):
    def policy_of(padding: int) -> str:
        resource = f"arn:aws:s3:::data-bucket/{'x' * padding}/*"
        return json.dumps({"Version": "2012-10-17", "Statement": [{**READ, "Resource": resource}]})

    policy = policy_of(BUCKET_POLICY_LIMIT - 150 - len(policy_of(0)))  # 150 bytes short: the denial takes ~280
    assert len(policy) == BUCKET_POLICY_LIMIT - 150
    bucket.put_bucket_policy(Bucket="data-bucket", Policy=policy)
    action = _action("s3.deny_principal", {"bucket": "data-bucket", "principal": ROLE})
    with pytest.raises(ActionError, match=r"over the 20,480 AWS accepts; nothing was changed"):
        action.apply(action.snapshot())
    assert bucket.get_bucket_policy(Bucket="data-bucket")["Policy"] == policy


@pytest.fixture
def principals(aws):
    iam = _client("iam")
    linked = iam.create_service_linked_role(AWSServiceName="elasticbeanstalk.amazonaws.com")["Role"]["Arn"]
    iam.create_role(
        RoleName="AWSReservedSSO_AdministratorAccess_0123456789abcdef",
        Path="/aws-reserved/sso.amazonaws.com/",
        AssumeRolePolicyDocument=TRUST,
    )
    iam.create_role(RoleName="trailguard-remediator", AssumeRolePolicyDocument=TRUST)
    iam.create_role(RoleName="break-glass", AssumeRolePolicyDocument=TRUST)
    _client("s3").create_bucket(Bucket="data-bucket")
    key = _client("kms").create_key()["KeyMetadata"]["KeyId"]
    return linked, key


PROTECTED = Protected(
    own_roles=frozenset({"trailguard-remediator"}),
    break_glass_roles=frozenset({f"arn:aws:iam::{ACCOUNT}:role/break-glass"}),
)


@pytest.mark.parametrize("name", ["s3.deny_principal", "kms.deny_principal"])
@pytest.mark.parametrize(
    ("principal", "reason"),
    [
        (None, "is a service-linked role"),
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_AdministratorAccess_0123456789abcdef/alice",
            "is an IAM Identity Center permission-set role",
        ),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/trailguard-remediator/trailguard", "is trailguard's own"),
        (f"arn:aws:iam::{ACCOUNT}:role/break-glass", "is a break-glass role"),
        (f"arn:aws:iam::{ACCOUNT}:root", "is not an IAM role, a role's session or an IAM user"),
        (f"arn:aws:sts::{ACCOUNT}:federated-user/bob", "is not an IAM role, a role's session or an IAM user"),
        (f"arn:aws:iam::{ACCOUNT}:role/no-such-role", "no role no-such-role in account"),
    ],
)
def test_denial_refuses_principals_it_must_not_touch_saying_why(principals, name, principal, reason):
    linked, key = principals
    params = {"bucket": "data-bucket"} if name == "s3.deny_principal" else {"key": key}
    action = _action(name, {**params, "principal": principal or linked}, PROTECTED)
    kms_policy = _client("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    with pytest.raises(ActionError, match=reason):
        action.apply(action.snapshot())
    with pytest.raises(_client("s3").exceptions.ClientError, match="NoSuchBucketPolicy"):
        _client("s3").get_bucket_policy(Bucket="data-bucket")
    assert _client("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"] == kms_policy


@pytest.fixture
def key(aws):
    _client("iam").create_user(UserName="payroll-bot")
    return _client("kms").create_key()["KeyMetadata"]["KeyId"]


def _key_policy(key_id) -> dict:
    return json.loads(_client("kms").get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])


def test_a_user_is_denied_on_the_key_with_the_lockout_check_on_and_undo_removes_exactly_that(key):
    original = _key_policy(key)
    action = _action("kms.deny_principal", {"key": key, "principal": f"arn:aws:iam::{ACCOUNT}:user/payroll-bot"})
    calls: list[dict] = []
    action.client.meta.events.register(
        "provide-client-params.kms.PutKeyPolicy", lambda params, **_: calls.append(params)
    )
    before = action.snapshot()
    action.apply(before)
    assert calls[0]["BypassPolicyLockoutSafetyCheck"] is False  # moto does not run AWS's lockout check
    document = _key_policy(key)
    assert document["Statement"][:-1] == original["Statement"]
    assert document["Statement"][-1] == {
        "Sid": before["Sid"],
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:*",
        "Resource": "*",
        "Condition": {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/payroll-bot"}},
    }
    action.undo(before, action.snapshot())
    assert _key_policy(key)["Statement"] == original["Statement"]


def test_the_key_s_administrator_is_not_denied_on_it(key):
    admin = f"arn:aws:iam::{ACCOUNT}:user/payroll-bot"
    document = _key_policy(key)
    document["Statement"].append(
        {
            "Sid": "KeyAdministrators",
            "Effect": "Allow",
            "Principal": {"AWS": admin},
            "Action": ["kms:Create*", "kms:Put*", "kms:Disable*", "kms:ScheduleKeyDeletion"],
            "Resource": "*",
        }
    )
    _client("kms").put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(document))
    action = _action("kms.deny_principal", {"key": key, "principal": admin})
    with pytest.raises(ActionError, match=r"administers key .* could lock the key's administration out"):
        action.apply(action.snapshot())
    assert _key_policy(key) == document


def test_the_key_denial_is_refused_when_the_policy_would_exceed_32_kb(key):
    original = _key_policy(key)

    def policy_of(padding: int) -> str:
        condition = {"StringEquals": {"kms:EncryptionContext:project": "p" * padding}}
        filler = {"Sid": "Filler", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
        extra = {**filler, "Action": "kms:Decrypt", "Resource": "*", "Condition": condition}
        return json.dumps({**original, "Statement": [*original["Statement"], extra]})

    policy = policy_of(KEY_POLICY_LIMIT - 150 - len(policy_of(0)))
    assert len(policy) == KEY_POLICY_LIMIT - 150
    document = json.loads(policy)
    _client("kms").put_key_policy(KeyId=key, PolicyName="default", Policy=policy)
    action = _action("kms.deny_principal", {"key": key, "principal": f"arn:aws:iam::{ACCOUNT}:user/payroll-bot"})
    with pytest.raises(ActionError, match=r"over the 32,768 AWS accepts; nothing was changed"):
        action.apply(action.snapshot())
    assert _key_policy(key) == document


def test_lambda_containment_closes_the_url_and_public_statements_and_keeps_the_rest(aws):
    setup = _function_permission()
    lam = setup.client
    setup.unsafe()  # a statement anyone may use ("backdoor"), beside EventBridge's ("events")
    lam.create_function_url_config(FunctionName="billing", AuthType="NONE")
    action = _action(
        "lambda.contain_function", {"function": "billing", "trusted_accounts": [], "trusted_organizations": []}
    )
    before = action.snapshot()
    assert before["UrlAuthType"] == "NONE" and [s["Sid"] for s in before["PublicStatements"]] == ["backdoor"]
    action.apply(before)
    assert lam.get_function_url_config(FunctionName="billing")["AuthType"] == "AWS_IAM"
    statements = json.loads(lam.get_policy(FunctionName="billing")["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["events"]
    assert action.note == "its URL asks for AWS credentials (AWS_IAM); 1 public statement(s) taken out"
    action.undo(before, action.snapshot())
    assert lam.get_function_url_config(FunctionName="billing")["AuthType"] == "NONE"
    statements = json.loads(lam.get_policy(FunctionName="billing")["Policy"])["Statement"]
    assert sorted(s["Sid"] for s in statements) == ["backdoor", "events"]
    backdoor = next(s for s in statements if s["Sid"] == "backdoor")
    assert backdoor["Principal"] == "*" and backdoor["Action"] == "lambda:InvokeFunction"


def test_a_function_with_neither_a_public_url_nor_public_statements_is_already_contained(aws):
    setup = _function_permission()
    action = _action(
        "lambda.contain_function", {"function": "billing", "trusted_accounts": [], "trusted_organizations": []}
    )
    state = action.snapshot()
    assert state == {"Function": "billing", "UrlAuthType": None, "PublicStatements": []}
    assert action.check(state)
    assert setup.observe() == ["events"]
