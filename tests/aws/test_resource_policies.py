"""Who a policy lets in: "restricted" means every way in is pinned to the organization.

Policies are written in the shapes AWS documents them (each test names its source): the S3
user guide's "The meaning of public" and bucket policy examples, the IAM user guide's
global condition keys and its note on ForAllValues:, the KMS developer guide's key policy
of AWS managed keys, GitHub's "Configuring OpenID Connect in Amazon Web Services".
"""

from __future__ import annotations

import json

import pytest

from chalicelib.aws.resource_policies import external_principals, lambda_permission_policy, public_statements

pytestmark = pytest.mark.unit

OURS = "111122223333"
STRANGER = "193672423079"  # the outside account of Stratus Red Team's backdoors
OUR_ORG = "o-a1b2c3d4e5"
OTHER_ORG = "o-aa111bb222"
GITHUB = f"arn:aws:iam::{OURS}:oidc-provider/token.actions.githubusercontent.com"


def _policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(principal, condition=None, action="s3:GetObject"):
    statement = {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": "arn:aws:s3:::b/*"}
    if condition is not None:
        statement["Condition"] = condition
    return statement


def _public(*statements, accounts=(OURS,), organizations=(OUR_ORG,)):
    return public_statements(_policy(*statements), list(accounts), list(organizations))


def _external(*statements, accounts=(OURS,), organizations=(OUR_ORG,)):
    return external_principals(_policy(*statements), list(accounts), list(organizations))


# -- public_statements --------------------------------------------------------------------------


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": [f"arn:aws:iam::{OURS}:root", "*"]}, ["*"]])
def test_statements_open_to_everyone(principal):
    assert _public(_allow(principal)) == [_allow(principal)]


@pytest.mark.parametrize("principal", [{"Service": "cloudtrail.amazonaws.com"}, {"AWS": f"arn:aws:iam::{OURS}:root"}])
def test_statements_for_named_principals_are_not_public(principal):
    assert _public(_allow(principal)) == []


@pytest.mark.parametrize(
    "condition",
    [
        # S3 user guide, "The meaning of public": a fixed aws:SourceVpc makes a policy non-public.
        {"StringEquals": {"aws:SourceVpc": "vpc-91237329"}},
        {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}},
        # S3 user guide, bucket policy examples: IPv4 and IPv6 ranges.
        {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:DB8:1234:5678::/64"]}},
        {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "11.0.0.0/8"]}},  # /8 is as wide as S3 accepts
        # IAM user guide, aws:PrincipalOrgID: Principal * limited to the organization.
        {"StringEquals": {"aws:PrincipalOrgID": [OUR_ORG]}},
        {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": [f"{OUR_ORG}/r-ab12/ou-ab12-11111111/*"]}},
        {"StringEquals": {"aws:PrincipalAccount": OURS}},
        {"StringEquals": {"aws:SourceAccount": OURS}},
        {"ArnLike": {"aws:SourceArn": f"arn:aws:cloudtrail:us-east-1:{OURS}:trail/main"}},
        {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OURS}:role/deploy-*"}},  # the account is written out
        {"StringEquals": {"kms:CallerAccount": OURS, "kms:ViaService": "s3.us-west-2.amazonaws.com"}},
    ],
)
def test_a_condition_that_pins_the_caller_to_trusted_values_makes_a_statement_non_public(condition):
    assert _public(_allow("*", condition)) == []


@pytest.mark.parametrize(
    "condition",
    [
        # ForAllValues: is true when the key is absent (IAM user guide, multivalued context
        # keys): a caller outside any organization has no aws:PrincipalOrgID.
        {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": [OUR_ORG]}},
        {"ForAllValues:StringLike": {"aws:PrincipalAccount": [OURS]}},
        {"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1a2b3c4d"}},
        {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}},
        # S3 user guide: "very broad IP ranges (for example, 0.0.0.0/1) are evaluated as public".
        {"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}},
        {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}},
        {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "0.0.0.0/7"]}},  # every value must be narrow
        {"IpAddress": {"aws:SourceIp": "2001:db8::/31"}},
        {"IpAddress": {"aws:SourceIp": "::ffff:0.0.0.0/97"}},  # half of IPv4, written as IPv6
        {"StringEquals": {"aws:SourceIp": "192.0.2.0/24"}},  # a string match on an address: never true
        {"StringLike": {"aws:SourceVpc": "vpc-*"}},  # S3 user guide: public
        {"StringEquals": {"aws:PrincipalOrgID": OTHER_ORG}},
        {"StringEquals": {"aws:PrincipalOrgID": [OUR_ORG, OTHER_ORG]}},
        {"StringLike": {"aws:PrincipalOrgID": "o-*"}},
        {"StringEquals": {"aws:PrincipalAccount": STRANGER}},
        {"StringEquals": {"aws:SourceAccount": STRANGER}},
        {"StringEquals": {"aws:PrincipalAccount": "${aws:ResourceAccount}"}},  # a variable is not fixed
        {"StringEquals": {"kms:CallerAccount": STRANGER}},
        {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/ExampleDeploymentRole*"}},
        {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/deploy"}},  # a wildcard inside the value
        {"ArnLike": {"aws:SourceArn": "arn:aws:sns:us-east-1:1111222?3333:alerts"}},
        {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::uploads"}},  # a bucket ARN names no account
        {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
        {"Bool": {"aws:SecureTransport": "true"}},
    ],
)
def test_a_condition_that_does_not_pin_the_caller_to_trusted_values_leaves_it_public(condition):
    assert len(_public(_allow("*", condition))) == 1


def test_the_organizations_lists_decide_not_the_policy():
    pinned = _allow("*", {"StringEquals": {"aws:PrincipalOrgID": OTHER_ORG, "aws:PrincipalAccount": STRANGER}})
    assert _public(pinned) == [pinned]
    assert _public(pinned, organizations=[OTHER_ORG]) == []
    assert _public(pinned, accounts=[STRANGER], organizations=[]) == []


def test_deny_statements_not_principal_a_single_statement_object_and_json_text():
    deny = {**_allow("*"), "Effect": "Deny"}
    assert _public(deny) == []
    not_principal = {"Effect": "Allow", "NotPrincipal": {"AWS": f"arn:aws:iam::{OURS}:root"}, "Action": "s3:*"}
    assert _public(not_principal) == [not_principal]
    assert public_statements({"Statement": _allow({"AWS": "*"})}, [], []) == [_allow({"AWS": "*"})]
    assert public_statements(json.dumps(_policy(_allow("*"))), [], []) == [_allow("*")]
    assert public_statements("invalid-json-policy", [], []) == []
    assert public_statements(None, [], []) == []


def test_real_bucket_policies_from_the_datasets(datasets):
    from trailguard.eventfiles import read_events

    policies = [
        e.request_parameters.get("bucketPolicy")
        for e in read_events([datasets / "invictus-aws-2023"])
        if not isinstance(e, Exception) and e.name == "PutBucketPolicy" and not e.failed
    ]
    assert len(policies) == 3
    # CloudTrail's own bucket policy and a cross-account grant: none is public.
    assert [public_statements(policy, [], []) for policy in policies] == [[], [], []]


def test_panther_fixture_policy_is_restricted_by_its_private_ranges_whatever_the_organization():
    condition = {
        "StringEquals": {"aws:PrincipalOrgID": "o-test123456"},
        "StringLike": {"aws:SourceVpc": "vpc-*"},
        "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "172.16.0.0/12"]},
    }
    assert _public(_allow("*", condition), organizations=[]) == []


# -- external_principals --------------------------------------------------------------------------


def test_an_outside_accounts_root_is_external_until_the_organization_trusts_it():
    backdoor = _allow({"AWS": f"arn:aws:iam::{STRANGER}:root"}, action="sts:AssumeRole")  # Stratus iam-backdoor-role
    assert _external(backdoor) == [f"arn:aws:iam::{STRANGER}:root"]
    assert _external(backdoor, accounts=[OURS, STRANGER]) == []


def test_anyone_pinned_to_the_organization_is_not_external_and_anyone_else_is():
    anyone_in = _allow({"AWS": "*"}, {"StringEquals": {"aws:PrincipalOrgID": OUR_ORG}}, "sts:AssumeRole")
    assert _external(anyone_in) == []
    assert _external(anyone_in, organizations=[]) == ["*"]
    assert _external(_allow({"AWS": "*"}, {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": OUR_ORG}})) == ["*"]


def test_where_a_call_comes_from_does_not_make_an_outside_account_trusted():
    # A narrow IP range makes "*" non-public for S3, but the named stranger still gets in.
    from_range = {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}
    assert _external(_allow({"AWS": STRANGER}, from_range)) == [STRANGER]
    assert _external(_allow("*", from_range)) == []
    assert _external(_allow({"AWS": STRANGER}, {"StringEquals": {"aws:PrincipalOrgID": OUR_ORG}})) == []


def _github(condition=None):
    return _allow({"Federated": GITHUB}, condition, action="sts:AssumeRoleWithWebIdentity")


AUD = {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}


@pytest.mark.parametrize(
    "condition",
    [
        None,
        {"StringEquals": AUD},  # an audience only: every workflow on GitHub asks for sts.amazonaws.com
        {"StringEquals": AUD, "StringLike": {"token.actions.githubusercontent.com:sub": "repo:*"}},
        {"StringLike": {"token.actions.githubusercontent.com:sub": "*"}},
        {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:octo-*/deploy:*"}},
        {"StringLike": {"token.actions.githubusercontent.com:sub": ["repo:octo-org/app:*", "repo:*/app:*"]}},
        {"StringLike": {"token.actions.githubusercontent.com:sub": "environment:production"}},  # no owner
        # GitHub's earlier documented trust: true for a token without these claims.
        {
            "ForAllValues:StringEquals": {
                **AUD,
                "token.actions.githubusercontent.com:sub": "repo:octo-org/octo-repo:ref:refs/heads/octo-branch",
            }
        },
        {"StringEqualsIfExists": {"token.actions.githubusercontent.com:repository_owner": "octo-org"}},
    ],
)
def test_github_actions_oidc_trust_without_a_repository_owner_is_external(condition):
    assert _external(_github(condition)) == [GITHUB]


