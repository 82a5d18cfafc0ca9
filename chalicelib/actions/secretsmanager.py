"""Secrets Manager remediations: take away what a secret's resource policy gives to anyone."""

from __future__ import annotations

from chalicelib.actions import tags
from chalicelib.actions.base import TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS, Parameter, ResourceType, register
from chalicelib.actions.resource_policy import PublicStatementsRemoval

SECRET = ResourceType("Secret", ("arn:*:secretsmanager:*:*:secret:*",))
"""A Secrets Manager secret."""


@register
class RemovePublicSecretPolicyStatements(PublicStatementsRemoval):
    """Remove the statements of a secret's resource policy that any principal may use
    (Principal `*` without a condition that pins the caller to the organization), keeping
    every other statement as written; with none left, the policy is deleted. Anyone could
    otherwise read the secret. (Secrets Manager refuses a public policy when the call
    passes BlockPublicPolicy; one that did not is answered here.) Undo puts the previous
    policy back exactly.

    Example:

        steps:
          - action: secretsmanager.remove_public_policy_statements
            with:
              secret: requestParameters.secretId
              trusted_accounts: named_list('trusted_accounts')
              trusted_organizations: named_list('trusted_organizations')
    """

    name = "secretsmanager.remove_public_policy_statements"
    service = "secretsmanager"
    permissions = {
        "secretsmanager:DescribeSecret": SECRET,
        "secretsmanager:GetResourcePolicy": SECRET,
        "secretsmanager:PutResourcePolicy": SECRET,
        "secretsmanager:DeleteResourcePolicy": SECRET,
    }
    parameters = (Parameter("secret", "string", "The secret's name or ARN."), TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS)
    resource_param = "secret"

    def resource_tags(self) -> dict[str, str] | None:
        return tags.secret_tags(self.client, self.params["secret"])

    def _get(self) -> str | None:
        policy: str | None = self.client.get_resource_policy(SecretId=self.params["secret"]).get("ResourcePolicy")
        return policy

    def _put(self, policy: str) -> None:
        self.client.put_resource_policy(SecretId=self.params["secret"], ResourcePolicy=policy)

    def _delete(self) -> None:
        self.client.delete_resource_policy(SecretId=self.params["secret"])
