"""The Lambda role's IAM policy, generated from what the loaded playbooks' actions declare.

Least privilege: the role holds the permissions of the actions some playbook uses, and
nothing else beyond writing its own logs.
"""

from __future__ import annotations

from typing import Any

from chalicelib.catalog import Catalog


def remediation_permissions(catalog: Catalog) -> list[str]:
    return sorted({p for playbook in catalog.playbooks for step in playbook.steps for p in step.action.permissions})


def lambda_policy(catalog: Catalog) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "arn:*:logs:*:*:*",
        }
    ]
    permissions = remediation_permissions(catalog)
    if permissions:
        statements.append({"Sid": "Remediate", "Effect": "Allow", "Action": permissions, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}
