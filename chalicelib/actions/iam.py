"""IAM remediations: take away the ways in someone else just created."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from chalicelib.actions.base import Action, ActionError, Parameter, register
from chalicelib.domain_functions import external_principals

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
    permissions = ("iam:ListAccessKeys", "iam:UpdateAccessKey")
    parameters = (_USER, Parameter("key", "string", "The access key id."))

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
    permissions = ("iam:GetLoginProfile", "iam:DeleteLoginProfile")
    parameters = (_USER,)

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
    """Take out of a role's trust policy the principals outside the organization's accounts:
    `*`, and AWS principals in accounts not named in `trusted_accounts` (the role's own
    account is always trusted). Service and federated principals stay.

    A statement that trusts only such principals is removed; one that mixes them keeps its
    trusted principals. If nothing would be left, the step fails rather than leave a role
    nobody can assume. Undo puts the previous trust policy back.

    Example:

        steps:
          - action: iam.restore_trust_policy
            with:
              role: requestParameters.roleName
              trusted_accounts: "[recipientAccountId]"
    """

    name = "iam.restore_trust_policy"
    service = "iam"
    eventually_consistent = True  # IAM documents its changes as eventually consistent
    permissions = ("iam:GetRole", "iam:UpdateAssumeRolePolicy")
    parameters = (
        Parameter("role", "string", "Name of the role."),
        Parameter(
            "trusted_accounts", "array", "Account ids whose principals may stay (the role's own account always may)."
        ),
    )

    def _trusted(self, arn: str) -> list[str]:
        return [arn.split(":")[4], *(str(account) for account in self.params["trusted_accounts"])]

    def snapshot(self) -> dict[str, Any]:
        role = self.client.get_role(RoleName=self.params["role"])["Role"]
        return {"Role": self.params["role"], "Arn": role["Arn"], "Policy": _document(role["AssumeRolePolicyDocument"])}

    def check(self, state: Mapping[str, Any]) -> bool:
        return not external_principals(state["Policy"], self._trusted(state["Arn"]))

    def apply(self, state: Mapping[str, Any]) -> None:
        document = dict(state["Policy"])
        external = set(external_principals(document, self._trusted(state["Arn"])))
        statements = document.get("Statement") or []
        kept: list[dict[str, Any]] = []
        for statement in statements if isinstance(statements, list) else [statements]:
            principal = statement.get("Principal")
            if principal == "*":
                continue
            if isinstance(principal, Mapping) and "AWS" in principal:
                aws = principal["AWS"] if isinstance(principal["AWS"], list) else [principal["AWS"]]
                trusted = [p for p in aws if p not in external]
                rest = {k: v for k, v in principal.items() if k != "AWS"}
                if not trusted and not rest:
                    continue
                principal = {**rest, **({"AWS": trusted if len(trusted) > 1 else trusted[0]} if trusted else {})}
                statement = {**statement, "Principal": principal}
            kept.append(statement)
        if not kept:
            raise ActionError(
                f"removing {', '.join(sorted(external))} would leave role {state['Role']} with an empty "
                "trust policy: fix it by hand"
            )
        self.client.update_assume_role_policy(
            RoleName=state["Role"], PolicyDocument=json.dumps({**document, "Statement": kept})
        )

    def restore(self, state: Mapping[str, Any]) -> None:
        self.client.update_assume_role_policy(RoleName=state["Role"], PolicyDocument=json.dumps(state["Policy"]))