@pytest.mark.parametrize(
    "condition",
    [
        # GitHub's "Configuring OpenID Connect in Amazon Web Services".
        {
            "StringEquals": {
                **AUD,
                "token.actions.githubusercontent.com:sub": "repo:octo-org/octo-repo:ref:refs/heads/octo-branch",
            }
        },
        {"StringEquals": AUD, "StringLike": {"token.actions.githubusercontent.com:sub": "repo:octo-org/octo-repo:*"}},
        {
            "ForAnyValue:StringLike": {
                "token.actions.githubusercontent.com:sub": ["repo:octo-org/a:*", "repo:octo-org/b:*"]
            }
        },
        {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:octo-org@1234/octo-repo@5678:*"}},
        {"StringEquals": {"token.actions.githubusercontent.com:repository": "octo-org/octo-repo"}},
        {"StringEquals": {"token.actions.githubusercontent.com:repository_owner_id": "177895094"}},
        {"StringLike": {"token.actions.githubusercontent.com:job_workflow_ref": "octo-org/ci/.github/workflows/*"}},
    ],
)
def test_github_actions_oidc_trust_pinned_to_a_repository_owner_is_not_external(condition):
    assert _external(_github(condition)) == []


def test_other_federated_and_service_principals_are_not_external():
    enterprise = f"arn:aws:iam::{OURS}:oidc-provider/token.actions.githubusercontent.com/octo-enterprise"
    saml = f"arn:aws:iam::{OURS}:saml-provider/okta"
    assert _external(_allow({"Federated": enterprise}), _allow({"Federated": saml})) == []
    assert _external(_allow({"Service": "ec2.amazonaws.com"})) == []


# -- lambda_permission_policy ---------------------------------------------------------------------


def test_an_add_permission_request_is_the_statement_lambda_writes():
    # Stratus lambda-backdoor-function's request, then the Lambda developer guide's examples.
    assert lambda_permission_policy(
        {"action": "lambda:InvokeFunction", "functionName": "f", "principal": "*", "statementId": "backdoor"}
    ) == _policy({"Sid": "backdoor", "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunction"})
    org = lambda_permission_policy(
        {"action": "lambda:InvokeFunction", "principal": "*", "principalOrgID": OTHER_ORG, "statementId": "o"}
    )
    assert org["Statement"][0]["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": OTHER_ORG}}
    bucket = lambda_permission_policy(
        {"principal": "s3.amazonaws.com", "sourceArn": "arn:aws:s3:::uploads", "sourceAccount": OURS}
    )
    assert bucket["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert bucket["Statement"][0]["Condition"] == {
        "StringEquals": {"AWS:SourceAccount": OURS},
        "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::uploads"},
    }
    account = lambda_permission_policy({"principal": STRANGER})
    assert account["Statement"][0]["Principal"] == {"AWS": STRANGER}
    assert lambda_permission_policy({"functionName": "f"}) is None and lambda_permission_policy(None) is None


def test_a_permission_for_everyone_is_public_unless_pinned_to_the_organization():
    def public(**request):
        return public_statements(lambda_permission_policy({"principal": "*", **request}), [OURS], [OUR_ORG])

    assert public() and public(principalOrgID=OTHER_ORG) and public(sourceAccount=STRANGER)
    assert public(sourceArn="arn:aws:sns:us-east-1:*:topic")
    assert not public(principalOrgID=OUR_ORG) and not public(sourceAccount=OURS)
    assert not public(sourceArn=f"arn:aws:sns:us-east-1:{OURS}:alerts")
