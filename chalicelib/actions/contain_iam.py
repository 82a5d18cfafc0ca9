"""Containing a principal: the person or stolen credential that did something keeps its access
unless it is taken away. These actions act on the actor, not the resource:

- `iam.revoke_role_sessions`: AWS's documented way to revoke a role's active sessions, an
  inline deny of every action for sessions whose `aws:TokenIssueTime` is earlier than now
  (the console's "Revoke active sessions" writes the same statement as `AWSRevokeOlderSessions`);
- `iam.quarantine_role`, `iam.quarantine_user`: attach a deny-all managed policy trailguard
  owns (`trailguard-quarantine`, path `/trailguard/`, created in the account on first use);
- `iam.deactivate_user_access_keys`: every active access key of a user made inactive.

Each refuses, saying why, principals AWS does not let be contained this way or that must not
be: service-linked roles (AWS owns their policies), IAM Identity Center permission-set roles
(`AWSReservedSSO_*`: Identity Center owns them and puts them back when it provisions the
permission set; contain the user in Identity Center), trailguard's own roles, and the
organization's break-glass roles (`Protected`). Undo takes away exactly what apply added,
and refuses when the principal changed since (`Action.undo`).

What each does to a running workload is in its docstring (docs/playbooks.md).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from chalicelib.actions import tags
from chalicelib.actions.base import Action as _Action
from chalicelib.actions.base import ActionError, Parameter, Protected, ResourceType, register
from chalicelib.actions.iam import ROLE, USER, _document

REVOCATION_POLICY = "trailguard-revoke-older-sessions"
"""The inline policy `iam.revoke_role_sessions` writes; it holds its one statement only."""
REVOCATION_SID = "TrailguardRevokeOlderSessions"
QUARANTINE_POLICY = "trailguard-quarantine"
QUARANTINE_PATH = "/trailguard/"
QUARANTINE_DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "TrailguardQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}],
}
QUARANTINE = ResourceType("Policy", ("arn:*:iam::*:policy/trailguard/*",))
"""trailguard's own managed policies (the quarantine's deny-all)."""

_SERVICE_LINKED_PATH = "/aws-service-role/"
_IDENTITY_CENTER_PATH = "/aws-reserved/sso.amazonaws.com/"


def role_refusal(role: Mapping[str, Any], protected: Protected) -> str | None:
    """Why trailguard must not contain this role (as IAM's GetRole returns it), or None."""
    name, arn, path = str(role["RoleName"]), str(role["Arn"]), str(role.get("Path") or "/")
    if path.startswith(_SERVICE_LINKED_PATH):
        return (
            f"role {name} is a service-linked role: AWS owns its policies, so its sessions cannot be revoked "
            "or the role quarantined; contain what uses the service instead"
        )
    if path.startswith(_IDENTITY_CENTER_PATH) or name.startswith("AWSReservedSSO_"):
        return (
            f"role {name} is an IAM Identity Center permission-set role: Identity Center owns it and puts it "
            "back when it provisions the permission set; contain the user in Identity Center (remove the "
            "assignment, or the user's sessions)"
        )
    if name in protected.own_roles:
        return f"role {name} is trailguard's own: containing it would stop trailguard itself"
    if arn in protected.break_glass_roles:
        return f"role {name} is a break-glass role (settings lists.break_glass_roles): people need it most now"
    return None


class _RoleContainment(_Action):
    """What the role actions share: reading the role, and refusing the ones not to contain."""

    def _role(self) -> dict[str, Any]:
        return dict(self.client.get_role(RoleName=self.params["role"])["Role"])

    def _refuse_if_protected(self, role: Mapping[str, Any]) -> None:
        refusal = role_refusal(role, self.context.protected)
        if refusal is not None:
            raise ActionError(f"refused: {refusal}; nothing was changed")

    def resource_tags(self) -> dict[str, str] | None:
        return tags.role_tags(self.client, self.params["role"])


_ROLE = Parameter("role", "string", "Name of the IAM role to contain.")


@register
class RevokeRoleSessions(_RoleContainment):
    """Revoke a role's active sessions: every session issued until now is denied every action
    (AWS's documented inline deny on `aws:TokenIssueTime`, the console's "Revoke active
    sessions"). Credentials stolen from an instance, a function or a CI job stop working at
    once; new sessions work, so the workload that assumes the role gets fresh credentials
    (EC2 and Lambda refresh theirs within minutes; a long-running process that holds old
    ones fails until it asks again).

    Refused for service-linked roles, Identity Center permission-set roles, trailguard's own
    and break-glass roles. A revocation trailguard made earlier is moved to now. Undo
    removes exactly the statement it added (or puts back the earlier cutoff), and refuses if
    the policy changed since.

    Example:

        steps:
          - action: iam.revoke_role_sessions
            with: {role: actor_role(userIdentity), since: eventTime}
    """

    name = "iam.revoke_role_sessions"
    service = "iam"
    eventually_consistent = True  # IAM documents its changes as eventually consistent
    permissions = {
        "iam:ListRoleTags": ROLE,
        "iam:GetRole": ROLE,
        "iam:GetRolePolicy": ROLE,
        "iam:PutRolePolicy": ROLE,
        "iam:DeleteRolePolicy": ROLE,
    }
    parameters = (
        _ROLE,
        Parameter(
            "since",
            "string",
            "When the credentials were misused (the call's eventTime, the finding's updatedAt): the role is safe "
            "once sessions issued up to then are revoked.",
        ),
    )

    def snapshot(self) -> dict[str, Any]:
        role = self._role()
        try:
            policy = self.client.get_role_policy(RoleName=self.params["role"], PolicyName=REVOCATION_POLICY)
            document: dict[str, Any] | None = _document(policy["PolicyDocument"])
        except self.client.exceptions.NoSuchEntityException:
            document = None
        return {"Role": role["RoleName"], "Arn": role["Arn"], "Path": role.get("Path", "/"), "Revocation": document}

    def check(self, state: Mapping[str, Any]) -> bool:
        cutoff = revocation_cutoff(state["Revocation"])
        return cutoff is not None and cutoff >= _parse(self.params["since"])

    def apply(self, state: Mapping[str, Any]) -> None:
        self._refuse_if_protected({"RoleName": state["Role"], "Arn": state["Arn"], "Path": state["Path"]})
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.client.put_role_policy(
            RoleName=state["Role"], PolicyName=REVOCATION_POLICY, PolicyDocument=json.dumps(revocation(now))
        )
        self.note = f"sessions issued before {_text(now)} are denied every action"

    def restore(self, state: Mapping[str, Any]) -> None:
        if state["Revocation"] is None:
            self.client.delete_role_policy(RoleName=state["Role"], PolicyName=REVOCATION_POLICY)
        else:
            self.client.put_role_policy(
                RoleName=state["Role"], PolicyName=REVOCATION_POLICY, PolicyDocument=json.dumps(state["Revocation"])
            )


def revocation(cutoff: dt.datetime) -> dict[str, Any]:
    """AWS's revocation statement: deny everything to sessions issued before `cutoff`."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": REVOCATION_SID,
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": _text(cutoff)}},
            }
        ],
    }


def revocation_cutoff(document: Any) -> dt.datetime | None:
    """The time before which trailguard's revocation denies sessions, None if `document` is
    not exactly trailguard's revocation statement."""
    if not isinstance(document, Mapping):
        return None
    statements = document.get("Statement")
    if not isinstance(statements, list) or len(statements) != 1 or not isinstance(statements[0], Mapping):
        return None
    statement = statements[0]
    if statement.get("Sid") != REVOCATION_SID or statement.get("Effect") != "Deny":
        return None
    value = (statement.get("Condition") or {}).get("DateLessThan", {}).get("aws:TokenIssueTime")
    try:
        return _parse(value) if isinstance(value, str) else None
    except ValueError:
        return None


def session_denied(document: Any, token_issued: dt.datetime) -> bool:
    """Whether trailguard's revocation denies a session issued at `token_issued`: the one
    condition AWS evaluates for it (`DateLessThan` on `aws:TokenIssueTime`), for the demo and
    the tests, since moto does not evaluate IAM policies. AWS decides in earnest."""
    cutoff = revocation_cutoff(document)
    return cutoff is not None and token_issued < cutoff


def _parse(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Quarantine(_Action):
    """Attaching trailguard's deny-all managed policy, created in the account on first use."""

    def _policy_arn(self, principal_arn: str) -> str:
        parts = principal_arn.split(":")
        return f"arn:{parts[1]}:iam::{parts[4]}:policy{QUARANTINE_PATH}{QUARANTINE_POLICY}"

    def _ensure_policy(self, arn: str) -> None:
        try:
            policy = self.client.get_policy(PolicyArn=arn)["Policy"]
        except self.client.exceptions.NoSuchEntityException:
            self.client.create_policy(
                PolicyName=QUARANTINE_POLICY,
                Path=QUARANTINE_PATH,
                PolicyDocument=json.dumps(QUARANTINE_DOCUMENT),
                Description="trailguard: deny every action to a contained principal (attached on approval)",
            )
            return
        version = self.client.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
        if _document(version["PolicyVersion"]["Document"]) != QUARANTINE_DOCUMENT:
            raise ActionError(
                f"the policy {arn} is not trailguard's deny-all any more (someone changed it): nothing was attached"
            )


@register
class QuarantineRole(_Quarantine, _RoleContainment):
    """Quarantine a role: attach trailguard's deny-all managed policy (`trailguard-quarantine`,
    created under `/trailguard/` on first use), so that every session of the role, old and
    new, is denied every action. Stronger than revoking its sessions: the workload that uses
    the role stops working until the quarantine is undone.

    Refused for service-linked roles, Identity Center permission-set roles, trailguard's own
    and break-glass roles. Undo detaches the policy (and leaves it in the account for next time).

    Example:

        steps:
          - action: iam.quarantine_role
            with: {role: finding_role(@)}
    """

    name = "iam.quarantine_role"
    service = "iam"
    eventually_consistent = True
    permissions = {
        "iam:ListRoleTags": ROLE,
        "iam:GetRole": ROLE,
        "iam:ListAttachedRolePolicies": ROLE,
        "iam:AttachRolePolicy": ROLE,
        "iam:DetachRolePolicy": ROLE,
        "iam:GetPolicy": QUARANTINE,
        "iam:GetPolicyVersion": QUARANTINE,
        "iam:CreatePolicy": QUARANTINE,
    }
    parameters = (_ROLE,)

    def snapshot(self) -> dict[str, Any]:
        role = self._role()
        arn = self._policy_arn(role["Arn"])
        attached = [
            policy["PolicyArn"]
            for page in self.client.get_paginator("list_attached_role_policies").paginate(RoleName=role["RoleName"])
            for policy in page["AttachedPolicies"]
        ]
        path = role.get("Path", "/")
        return {"Role": role["RoleName"], "Arn": role["Arn"], "Path": path, "Quarantined": arn in attached}

    def check(self, state: Mapping[str, Any]) -> bool:
        return bool(state["Quarantined"])

    def apply(self, state: Mapping[str, Any]) -> None:
        self._refuse_if_protected({"RoleName": state["Role"], "Arn": state["Arn"], "Path": state["Path"]})
        arn = self._policy_arn(state["Arn"])
        self._ensure_policy(arn)
        self.client.attach_role_policy(RoleName=state["Role"], PolicyArn=arn)

    def restore(self, state: Mapping[str, Any]) -> None:
        if not state["Quarantined"]:
            self.client.detach_role_policy(RoleName=state["Role"], PolicyArn=self._policy_arn(state["Arn"]))


_USER = Parameter("user", "string", "Name of the IAM user to contain.")


@register
class QuarantineUser(_Quarantine):
    """Quarantine an IAM user: attach trailguard's deny-all managed policy, so that the user's
    password, access keys and sessions are denied every action. Whatever runs with the
    user's keys (a script, a CI job) stops working until the quarantine is undone.

    Undo detaches the policy (and leaves it in the account for next time).

    Example:

        steps:
          - action: iam.quarantine_user
            with: {user: actor_user(userIdentity)}
    """

    name = "iam.quarantine_user"
    service = "iam"
    eventually_consistent = True
    permissions = {
        "iam:ListUserTags": USER,
        "iam:GetUser": USER,
        "iam:ListAttachedUserPolicies": USER,
        "iam:AttachUserPolicy": USER,
        "iam:DetachUserPolicy": USER,
        "iam:GetPolicy": QUARANTINE,
        "iam:GetPolicyVersion": QUARANTINE,
        "iam:CreatePolicy": QUARANTINE,
    }
    parameters = (_USER,)

    def resource_tags(self) -> dict[str, str] | None:
        return tags.user_tags(self.client, self.params["user"])

    def snapshot(self) -> dict[str, Any]:
        user = self.client.get_user(UserName=self.params["user"])["User"]
        arn = self._policy_arn(user["Arn"])
        attached = [
            policy["PolicyArn"]
            for page in self.client.get_paginator("list_attached_user_policies").paginate(UserName=user["UserName"])
            for policy in page["AttachedPolicies"]
        ]
        return {"User": user["UserName"], "Arn": user["Arn"], "Quarantined": arn in attached}

    def check(self, state: Mapping[str, Any]) -> bool:
        return bool(state["Quarantined"])

    def apply(self, state: Mapping[str, Any]) -> None:
        arn = self._policy_arn(state["Arn"])
        self._ensure_policy(arn)
        self.client.attach_user_policy(UserName=state["User"], PolicyArn=arn)

    def restore(self, state: Mapping[str, Any]) -> None:
        if not state["Quarantined"]:
            self.client.detach_user_policy(UserName=state["User"], PolicyArn=self._policy_arn(state["Arn"]))


@register
class DeactivateUserAccessKeys(_Action):
    """Deactivate every active access key of an IAM user (not delete them: a deleted key cannot
    come back). A stolen key stops working at once; so does every script or job that uses
    the user's keys. The console password and role sessions are not touched (quarantine the
    user for those).

    Undo makes active again exactly the keys it deactivated, and refuses if any key of the
    user changed since (a key added, deleted or switched).

    Example:

        steps:
          - action: iam.deactivate_user_access_keys
            with: {user: finding_user(@)}
    """

    name = "iam.deactivate_user_access_keys"
    service = "iam"
    eventually_consistent = True
    permissions = {
        "iam:ListUserTags": USER,
        "iam:ListAccessKeys": USER,
        "iam:UpdateAccessKey": USER,
    }
    parameters = (_USER,)

    def resource_tags(self) -> dict[str, str] | None:
        return tags.user_tags(self.client, self.params["user"])

    def snapshot(self) -> dict[str, Any]:
        keys = {
            key["AccessKeyId"]: key["Status"]
            for page in self.client.get_paginator("list_access_keys").paginate(UserName=self.params["user"])
            for key in page["AccessKeyMetadata"]
        }
        return {"User": self.params["user"], "Keys": dict(sorted(keys.items()))}

    def check(self, state: Mapping[str, Any]) -> bool:
        return all(status == "Inactive" for status in state["Keys"].values())

    def apply(self, state: Mapping[str, Any]) -> None:
        for key, status in state["Keys"].items():
            if status == "Active":
                self.client.update_access_key(UserName=state["User"], AccessKeyId=key, Status="Inactive")

    def restore(self, state: Mapping[str, Any]) -> None:
        for key, status in state["Keys"].items():
            if status == "Active":
                self.client.update_access_key(UserName=state["User"], AccessKeyId=key, Status="Active")
