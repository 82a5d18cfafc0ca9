"""The generated deployment files: the roles' policies, the merge, member and central-bus
templates. They are committed, so a reviewer sees what a playbook change grants; these
tests fail when they are stale or grant more than the actions need."""

from __future__ import annotations

import dataclasses
import json

import boto3
import pytest
from click.testing import CliRunner

from chalicelib.actions.base import ANY_RESOURCE, registered_actions
from chalicelib.events.record import CloudTrailEvent
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.guards import OwnIdentities, skip_reason, stage_roles
from chalicelib.respond.handler import eventbridge_rules
from chalicelib.settings import Settings
from tests.conftest import PLAYBOOKS, ROOT, record
from trailguard.cli import deployment_files, main
from trailguard.generate.deployment import acting_functions, role_name, stage_settings
from trailguard.generate.policy import (
    ROLE_CHANGING_PERMISSIONS,
    SWEEP_PERMISSIONS,
    lambda_policy,
    member_policy,
    narrowing,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load([PLAYBOOKS])


def _actions(statement):
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_committed_files_are_what_the_playbooks_and_the_stage_need(catalog, stage):
    for path, text in deployment_files(stage, stage_settings(stage), catalog).items():
        assert path.exists(), f"{path} is missing: run python -m trailguard policy --stage {stage} --write"
        assert json.loads(path.read_text()) == json.loads(text), (
            f"{path} is stale: run python -m trailguard policy --stage {stage} --write"
        )


def test_every_remediation_permission_is_declared_by_an_action_some_playbook_uses(catalog):
    used = {p for playbook in catalog.playbooks for step in playbook.every_step for p in step.action.permissions}
    policy = lambda_policy(catalog, stage_settings("prod"))
    granted = {
        a
        for s in policy["Statement"]
        if s["Sid"].startswith("Remediate") or s["Sid"] == "PassRolesToRemediatedServices"
        for a in _actions(s)
    }
    assert granted == used
    sweep = next(s for s in policy["Statement"] if s["Sid"] == "Sweep")
    assert set(_actions(sweep)) == set(SWEEP_PERMISSIONS)
    for statement in policy["Statement"]:
        assert not any(a == "*" or a.endswith(":*") or a.startswith("iam:*") for a in _actions(statement))


def test_a_playbook_set_without_an_action_grants_none_of_its_permissions(catalog):
    only_trails = Catalog([p for p in catalog.playbooks if p.source == "cloudtrail.amazonaws.com"])
    statements = member_policy(only_trails, own_roles=["trailguard-remediator"])["Statement"]
    granted = {a for s in statements if s["Effect"] == "Allow" for a in _actions(s)}
    # Putting back an organization trail reads the organization and its service-linked role;
    # StopLogging's second response contains who stopped it (a role's sessions, a user).
    containment = {
        p
        for name in ("iam.revoke_role_sessions", "iam.quarantine_user")
        for p in registered_actions()[name].permissions
    }
    assert granted and all(
        a.startswith(("cloudtrail:", "iam:PassRole", "logs:", "s3:", "kms:", "sns:", "organizations:Describe"))
        or a in ("organizations:ListAWSServiceAccessForOrganization", "iam:GetRole", "iam:CreateServiceLinkedRole")
        or a in containment
        for a in granted
    )
    assert not any(a.startswith(("ec2:", "guardduty:", "lambda:", "rds:")) for a in granted)


def test_every_narrowed_permission_names_a_real_action_permission_and_resource_type():
    """Each action declares what each permission is narrowed to, next to its code: every
    declared permission is narrowed consistently across actions (`narrowing` refuses two
    answers), and to ARNs of its own service."""
    declared = {p for action in registered_actions().values() for p in action.permissions}
    narrowed = narrowing(registered_actions().values())
    assert set(narrowed) == declared
    for permission, kind in narrowed.items():
        assert kind is ANY_RESOURCE or all(arn.startswith(f"arn:*:{permission.split(':')[0]}:") for arn in kind.arns)
    assert {kind.name for kind in narrowed.values()} >= {"Trail", "Key", "Bucket", "Role", "User", "AnyResource"}


def test_a_permission_narrowed_two_ways_by_two_actions_is_refused():
    start_logging = registered_actions()["cloudtrail.start_logging"]
    wide = type(
        "Wide", (start_logging,), {"name": "test.wide", "permissions": {"cloudtrail:StartLogging": ANY_RESOURCE}}
    )
    with pytest.raises(ValueError, match=r"StartLogging is narrowed to AnyResource by test\.wide but to Trail"):
        narrowing([start_logging, wide])


def test_the_api_handler_holds_no_permission_to_change_aws():
    api = json.loads((PLAYBOOKS.parent / ".chalice" / "policy-prod-api.json").read_text())
    actions = {a for s in api["Statement"] for a in _actions(s)}
    assert actions == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "ssm:GetParameter",
        "lambda:InvokeFunction",
    }


