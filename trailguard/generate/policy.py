"""The IAM policies trailguard's roles hold, generated from what the loaded playbooks' actions declare.

Least privilege, in three shapes:

- `lambda_policy`: the functions that change AWS (the rules' handler, the sweep, the click
  worker): the permissions of the actions some playbook uses, each narrowed to the resource
  type its action declares (nothing here knows one action from another), read access for
  the posture sweep, the stage's table, sealing and checking with its integrity key, its
  Slack secrets, its own click worker, assuming the member role, writing its logs.
- `api_policy`: the public Slack endpoint's function: reading and writing incidents
  (`inc-*` items only, not remembered configurations), the Slack secrets and the worker;
  no remediation permission and no KMS permission at all: a bug behind the public URL
  cannot touch a trail or a key, and cannot seal an incident the worker would act on.
- `member_policy`: the role trailguard assumes in member accounts: the remediation
  permissions, and, when the stage imports findings into Security Hub, importing and
  updating the account's own findings (a finding is imported by its own account).

What tells other tools (`output_statements`) goes to the acting roles only, and only when
the stage turns it on: putting events on the stage's bus, importing and updating Security
Hub findings; and sending a failed invocation to the stage's dead-letter queues. The public
endpoint's role gets none of it.

`iam:PassRole` (a trail's CloudWatch Logs role) is granted only for passing to the service
of the action that needs it.

Both roles that change AWS are denied every IAM call that changes trailguard's own roles
(`NeverChangeOwnRoles`): an action that restores a trust policy (or a forged incident asking
for one) must not make trailguard's roles assumable by someone else. And the member role
is assumed only inside the organization (`aws:ResourceOrgID`, AWS's data-perimeter pattern).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from chalicelib.actions.base import Action, ResourceType
from chalicelib.actions.kms import KEY
from chalicelib.playbooks.catalog import Catalog
from chalicelib.settings import Settings

SWEEP_PERMISSIONS = (
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetEventSelectors",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:ListTags",
    "config:DescribeDeliveryChannels",
    "ec2:DescribeFlowLogs",
    "kms:DescribeKey",
    "kms:ListAliases",
    "kms:ListKeys",
    "organizations:ListAccounts",
)
HEARTBEAT_PERMISSIONS = ("ssm:AddTagsToResource", "ssm:PutParameter")
"""The heartbeat's writes: tag its canary parameter (and make it, the first time), nothing else."""
TABLE_PERMISSIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query")
ENDPOINT_TABLE_PERMISSIONS = ("dynamodb:GetItem", "dynamodb:PutItem")
"""What a click needs: read the incident, write its decision conditionally."""
ENDPOINT_KEYS = ("inc-*",)
"""The items the endpoint may touch: incidents (`incidents.model.incident_id`), not remembered configurations."""
SEAL_PERMISSIONS = ("kms:GenerateMac", "kms:VerifyMac")
PASS_ROLE = "iam:PassRole"
ROLE_CHANGING_PERMISSIONS = (
    # Every IAM call that changes a role, what it may do or who may assume it (AWS's example
    # SCP "prevent changes to a specific role"), its tags (conditions may read them), and
    # lending it to a service.
    "iam:AttachRolePolicy",
    "iam:DeleteRole",
    "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    PASS_ROLE,
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
)
SAME_ORGANIZATION = {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}
"""A resource in the caller's own organization. Without AWS Organizations neither key has a
value, so a statement with this condition allows nothing."""


def _actions(catalog: Catalog) -> list[type[Action]]:
    """The actions some playbook of the catalog uses."""
    actions = {step.action.name: step.action for playbook in catalog.playbooks for step in playbook.every_step}
    return list(actions.values())


def narrowing(actions: Iterable[type[Action]]) -> dict[str, ResourceType]:
    """What each permission the actions declare is narrowed to. Two actions that narrow one
    permission differently contradict each other: refused, naming both."""
    found: dict[str, tuple[ResourceType, str]] = {}
    for action in actions:
        for permission, kind in action.permissions.items():
            seen = found.setdefault(permission, (kind, action.name))
            if seen[0] != kind:
                raise ValueError(
                    f"{permission} is narrowed to {kind.name} by {action.name} but to {seen[0].name} by {seen[1]}"
                )
    return {permission: kind for permission, (kind, _) in found.items()}


