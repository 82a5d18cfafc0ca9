"""Resource containment end to end (issue 20): a GuardDuty finding or a CloudTrail call through
the rules' handler, the proposal in the Slack stub, a signed click, the bucket, key or
function in moto afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.incidents.model import State
from chalicelib.respond.handler import eventbridge_rules
from tests.conftest import envelope, python_function, record
from tests.slack.test_flow import buttons, text_of

pytestmark = pytest.mark.e2e

FINDINGS = Path(__file__).parents[1] / "data" / "findings" / "guardduty"
ACCOUNT, REGION = "123456789012", "us-east-1"


def _finding(client, runtime, name: str) -> dict:
    finding = json.loads((FINDINGS / name).read_text())
    [rule] = [r.name for r in eventbridge_rules(runtime.catalog) if r.pattern["detail-type"] == ["GuardDuty Finding"]]
    [incident] = client.lambda_.invoke(rule, finding).payload["incidents"]
    return dict(incident)


def test_an_s3_exfiltration_finding_proposes_denying_the_role_on_the_bucket_and_release_removes_it(
    press, client, runtime, slack_stub
):
    s3 = runtime.clients.client("s3", ACCOUNT, REGION)
    iam = runtime.clients.client("iam", ACCOUNT, REGION)
    s3.create_bucket(Bucket="payroll-exports")
    iam.create_role(RoleName="reporting", Path="/jobs/", AssumeRolePolicyDocument="{}")

    incident = _finding(client, runtime, "reconstructed-Exfiltration.S3-AnomalousBehavior.json")

    assert (incident["playbook"], incident["state"]) == ("guardduty-s3-anomalous-access", "proposed")
    message = slack_stub.only_message()
    assert buttons(message) == ["approve", "deny", "except"] and "s3.deny_principal" in text_of(message)
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket="payroll-exports")  # nothing before a person approves

    press("approve", incident["id"])

    stored = runtime.incidents.get(incident["id"])
    assert stored.state is State.REMEDIATED and stored.containment.value == "applied"
    [statement] = json.loads(s3.get_bucket_policy(Bucket="payroll-exports")["Policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "s3:*"
    assert statement["Condition"] == {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/jobs/reporting"}}
    assert buttons(message)[0] == "release"

    press("release", incident["id"])

    assert runtime.incidents.get(incident["id"]).containment.value == "released"
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket="payroll-exports")  # the policy held only trailguard's statement


def test_a_lambda_backdoor_finding_proposes_closing_the_function_and_approve_closes_it(
    press, client, runtime, slack_stub
):
    iam = runtime.clients.client("iam", ACCOUNT, REGION)
    lam = runtime.clients.client("lambda", ACCOUNT, REGION)
    python_function(iam, lam, "billing", "fn-role")
    lam.create_function_url_config(FunctionName="billing", AuthType="NONE")
    lam.add_permission(FunctionName="billing", StatementId="url", Action="lambda:InvokeFunctionUrl", Principal="*")

    incident = _finding(client, runtime, "reconstructed-Backdoor.Lambda-CCActivity.B.json")

    assert (incident["playbook"], incident["state"]) == ("guardduty-lambda-compromised", "proposed")
    assert "lambda.contain_function" in text_of(slack_stub.only_message())
    assert lam.get_function_url_config(FunctionName="billing")["AuthType"] == "NONE"

    press("approve", incident["id"])

    assert runtime.incidents.get(incident["id"]).containment.value == "applied"
    assert lam.get_function_url_config(FunctionName="billing")["AuthType"] == "AWS_IAM"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName="billing")  # its one statement was public


def test_a_disabled_key_is_enabled_at_once_and_its_caller_denied_on_it_on_approval(press, client, runtime, slack_stub):
    kms = runtime.clients.client("kms", ACCOUNT, REGION)
    runtime.clients.client("iam", ACCOUNT, REGION).create_user(UserName="mallory")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key)
    event = envelope(record("DisableKey", "kms.amazonaws.com", {"keyId": key}))  # by mallory

    [incident] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]

    assert incident["playbook"] == "kms-key-disabled"
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"  # the repair ran at once
    assert "kms.deny_principal" in text_of(slack_stub.only_message())

    press("contain", incident["id"])

    assert runtime.incidents.get(incident["id"]).containment.value == "applied"
    statement = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])["Statement"][-1]
    assert statement["Effect"] == "Deny" and statement["Action"] == "kms:*"
    assert statement["Condition"] == {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/mallory"}}
