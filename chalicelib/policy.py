"""The Lambda role's IAM policy, generated from what the loaded playbooks' actions declare.

Least privilege: the role holds the permissions of the actions some playbook uses, read
access for the posture sweep, its own table, the stage's Slack secrets and its own click
worker, assuming the member role in other accounts, and writing its own logs; nothing
else. `iam:PassRole` (a trail's CloudWatch Logs role) is granted only for passing to the
service of the action that needs it.
"""

from __future__ import annotations

from typing import Any

from chalicelib.catalog import Catalog
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
)
TABLE_PERMISSIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query")
PASS_ROLE = "iam:PassRole"


def remediation_permissions(catalog: Catalog) -> list[str]:
    return sorted({p for playbook in catalog.playbooks for step in playbook.steps for p in step.action.permissions})


def _pass_role_services(catalog: Catalog) -> list[str]:
    services = set()
    for playbook in catalog.playbooks:
        for step in playbook.steps:
            if PASS_ROLE in step.action.permissions:
                if not step.action.passes_role_to:
                    raise ValueError(f"{step.action.name} needs iam:PassRole but names no service to pass roles to")
                services.add(step.action.passes_role_to)
    return sorted(services)


def lambda_policy(catalog: Catalog, settings: Settings) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "arn:*:logs:*:*:*",
        }
    ]
    remediate = sorted(set(remediation_permissions(catalog)) - {PASS_ROLE})
    if remediate:
        statements.append({"Sid": "Remediate", "Effect": "Allow", "Action": remediate, "Resource": "*"})
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
    statements.append({"Sid": "Sweep", "Effect": "Allow", "Action": list(SWEEP_PERMISSIONS), "Resource": "*"})
    if settings.table:
        table = f"arn:*:dynamodb:*:*:table/{settings.table}"
        statements.append(
            {"Sid": "Incidents", "Effect": "Allow", "Action": list(TABLE_PERMISSIONS), "Resource": [table, f"{table}/index/*"]}
        )
    statements += _slack_statements(settings)
    statements.append(
        {
            "Sid": "AssumeMemberRole",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": f"arn:*:iam::*:role/{settings.member_role}",
        }
    )
    return {"Version": "2012-10-17", "Statement": statements}


def _slack_statements(settings: Settings) -> list[dict[str, Any]]:
    """Reading the Slack secrets the stage names, and handing clicks to its own worker.

    SecureString parameters encrypted with the AWS managed key `aws/ssm` need no
    kms:Decrypt here: that key's policy lets every principal of the account decrypt
    through Parameter Store. A customer managed key must allow the role in its key policy.
    """
    from chalicelib.slack.secrets import SECRETS_MANAGER, SSM

    references = [value for value in (settings.slack_token, settings.slack_signing_secret) if value]
    parameters = sorted(f"arn:*:ssm:*:*:parameter/{ref[len(SSM):].lstrip('/')}" for ref in references
                        if ref.startswith(SSM))
    secrets = sorted(f"arn:*:secretsmanager:*:*:secret:{ref[len(SECRETS_MANAGER):]}-??????" for ref in references
                     if ref.startswith(SECRETS_MANAGER))
    statements: list[dict[str, Any]] = []
    if parameters:
        statements.append({"Sid": "ReadSlackParameters", "Effect": "Allow", "Action": "ssm:GetParameter",
                           "Resource": parameters})
    if secrets:
        statements.append({"Sid": "ReadSlackSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                           "Resource": secrets})
    if settings.slack_worker:
        statements.append({"Sid": "HandClicksToTheWorker", "Effect": "Allow", "Action": "lambda:InvokeFunction",
                           "Resource": f"arn:*:lambda:*:*:function:{settings.slack_worker}"})
    return statements
