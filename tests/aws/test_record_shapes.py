"""The domain functions on the shapes AWS writes that the first datasets did not show, read
from the records themselves (tests/data: StreamAlert's rule tests, AWS's documentation), with
a negative beside each positive.

Each shape is handled once, in `chalicelib.aws.quirks` or `resource_policies`; the playbooks
only call the function.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.aws.quirks import (
    ALL_USERS,
    caller_is_user,
    flow_log_ids,
    organization_of,
    public_access_block_off,
    public_acl_grants,
    shared_outside,
    shared_with,
    wide_cidrs,
)
from chalicelib.aws.resource_policies import administrator_statements, external_principals, lambda_permission_policy
from tests.conftest import DATASETS

pytestmark = pytest.mark.unit


def _request(path: str) -> Any:
    """requestParameters of a record in tests/data (the detail of an EventBridge event)."""
    record = json.loads((DATASETS / path).read_text())
    return record.get("detail", record)["requestParameters"]


# -- Block Public Access: the configuration directly under requestParameters ------------------


def test_block_public_access_turned_off_where_cloudtrail_writes_it():
    # StreamAlert's record: PublicAccessBlockConfiguration (with its xmlns) right under requestParameters.
    request = _request("streamalert-fixtures/s3/PutBucketPublicAccessBlock--streamalert-all-false.json")
    assert "PublicAccessBlock" not in request
    assert public_access_block_off(request) == [
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
    ]
    account = _request("streamalert-fixtures/s3/PutAccountPublicAccessBlock--streamalert-all-false.json")
    assert len(public_access_block_off(account)) == 4


def test_block_public_access_turned_on_is_nothing_off():
    request = _request("streamalert-fixtures/s3/PutBucketPublicAccessBlock--streamalert-all-true.json")
    assert public_access_block_off(request) == []


def test_block_public_access_nested_with_strings_and_a_setting_left_out():
    nested = {
        "bucketName": "b",
        "PublicAccessBlock": {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": "true",
                "IgnorePublicAcls": "TRUE",
                "BlockPublicPolicy": "false",
            }
        },
    }
    # The call replaces the whole configuration: RestrictPublicBuckets, not given, is off.
    assert public_access_block_off(nested) == ["BlockPublicPolicy", "RestrictPublicBuckets"]


def test_a_request_without_configuration_names_nothing():
    # Panther's hand-written fixture carries only the bucket (real records always carry the configuration).
    assert public_access_block_off({"bucketName": "b", "host": "b.s3.amazonaws.com"}) == []
    assert public_access_block_off(None) == []


# -- ACL grant headers nested under accessControlList ------------------------------------------


def test_a_grant_header_nested_under_access_control_list():
    # StreamAlert's PutObjectAcl: AccessControlList.x_amz_grant_read (its authors wrote '_' for '-').
    request = _request("streamalert-fixtures/s3/PutObjectAcl--streamalert-envelope-api-grant-header.json")
    assert public_acl_grants(request) == [{"grantee": "AllUsers", "permission": "READ"}]


def test_the_nesting_cloudtrail_writes_with_hyphens_and_quotes():
    request = {
        "bucketName": "data",
        "accessControlList": {"x-amz-grant-full-control": 'id="owner"', "x-amz-grant-read": f'uri="{ALL_USERS}"'},
    }
    assert public_acl_grants(request) == [{"grantee": "AllUsers", "permission": "READ"}]


def test_nested_grants_to_named_accounts_only_are_not_public():
    request = _request("streamalert-fixtures/s3/PutObjectAcl--streamalert-envelope-private-single-grant.json")
    assert public_acl_grants(request) == []
    assert public_acl_grants({"accessControlList": {"x-amz-grant-read": 'id="abc", id="def"'}}) == []


# -- flow logs: the older flat flowLogId list ----------------------------------------------------


def test_the_older_flat_flow_log_id_list():
    assert flow_log_ids(_request("streamalert-fixtures/ec2/DeleteFlowLogs--streamalert-old-flat-flowlogid-list.json"))
    assert flow_log_ids({"flowLogId": ["fl-1", "fl-2"]}) == ["fl-1", "fl-2"]
    assert flow_log_ids({"DeleteFlowLogsRequest": {"FlowLogId": [{"content": "fl-1"}, {"content": "fl-2"}]}}) == [
        "fl-1",
        "fl-2",
    ]


def test_a_request_naming_no_flow_log_gives_none():
    assert flow_log_ids({"DeleteFlowLogsRequest": ""}) == []


# -- AMIs shared with organizations and organizational units ------------------------------------

ORG_ARN = "arn:aws:organizations::999988887777:organization/o-zz99yy88xx"
OU_ARN = "arn:aws:organizations::111122223333:ou/o-a1b2c3d4e5/ou-ab12-11111111"


def _launch_permission(*items):
    return {"imageId": "ami-1", "launchPermission": {"add": {"items": list(items)}}}


def test_an_ami_shared_with_an_organization_or_an_ou():
    # EC2 API reference, LaunchPermission: OrganizationArn, OrganizationalUnitArn.
    request = _launch_permission({"organizationArn": ORG_ARN}, {"organizationalUnitArn": OU_ARN}, {"userId": "1"})
    assert shared_with(request) == [ORG_ARN, OU_ARN, "1"]
    assert (organization_of(ORG_ARN), organization_of(OU_ARN)) == ("o-zz99yy88xx", "o-a1b2c3d4e5")


def test_shares_outside_the_organization_leave_its_accounts_and_ous_out():
    request = _launch_permission(
        {"organizationArn": ORG_ARN}, {"organizationalUnitArn": OU_ARN}, {"userId": "444455556666"}, {"group": "all"}
    )
    assert shared_outside(request, ["444455556666"], ["o-a1b2c3d4e5"]) == [ORG_ARN]
    assert shared_outside(request, [], []) == [ORG_ARN, OU_ARN, "444455556666"]


# -- who: what AWS asserts, never the session name ---------------------------------------------


def test_only_an_iam_user_caller_is_the_user_it_acts_on():
    user = {"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::111122223333:user/alice"}
    session = {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/IAM/alice"}
    assert caller_is_user(user, "alice") is True
    assert caller_is_user(user, "bob") is False
    assert caller_is_user(session, "alice") is False  # the session name is the caller's choice
    assert caller_is_user({"type": "Root", "arn": "arn:aws:iam::111122223333:root"}, "root") is False
    assert caller_is_user({"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}, "alice") is False
    assert caller_is_user(user, None) is False


# -- security group rules changed in place ------------------------------------------------------


def _modify_rules(*rules):
    # ModifySecurityGroupRules as CloudTrail writes it (XML-shaped; an object for one rule).
    entries = [{"SecurityGroupRuleId": f"sgr-{i}", "SecurityGroupRule": rule} for i, rule in enumerate(rules)]
    return {
        "ModifySecurityGroupRulesRequest": {
            "GroupId": "sg-1",
            "SecurityGroupRule": entries[0] if len(entries) == 1 else entries,
        }
    }


def test_a_rule_modified_to_the_internet_is_found():
    request = _modify_rules({"IpProtocol": "tcp", "FromPort": "22", "ToPort": "22", "CidrIpv4": "0.0.0.0/0"})
    assert wide_cidrs(request, 8) == [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidr": "0.0.0.0/0"}]


def test_rules_modified_to_a_private_range_or_a_prefix_list_are_not():
    request = _modify_rules(
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "10.0.0.0/16"},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "PrefixListId": "pl-1"},
    )
    assert wide_cidrs(request, 8) == []


# -- policies: administrators, open OIDC issuers, function URLs ---------------------------------


def _policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_administrator_statements():
    admin = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    iam_all = {"Effect": "Allow", "Action": ["iam:*"], "Resource": ["*"]}
    but_a_few = {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}
    assert administrator_statements(_policy(admin, iam_all, but_a_few)) == [admin, iam_all, but_a_few]


def test_narrow_or_denying_statements_are_not_administrators():
    # The inline policies of the datasets: ec2:Describe* (invictus), a Deny of everything (Panther).
    assert administrator_statements(_policy({"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"})) == []
    assert administrator_statements(_policy({"Effect": "Deny", "Action": "*", "Resource": "*"})) == []
    assert administrator_statements(_policy({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*"})) == []


def _federated(provider, condition):
    return {
        "Effect": "Allow",
        "Principal": {"Federated": provider},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }


OURS = "111122223333"


@pytest.mark.parametrize(
    "provider,open_condition,pinned_condition",
    [
        # GitHub: aud only (no sub), and sub pinned to one owner.
        (
            f"arn:aws:iam::{OURS}:oidc-provider/token.actions.githubusercontent.com",
            {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}},
            {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:octo-org/*"}},
        ),
        # GitLab.com: any project of any group, or one group's (GitLab docs, "Configure OpenID Connect in AWS").
        (
            f"arn:aws:iam::{OURS}:oidc-provider/gitlab.com",
            {"StringLike": {"gitlab.com:sub": "project_path:*"}},
            {"StringLike": {"gitlab.com:sub": "project_path:my-group/my-project:ref_type:branch:ref:main"}},
        ),
        # HCP Terraform: any organization, or one (HCP Terraform, "Dynamic Credentials with the AWS Provider").
        (
            f"arn:aws:iam::{OURS}:oidc-provider/app.terraform.io",
            {"StringEquals": {"app.terraform.io:aud": "aws.workload.identity"}},
            {"StringLike": {"app.terraform.io:sub": "organization:my-org:project:*:workspace:*:run_phase:*"}},
        ),
        # Google: no client named, or one (IAM user guide, "Available keys for AWS OIDC federation").
        (
            "accounts.google.com",
            {"StringLike": {"accounts.google.com:aud": "*"}},
            {"StringEquals": {"accounts.google.com:aud": "1234567890-example.apps.googleusercontent.com"}},
        ),
        # Cognito identity pools: any pool of any account, or ours.
        (
            "cognito-identity.amazonaws.com",
            {"ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"}},
            {"StringEquals": {"cognito-identity.amazonaws.com:aud": "us-east-1:12345678-abcd-abcd-abcd-123456789012"}},
        ),
    ],
)
def test_open_oidc_issuers_need_their_tenant_named(provider, open_condition, pinned_condition):
    assert external_principals(_policy(_federated(provider, open_condition)), [OURS], []) == [provider]
    assert external_principals(_policy(_federated(provider, {**open_condition, **pinned_condition})), [OURS], []) == []


def test_a_per_tenant_issuer_is_not_open():
    circleci = f"arn:aws:iam::{OURS}:oidc-provider/oidc.circleci.com/org/0123-4567"
    enterprise = f"arn:aws:iam::{OURS}:oidc-provider/token.actions.githubusercontent.com/octo-enterprise"
    for provider in (circleci, enterprise):
        assert external_principals(_policy(_federated(provider, {})), [OURS], []) == []


def test_a_function_url_statement_since_october_2025_is_public():
    # Lambda developer guide, "Control access to function URLs": lambda:InvokeFunction for *
    # limited to calls through the URL (invokedViaFunctionUrl) limits the way in, not who.
    request = {
        "functionName": "webhook",
        "statementId": "FunctionURLAllowInvokeAction",
        "action": "lambda:InvokeFunction",
        "principal": "*",
        "invokedViaFunctionUrl": True,
    }
    policy = lambda_permission_policy(request)
    assert policy["Statement"][0]["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}
    assert external_principals(policy, [OURS], []) == ["*"]