def remediation_permissions(catalog: Catalog) -> list[str]:
    return sorted(narrowing(_actions(catalog)))


def _pass_role_services(catalog: Catalog) -> list[str]:
    services = set()
    for playbook in catalog.playbooks:
        for step in playbook.every_step:
            if PASS_ROLE in step.action.permissions:
                if not step.action.passes_role_to:
                    raise ValueError(f"{step.action.name} needs iam:PassRole but names no service to pass roles to")
                services.add(step.action.passes_role_to)
    return sorted(services)


def remediation_statements(catalog: Catalog) -> list[dict[str, Any]]:
    """The actions' permissions, one statement per resource type they can be narrowed to."""
    by_type: dict[ResourceType, list[str]] = defaultdict(list)
    for permission, kind in sorted(narrowing(_actions(catalog)).items()):
        if permission != PASS_ROLE:
            by_type[kind].append(permission)
    statements: list[dict[str, Any]] = []
    for kind in sorted(by_type, key=lambda kind: kind.name):
        statements.append(
            {
                "Sid": f"Remediate{kind.name}",
                "Effect": "Allow",
                "Action": by_type[kind],
                "Resource": kind.arns[0] if len(kind.arns) == 1 else list(kind.arns),
            }
        )
    services = _pass_role_services(catalog)
    if services:
        statements.append(
            {
                "Sid": "PassRolesToRemediatedServices",
                "Effect": "Allow",
                "Action": PASS_ROLE,
                "Resource": "*",
                "Condition": {"StringEquals": {"iam:PassedToService": services}},
            }
        )
    return statements


def _logs() -> dict[str, Any]:
    return {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": "arn:*:logs:*:*:*",
    }


def _table(settings: Settings) -> list[dict[str, Any]]:
    if not settings.table:
        return []
    table = f"arn:*:dynamodb:*:*:table/{settings.table}"
    return [
        {
            "Sid": "Incidents",
            "Effect": "Allow",
            "Action": list(TABLE_PERMISSIONS),
            "Resource": [table, f"{table}/index/*"],
        }
    ]


def _endpoint_table(settings: Settings) -> list[dict[str, Any]]:
    """The endpoint's items: incidents only, by their key (IAM's `dynamodb:LeadingKeys`).

    `ForAllValues` is true when the key is absent from the request, so the `Null` condition
    requires it; GetItem and PutItem always carry it. `dynamodb:Attributes` cannot narrow the
    write further: an incident is one JSON attribute (`body`) a click rewrites whole; the
    acting roles' seal covers what is in it instead (see `incidents.seals`).
    """
    if not settings.table:
        return []
    return [
        {
            "Sid": "Incidents",
            "Effect": "Allow",
            "Action": list(ENDPOINT_TABLE_PERMISSIONS),
            "Resource": f"arn:*:dynamodb:*:*:table/{settings.table}",
            "Condition": {
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(ENDPOINT_KEYS)},
                "Null": {"dynamodb:LeadingKeys": "false"},
            },
        }
    ]


def seal_statements(settings: Settings) -> list[dict[str, Any]]:
    """Sealing and checking with the stage's integrity key (HMAC_SHA_256 only), and no other key.

    An alias is granted through `kms:ResourceAliases` (the key's id is known only once it
    exists; IAM cannot name a key by alias in `Resource`); a key ARN or id by itself.
    """
    from chalicelib.aws.seals import MAC_ALGORITHM
    from trailguard.bootstrap import alias_of

    key = settings.integrity_key
    if not key:
        return []
    statement: dict[str, Any] = {"Sid": "SealIncidents", "Effect": "Allow", "Action": list(SEAL_PERMISSIONS)}
    alias = alias_of(key)
    condition: dict[str, Any] = {"StringEquals": {"kms:MacAlgorithm": MAC_ALGORITHM}}
    if alias is not None:
        statement["Resource"] = KEY.arns[0]
        condition["ForAnyValue:StringEquals"] = {"kms:ResourceAliases": alias}
    else:
        statement["Resource"] = key if key.startswith("arn:") else f"arn:*:kms:*:*:key/{key}"
    statement["Condition"] = condition
    return [statement]