def _string_like(pattern: str, value: str) -> bool:
    """IAM's StringLike: `*` any run of characters, `?` one character, case-sensitive."""
    import fnmatch

    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_endpoint_may_touch_only_incident_items_and_holds_no_kms_permission(stage):
    """The public endpoint's role: incidents (`inc-*` keys) only, so it can write neither a
    remembered configuration nor anything else in the table; and no KMS at all, so it cannot
    seal what the worker would act on."""
    from chalicelib.incidents.model import incident_id
    from chalicelib.memory import config_channels, flow_logs, trails

    api = json.loads((PLAYBOOKS.parent / ".chalice" / f"policy-{stage}-api.json").read_text())
    assert not any(a.startswith("kms:") for s in api["Statement"] for a in _actions(s))
    [table] = [s for s in api["Statement"] if any(a.startswith("dynamodb:") for a in _actions(s))]
    assert set(_actions(table)) == {"dynamodb:GetItem", "dynamodb:PutItem"}  # no Query: no index, no listing
    assert table["Resource"] == f"arn:*:dynamodb:*:*:table/trailguard-{stage}"
    # ForAllValues is true when the key is absent: the Null condition requires it
    assert table["Condition"]["Null"] == {"dynamodb:LeadingKeys": "false"}
    patterns = table["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]

    def allowed(key: str) -> bool:
        return any(_string_like(pattern, key) for pattern in patterns)

    assert allowed(incident_id("an-event", "cloudtrail-stop-logging"))
    for remembered in (
        trails.memory_key("123456789012", "us-east-1", "org-trail"),
        flow_logs.memory_key("123456789012", "us-east-1", "fl-0123456789abcdef0"),
        config_channels.memory_key("123456789012", "us-east-1"),
    ):
        assert not allowed(remembered), remembered


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_only_the_acting_roles_may_seal_and_only_with_the_stages_key(catalog, stage):
    settings = stage_settings(stage)
    assert settings.integrity_key == f"alias/trailguard-{stage}-integrity"
    acting = json.loads((PLAYBOOKS.parent / ".chalice" / f"policy-{stage}.json").read_text())
    [seal] = [s for s in acting["Statement"] if any(a.startswith("kms:") and "Mac" in a for a in _actions(s))]
    assert sorted(_actions(seal)) == ["kms:GenerateMac", "kms:VerifyMac"]
    assert seal["Condition"] == {
        "StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_256"},
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": settings.integrity_key},
    }
    merge = json.loads((PLAYBOOKS.parent / "deploy" / f"merge-{stage}.json").read_text())["Resources"]
    key = merge["IntegrityKey"]
    assert (key["Properties"]["KeySpec"], key["Properties"]["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    assert key["DeletionPolicy"] == "Retain"  # without it no stored incident can be checked again
    assert merge["IntegrityKeyAlias"]["Properties"] == {
        "AliasName": settings.integrity_key,
        "TargetKeyId": {"Ref": "IntegrityKey"},
    }
    [deny] = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Effect"] == "Deny"]
    assert (deny["Principal"], deny["Action"]) == ("*", "kms:GenerateMac")
    rules = eventbridge_rules(catalog)
    sealers = [arn["Fn::Sub"].rsplit("/", 1)[1] for arn in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]]
    assert sealers == [role_name(stage, f) for f in acting_functions([r.name for r in rules])]
    assert role_name(stage, "api_handler") not in sealers


def test_the_member_role_trusts_only_the_central_acting_roles_with_the_external_id(catalog):
    settings = stage_settings("prod")
    rules = eventbridge_rules(catalog)
    template = json.loads(CliRunner().invoke(main, ["policy", "--member"]).output)  # --stage defaults to prod
    role = template["Resources"]["MemberRole"]["Properties"]
    assert role["RoleName"] == settings.member_role == "trailguard-prod-remediator"
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${CentralAccountId}:root"}}
    assert trust["Condition"]["StringEquals"] == {"sts:ExternalId": {"Ref": "ExternalId"}}
    trusted = [item["Fn::Sub"].rsplit("/", 1)[1] for item in trust["Condition"]["ArnEquals"]["aws:PrincipalArn"]]
    assert trusted == [role_name("prod", f) for f in acting_functions([r.name for r in rules])]
    assert "trailguard-prod-api_handler" not in trusted  # the public endpoint cannot reach member accounts
    assert template["Parameters"]["ExternalId"]["Default"] == settings.external_id
    assert role["Policies"][0]["PolicyDocument"] == member_policy(
        catalog,
        own_roles=["trailguard-prod-remediator", "trailguard-prod-forward-events"],
        security_hub=settings.security_hub,  # prod imports findings, from each incident's own account
        stage="prod",  # its heartbeat's canary
    )
    forwarded = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    assert [r["EventPattern"] for r in forwarded] == [rule.pattern for rule in rules]
    for rule in forwarded:
        (target,) = rule["Targets"]
        assert target["Arn"] == {
            "Fn::Sub": "arn:${AWS::Partition}:events:${CentralRegion}:${CentralAccountId}:event-bus/default"
        }
        assert target["RoleArn"]["Fn::Sub"].endswith(":role/trailguard-prod-forward-events")


def _committed(path: str) -> dict:
    return json.loads((ROOT / path).read_text())


def _may_change_a_role(permission: str) -> bool:
    """An IAM permission that is not a read and is not narrowed to users or service-linked roles."""
    if not permission.startswith("iam:") or permission.startswith(("iam:Get", "iam:List")):
        return False
    return narrowing(registered_actions().values())[permission].name not in ("User", "ServiceLinkedRole", "Policy")


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_acting_roles_may_change_none_of_trailguards_own_roles(catalog, stage):
    """Restoring a trust policy is an action trailguard has; restoring (or undoing) one on its
    own roles would let whoever wrote that policy assume them. An explicit deny, which no
    allow overrides, keeps every role-changing IAM call off the stage's roles: the function
    roles, the member role and the forwarder's centrally, the member template's two in
    each member account (a look-alike of a central role there stays remediable)."""
    settings = stage_settings(stage)
    rules = [rule.name for rule in eventbridge_rules(catalog)]
    function_roles = [role_name(stage, function) for function in [*acting_functions(rules), "api_handler"]]
    template = _committed(f"deploy/member-{stage}.json")
    created_in_members = sorted(
        res["Properties"]["RoleName"] for res in template["Resources"].values() if res["Type"] == "AWS::IAM::Role"
    )
    assert created_in_members == sorted([settings.member_role, f"trailguard-{stage}-forward-events"])
    central = _committed(f".chalice/policy-{stage}.json")
    assert json.loads(CliRunner().invoke(main, ["policy", "--stage", stage]).output) == central
    member = template["Resources"]["MemberRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    declared = {p for action in registered_actions().values() for p in action.permissions}
    assert {"iam:UpdateAssumeRolePolicy", "iam:PassRole"} <= {p for p in declared if _may_change_a_role(p)}
    for policy, own in ((central, [*function_roles, *created_in_members]), (member, created_in_members)):
        (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
        assert deny["Sid"] == "NeverChangeOwnRoles" and "Condition" not in deny
        assert sorted(deny["Resource"]) == sorted(f"arn:*:iam::*:role/{name}" for name in own)
        denied = set(_actions(deny))
        allowed = {a for s in policy["Statement"] if s["Effect"] == "Allow" for a in _actions(s)}
        assert {"iam:UpdateAssumeRolePolicy", "iam:PassRole"} <= allowed & denied
        # whatever a playbook may add later: every role-changing permission of any action
        assert {p for p in declared if _may_change_a_role(p)} <= denied
        assert {
            "iam:AttachRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:DetachRolePolicy",
            "iam:DeleteRole",
            "iam:PutRolePermissionsBoundary",
            "iam:UpdateRole",
        } <= denied
        assert denied == set(ROLE_CHANGING_PERMISSIONS)
    member_denied = next(s for s in member["Statement"] if s["Effect"] == "Deny")["Resource"]
    assert not any(name in arn for name in function_roles for arn in member_denied)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_member_roles_are_assumed_only_inside_the_organization(stage):
    """A role named like the member role in an account outside the organization (an
    attacker's, named by a forged record) is never assumed: the resource must belong to the
    organization of the acting role itself (AWS's data-perimeter pattern)."""
    settings = stage_settings(stage)
    central = _committed(f".chalice/policy-{stage}.json")
    (assume,) = [s for s in central["Statement"] if any(a.startswith("sts:") for a in _actions(s))]
    assert assume == {
        "Sid": "AssumeMemberRole",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": f"arn:*:iam::*:role/{settings.member_role}",
        "Condition": {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}},
    }
    api = _committed(f".chalice/policy-{stage}-api.json")
    assert not any(a.startswith(("sts:", "iam:")) for s in api["Statement"] for a in _actions(s))


def test_calls_by_any_of_the_stages_roles_are_never_answered(catalog):
    """An undo by the click worker in the central account (StopLogging again) must not be
    remediated by the rules' handler, whose own role is another one."""
    settings = stage_settings("dev")
    rules = eventbridge_rules(catalog)
    for function in [*acting_functions([r.name for r in rules]), "api_handler"]:
        role = role_name("dev", function)
        identity = {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:session",
            "accountId": "123456789012",
            "arn": f"arn:aws:sts::123456789012:assumed-role/{role}/{role}",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "userName": role, "arn": f"arn:aws:iam::123456789012:role/{role}"}
            },
        }
        event = CloudTrailEvent.from_record(
            record("StopLogging", "cloudtrail.amazonaws.com", {"name": "t"}, userIdentity=identity)
        )
        skip = skip_reason(event, OwnIdentities.of(settings, "123456789012", stage_roles(settings, catalog)))
        assert skip is not None and skip.code == "own-identity", role


