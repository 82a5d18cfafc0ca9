"""ECR remediations: take away what a repository policy gives to anyone."""

from __future__ import annotations

from chalicelib.actions import tags
from chalicelib.actions.base import TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS, Parameter, ResourceType, register
from chalicelib.actions.resource_policy import PublicStatementsRemoval
from chalicelib.aws.retrying import error_code

REPOSITORY = ResourceType("Repository", ("arn:*:ecr:*:*:repository/*",))
"""An ECR repository."""


@register
class RemovePublicRepositoryPolicyStatements(PublicStatementsRemoval):
    """Remove the statements of a repository policy that any principal may use (Principal
    `*` without a condition that pins the caller to the organization), keeping every
    other statement as written; with none left, the policy is deleted. Anyone could
    otherwise pull the images (and what is baked into them) or push new ones. Undo puts
    the previous policy back exactly.

    Example:

        steps:
          - action: ecr.remove_public_policy_statements
            with:
              repository: requestParameters.repositoryName
              trusted_accounts: named_list('trusted_accounts')
              trusted_organizations: named_list('trusted_organizations')
    """

    name = "ecr.remove_public_policy_statements"
    service = "ecr"
    permissions = {
        "ecr:ListTagsForResource": REPOSITORY,
        "ecr:GetRepositoryPolicy": REPOSITORY,
        "ecr:SetRepositoryPolicy": REPOSITORY,
        "ecr:DeleteRepositoryPolicy": REPOSITORY,
    }
    parameters = (Parameter("repository", "string", "The repository's name."), TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS)
    resource_param = "repository"

    def resource_tags(self) -> dict[str, str] | None:
        return tags.repository_tags(self.client, self.params["repository"], self.context.account, self.context.region)

    def _get(self) -> str | None:
        try:
            policy: str = self.client.get_repository_policy(repositoryName=self.params["repository"])["policyText"]
        except Exception as error:
            if error_code(error) != "RepositoryPolicyNotFoundException":
                raise
            return None
        return policy

    def _put(self, policy: str) -> None:
        self.client.set_repository_policy(repositoryName=self.params["repository"], policyText=policy)

    def _delete(self) -> None:
        self.client.delete_repository_policy(repositoryName=self.params["repository"])