def integrity_key_policy(account_root: Any, acting_roles: list[Any]) -> dict[str, Any]:
    """The integrity key's own policy: the account manages it through IAM (AWS's default key
    policy), and no principal but the acting roles may make a seal, whatever IAM grants."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountManagesTheKeyThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": account_root},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "OnlyTheActingRolesSeal",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "kms:GenerateMac",
                "Resource": "*",
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": acting_roles}},
            },
        ],
    }


def own_roles_unchanged(own_roles: Iterable[str]) -> dict[str, Any]:
    """An explicit deny, which no allow (this policy's or any other) overrides: the roles
    that remediate may change no role of trailguard's own. The names are those the stage
    creates in the accounts the policy's role acts in (IAM changes only its own account's
    roles), so a role an attacker names like one of trailguard's in another account stays
    remediable."""
    names = sorted(set(own_roles))
    if not names:
        raise ValueError("no role of trailguard's own to protect: give the stage's role names")
    return {
        "Sid": "NeverChangeOwnRoles",
        "Effect": "Deny",
        "Action": list(ROLE_CHANGING_PERMISSIONS),
        "Resource": [f"arn:*:iam::*:role/{name}" for name in names],
    }


def lambda_policy(
    catalog: Catalog,
    settings: Settings,
    *,
    own_roles: Iterable[str] | None = None,
    dead_letters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`own_roles`: the stage's roles in the central account (by default those the settings
    name); `dead_letters`: the statement letting them send failed invocations to the stage's
    queues (`deadletters.send_statement`)."""
    if own_roles is None:
        own_roles = settings.own_role_names | {settings.member_role}
    statements = [
        _logs(),
        *remediation_statements(catalog),
        own_roles_unchanged(own_roles),
        {"Sid": "Sweep", "Effect": "Allow", "Action": list(SWEEP_PERMISSIONS), "Resource": "*"},
        *_table(settings),
        *seal_statements(settings),
        *_slack_statements(settings),
        *switch_statements(settings),
        {
            "Sid": "AssumeMemberRole",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": f"arn:*:iam::*:role/{settings.member_role}",
            "Condition": SAME_ORGANIZATION,
        },
        *output_statements(settings),
        *([dead_letters] if dead_letters else []),
        heartbeat_statement(settings.stage_label),
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def heartbeat_statement(stage: str) -> dict[str, Any]:
    """Tagging (and creating) the heartbeat's canary parameter in any region, and nothing else."""
    from chalicelib.memory.heartbeats import canary_name

    return {
        "Sid": "Heartbeat",
        "Effect": "Allow",
        "Action": list(HEARTBEAT_PERMISSIONS),
        "Resource": f"arn:*:ssm:*:*:parameter{canary_name(stage)}",
    }


SECURITY_HUB_PERMISSIONS = {
    "securityhub:BatchImportFindings": "arn:*:securityhub:*:*:product/*/default",
    "securityhub:BatchUpdateFindings": "arn:*:securityhub:*:*:hub/default",
}
"""Importing a finding as the account's own custom product (`product/<account>/default`, the
only product trailguard imports as), and moving its workflow status (`BatchUpdateFindings`
acts on the account's hub)."""


def security_hub_statements() -> list[dict[str, Any]]:
    return [
        {
            "Sid": "ImportFindingsAsOwnProduct" if "Import" in permission else "UpdateOwnFindingsWorkflow",
            "Effect": "Allow",
            "Action": permission,
            "Resource": resource,
        }
        for permission, resource in SECURITY_HUB_PERMISSIONS.items()
    ]


def output_statements(settings: Settings) -> list[dict[str, Any]]:
    """What the acting roles need to tell the tools the stage turns on."""
    statements = []
    if settings.events_out is not None:
        bus = settings.events_out
        statements.append(
            {
                "Sid": "PutIncidentEvents",
                "Effect": "Allow",
                "Action": "events:PutEvents",
                "Resource": bus if bus.startswith("arn:") else f"arn:*:events:*:*:event-bus/{bus}",
            }
        )
    if settings.security_hub:
        statements += security_hub_statements()
    return statements


def api_policy(settings: Settings) -> dict[str, Any]:
    """The Slack endpoint records decisions and hands the work to the worker: nothing more."""
    return {"Version": "2012-10-17", "Statement": [_logs(), *_endpoint_table(settings), *_slack_statements(settings)]}


def operator_policy(settings: Settings) -> dict[str, Any]:
    """What a person running `trailguard incidents|exceptions|pause|resume|status` needs: the
    Slack endpoint's reach into the table (incident items, a decision one conditional write),
    reading exceptions, listing through the open index, handing the work to the stage's
    worker, and the kill switch. No KMS permission and no remediation permission: the
    operator cannot seal, so what they decide is checked and carried out by the worker (the
    member role trusts only the acting roles anyway)."""
    statements: list[dict[str, Any]] = []
    if settings.table:
        table = f"arn:*:dynamodb:*:*:table/{settings.table}"
        statements += [
            {
                "Sid": "DecideIncidents",
                "Effect": "Allow",
                "Action": list(ENDPOINT_TABLE_PERMISSIONS),
                "Resource": table,
                "Condition": {
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(ENDPOINT_KEYS)},
                    "Null": {"dynamodb:LeadingKeys": "false"},
                },
            },
            {
                "Sid": "ReadExceptions",
                "Effect": "Allow",
                "Action": "dynamodb:GetItem",
                "Resource": table,
                "Condition": {
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["exc-*"]},
                    "Null": {"dynamodb:LeadingKeys": "false"},
                },
            },
            {
                "Sid": "ListIncidentsAndExceptions",
                "Effect": "Allow",
                "Action": ["dynamodb:Query", "dynamodb:Scan"],
                "Resource": [f"{table}/index/*", table],
            },
        ]
    if settings.slack_worker:
        statements.append(
            {
                "Sid": "HandDecisionsToTheWorker",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": f"arn:*:lambda:*:*:function:{settings.slack_worker}",
            }
        )
    if settings.switch_parameter:
        statements.append(
            {
                "Sid": "TheSwitch",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter", "ssm:PutParameter"],
                "Resource": f"arn:*:ssm:*:*:parameter/{settings.switch_parameter.lstrip('/')}",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def member_policy(
    catalog: Catalog, *, own_roles: Iterable[str], security_hub: bool = False, stage: str | None = None
) -> dict[str, Any]:
    """`own_roles`: the roles the member template creates in each account; `security_hub`:
    whether the stage imports findings (from each incident's own account); `stage`: whose
    heartbeat canary the role may tag."""
    statements = [*remediation_statements(catalog), own_roles_unchanged(own_roles)]
    if stage is not None:
        statements.append(heartbeat_statement(stage))
    if security_hub:
        statements += security_hub_statements()
    return {"Version": "2012-10-17", "Statement": statements}


def switch_statements(settings: Settings) -> list[dict[str, Any]]:
    """Reading the stage's kill switch (`organization.switch`): the acting functions read it
    at run time; only operators write it (`trailguard pause`, see `operator_policy`)."""
    if not settings.switch_parameter:
        return []
    return [
        {
            "Sid": "ReadTheSwitch",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": f"arn:*:ssm:*:*:parameter/{settings.switch_parameter.lstrip('/')}",
        }
    ]


def _slack_statements(settings: Settings) -> list[dict[str, Any]]:
    """Reading the Slack secrets the stage names, and handing clicks to its own worker.

    SecureString parameters encrypted with the AWS managed key `aws/ssm` need no
    kms:Decrypt here: that key's policy lets every principal of the account decrypt
    through Parameter Store. A customer managed key must allow the role in its key policy.
    """
    from chalicelib.slack.secrets import SECRETS_MANAGER, SSM

    references = [value for value in (settings.slack_token, settings.slack_signing_secret) if value]
    parameters = sorted(
        f"arn:*:ssm:*:*:parameter/{ref[len(SSM) :].lstrip('/')}" for ref in references if ref.startswith(SSM)
    )
    secrets = sorted(
        f"arn:*:secretsmanager:*:*:secret:{ref[len(SECRETS_MANAGER) :]}-??????"
        for ref in references
        if ref.startswith(SECRETS_MANAGER)
    )
    statements: list[dict[str, Any]] = []
    if parameters:
        statements.append(
            {"Sid": "ReadSlackParameters", "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": parameters}
        )
    if secrets:
        statements.append(
            {
                "Sid": "ReadSlackSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secrets,
            }
        )
    if settings.slack_worker:
        statements.append(
            {
                "Sid": "HandClicksToTheWorker",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": f"arn:*:lambda:*:*:function:{settings.slack_worker}",
            }
        )
    return statements