def test_the_member_template_deploys_with_its_conditions(aws, catalog):
    """CloudFormation (moto) takes the template: roles in the global-resources region only,
    the forwarding rules in every other region and account."""
    template = json.dumps(json.loads((PLAYBOOKS.parent / "deploy" / "member-dev.json").read_text()))
    parameters = [
        {"ParameterKey": "CentralAccountId", "ParameterValue": "210987654321"},
        {"ParameterKey": "CentralRegion", "ParameterValue": "eu-west-1"},
    ]
    boto3.client("cloudformation", region_name="us-east-1").create_stack(
        StackName="trailguard-member",
        TemplateBody=template,
        Parameters=parameters,
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    boto3.client("cloudformation", region_name="eu-central-1").create_stack(
        StackName="trailguard-member",
        TemplateBody=template,
        Parameters=parameters,
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    roles = {r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]}
    assert {"trailguard-dev-remediator", "trailguard-dev-forward-events"} <= roles
    for region in ("us-east-1", "eu-central-1"):
        events = boto3.client("events", region_name=region)
        forwarding = [r for r in events.list_rules()["Rules"] if "ForwardCloudTrailCalls" in r["Name"]]
        assert len(forwarding) == len(eventbridge_rules(catalog))  # one per rule the playbooks need
        for rule in forwarding:
            (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            assert target["Arn"] == "arn:aws:events:eu-west-1:210987654321:event-bus/default"


def test_policy_without_a_stage_reads_the_environment_and_write_needs_a_stage(monkeypatch):
    monkeypatch.setenv("TRAILGUARD_TABLE", "my-table")
    monkeypatch.setenv("TRAILGUARD_INTEGRITY_KEY", "alias/my-key")
    printed = json.loads(CliRunner().invoke(main, ["policy"]).output)
    incidents = next(s for s in printed["Statement"] if s["Sid"] == "Incidents")
    assert incidents["Resource"][0] == "arn:*:dynamodb:*:*:table/my-table"
    refused = CliRunner().invoke(main, ["policy", "--write"])
    assert refused.exit_code == 2 and "--write needs --stage" in refused.output
    api = json.loads(CliRunner().invoke(main, ["policy", "--api"]).output)
    assert [s["Sid"] for s in api["Statement"]] == ["WriteOwnLogs", "Incidents"]


def test_a_stage_without_a_table_has_no_merge_template(catalog):
    from trailguard.generate.templates import merge_template

    with pytest.raises(ValueError, match="sets no TRAILGUARD_TABLE"):
        merge_template("qa", dataclasses.replace(Settings(), table=None), [])


def test_every_test_the_security_model_names_exists():
    """docs/security.md points at tests as its evidence: each one must exist."""
    import re

    from tests.conftest import ROOT

    text = (ROOT / "docs" / "security.md").read_text()
    named = set(re.findall(r"\b(test_[a-z0-9_]+)\b(?!\.py)", text))  # test names, not test_*.py files
    sources = "".join(path.read_text() for path in (ROOT / "tests").rglob("test_*.py"))
    missing = sorted(name for name in named if f"def {name}(" not in sources)
    assert missing == [], missing
    files = set(re.findall(r"`(?:tests/)?((?:[a-z_]+/)*test_[a-z0-9_]+\.py)", text))  # test files, from tests/
    assert files and sorted(f for f in files if not (ROOT / "tests" / f).exists()) == []
    placed = re.findall(r"`(?:tests/)?((?:[a-z_]+/)*test_[a-z0-9_]+\.py)::(test_[a-z0-9_]+)", text)
    misplaced = [f"{f}::{name}" for f, name in placed if f"def {name}(" not in (ROOT / "tests" / f).read_text()]
    assert placed and misplaced == [], misplaced
