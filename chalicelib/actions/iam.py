"""IAM remediations: take away the ways in someone else just created."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from chalicelib.actions import tags
from chalicelib.actions.base import (
    TRUSTED_ACCOUNTS,
    TRUSTED_ORGANIZATIONS,
    Action,
    ActionError,
    Parameter,
    ResourceType,
    register,
    trusted_by,
)
from chalicelib.aws.resource_policies import Trusted, allow_statements, statement_outsiders

ROLE = ResourceType("Role", ("arn:*:iam::*:role/*",))
"""An IAM role."""
SERVICE_LINKED_ROLE = ResourceType("ServiceLinkedRole", ("arn:*:iam::*:role/aws-service-role/*",))
"""A service-linked role."""
USER = ResourceType("User", ("arn:*:iam::*:user/*",))
"""An IAM user."""

_USER = Parameter("user", "string", "Name of the IAM user.")


@register
class DeactivateAccessKey(Action):
    """Deactivate an access key (not delete it: its owner may need it, and a deleted key
    cannot come back).

    Creating an access key for another user is a classic way to keep access. Undo makes
    the key active again.

    Example:

        steps:
          - action: iam.deactivate_access_key
            with: {user: responseElements.accessKey.userName, key: responseElements.accessKey.accessKeyId}
    """

    name = "iam.deactivate_access_key"
    service = "iam"
    eventually_consistent = True  # IAM documents its changes as eventually consistent
    permissions = {
        "iam:ListUserTags": USER,
        "iam:ListAccessKeys": USER,
        "iam:UpdateAccessKey": USER,
    }
    parameters = (_USER, Parameter("key", "string", "The access key id."))

    def resource_tags(self) -> dict[str, str] | None:
        return tags.user_tags(self.client, self.params["user"])

    def snapshot(self) -> dict[str, Any]:
        keys = self.client.list_access_keys(UserName=self.params["user"])["AccessKeyMetadata"]
        status = next((k["Status"] for k in keys if k["AccessKeyId"] == self.params["key"]), None)
        if status is None:
            raise ActionError(f"user {self.params['user']} has no access key {self.params['key']}")
        return {"User": self.params["user"], "AccessKeyId": self.params["key"], "Status": status}

    def check(self, state: Mapping[str, Any]) -> bool:
        return state["Status"] == "Inactive"

    def apply(self, state: Mapping[str, Any]) -> None:
        self.client.update_access_key(UserName=state["User"], AccessKeyId=state["AccessKeyId"], Status="Inactive")

    def restore(self, state: Mapping[str, Any]) -> None:
        self.client.update_access_key(UserName=state["User"], AccessKeyId=state["AccessKeyId"], Status=state["Status"])


@register
class DeleteLoginProfile(Action):
    """Delete a user's console password, set or changed by someone else.

    There is no undo: a password cannot be read back, so it cannot be put back. Undo is
    refused with that reason; an administrator gives the user a new password.

    Example:

        steps:
          - action: iam.delete_login_profile
            with: {user: requestParameters.userName}
    """

    name = "iam.delete_login_profile"
    service = "iam"
    eventually_consistent = True  # IAM documents its changes as eventually consistent
    permissions = {
        "iam:ListUserTags": USER,
        "iam:GetLoginProfile": USER,
        "iam:DeleteLoginProfile": USER,
    }
    parameters = (_USER,)

    def resource_tags(self) -> dict[str, str] | None:
        return tags.user_tags(self.client, self.params["user"])

    def snapshot(self) -> dict[str, Any]:
        try:
            profile = self.client.get_login_profile(UserName=self.params["user"])["LoginProfile"]
        except self.client.exceptions.NoSuchEntityException:
            return {"User": self.params["user"], "LoginProfile": False}
        return {
            "User": self.params["user"],
            "LoginProfile": True,
            "PasswordResetRequired": bool(profile.get("PasswordResetRequired")),
        }

    def check(self, state: Mapping[str, Any]) -> bool:
        return not state["LoginProfile"]

    def apply(self, state: Mapping[str, Any]) -> None:
        self.client.delete_login_profile(UserName=state["User"])

    def restore(self, state: Mapping[str, Any]) -> None:
        if state["LoginProfile"]:
            raise ActionError(
                "a console password cannot be put back (it cannot be read): "
                "an administrator must give the user a new one"
            )


def _document(policy: Any) -> dict[str, Any]:
    """A trust policy as IAM returns it: a dict (boto3) or URL-encoded JSON text."""
    if isinstance(policy, str):
        return json.loads(unquote(policy))
    return dict(policy)


@register
class RestoreTrustPolicy(Action):
    """Take out of a role's trust policy who it lets in from outside the organization, as
    `external_principals()` judges with the same trusted accounts and organizations as the
    playbook's condition: `*`, AWS principals of untrusted accounts, and GitHub Actions'
    OIDC provider when no condition pins the repository owner. A statement whose condition
    pins the caller to the organization stays; service principals stay; the role's own
    account is always trusted.

    A statement that lets in only outsiders is removed; one that mixes them keeps its
    trusted principals. If nothing would be left, the step fails rather than leave a role
    nobody can assume. Undo puts the previous trust policy back.

    Example:

        steps:
          - action: iam.restore_trust_policy
            with:
              role: requestParameters.roleName
              trusted_accounts: named_list('trusted_accounts')
              trusted_organizations: named_list('trusted_organizations')
    """

    name = "iam.restore_trust_policy"
    service = "iam"
    eventually_consistent = True  # IAM documents its changes as eventually consistent
    permissions = {
        "iam:ListRoleTags": ROLE,
        "iam:GetRole": ROLE,
        "iam:UpdateAssumeRolePolicy": ROLE,
    }
    parameters = (Parameter("role", "string", "Name of the role."), TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS)

    def resource_tags(self) -> dict[str, str] | None:
        return tags.role_tags(self.client, self.params["role"])

    def _trusted(self, arn: str) -> Trusted:
        return trusted_by(self, arn.split(":")[4])

    def snapshot(self) -> dict[str, Any]:
        role = self.client.get_role(RoleName=self.params["role"])["Role"]
        return {"Role": self.params["role"], "Arn": role["Arn"], "Policy": _document(role["AssumeRolePolicyDocument"])}

    def check(self, state: Mapping[str, Any]) -> bool:
        trusted = self._trusted(state["Arn"])
        return not any(statement_outsiders(s, trusted) for s in allow_statements(state["Policy"]))

    def apply(self, state: Mapping[str, Any]) -> None:
        document = dict(state["Policy"])
        trusted = self._trusted(state["Arn"])
        statements = document.get("Statement") or []
        kept: list[Any] = []
        removed: list[str] = []
        for statement in statements if isinstance(statements, list) else [statements]:
            outsiders = statement_outsiders(statement, trusted) if isinstance(statement, Mapping) else []
            if not outsiders:
                kept.append(statement)
                continue
            removed += outsiders
            principal = None if "NotPrincipal" in statement else _without(statement.get("Principal"), set(outsiders))
            if principal:
                kept.append({**statement, "Principal": principal})
        if not kept:
            raise ActionError(
                f"removing {', '.join(sorted(set(removed)))} would leave role {state['Role']} with an empty "
                "trust policy: fix it by hand"
            )
        self.client.update_assume_role_policy(
            RoleName=state["Role"], PolicyDocument=json.dumps({**document, "Statement": kept})
        )

    def restore(self, state: Mapping[str, Any]) -> None:
        self.client.update_assume_role_policy(RoleName=state["Role"], PolicyDocument=json.dumps(state["Policy"]))


def _without(principal: Any, outsiders: set[str]) -> Any:
    """A Principal element without `outsiders` (as `statement_outsiders` names them); None if
    nothing is left. One principal of a kind is written as a string, as IAM itself does."""
    if principal == "*" or not isinstance(principal, Mapping):
        kept_items = [p for p in (principal if isinstance(principal, list) else [principal]) if p not in outsiders]
        return kept_items or None
    remaining: dict[str, Any] = {}
    for kind, value in principal.items():
        items = [p for p in (value if isinstance(value, list) else [value]) if p not in outsiders]
        if items:
            remaining[kind] = items if len(items) > 1 else items[0]
    return remaining or None
