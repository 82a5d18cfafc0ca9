"""Containing a principal on one resource: a statement trailguard owns, added to the bucket's
or the key's policy, that denies the principal every action on it.

- `s3.deny_principal`: the bucket policy gains `TrailguardContain<hash>`, a Deny of `s3:*` on
  the bucket and its objects (a bucket without a policy gets one);
- `kms.deny_principal`: the key policy gains the same Deny of `kms:*` on the key.

The principal is denied by `aws:PrincipalArn`, as AWS documents for a resource policy that
must name a role whatever session uses it: for a role's sessions the key holds the role's
ARN (with its path), never the session's, so every session of the role, old and new, is
denied; for a user, the user's ARN. The `Principal` of the statement is `*`, narrowed by
that condition (a role ARN in `Principal` would be turned into the role's unique id and
break when the role is re-created; a Deny never makes a policy public). Every other
statement is kept as written.

Refused, saying why: a principal that is not an IAM role or user (the root user, a
federated user, a service), the roles IAM containment refuses (`role_refusal`: service-linked,
Identity Center, trailguard's own, break-glass), a statement that would not fit the policy's
size limit (20 KB for a bucket, 32 KB for a key), and for a key: an AWS managed key (AWS
owns its policy) and a principal the key policy names as its administrator (denying it
would lock the key's administration out; PutKeyPolicy is called with the lockout safety
check on).

Undo takes out exactly trailguard's statement, keeping what anyone else changed in the
policy since, and refuses when that statement itself was changed or removed. A bucket
policy that held only the statement is deleted.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.actions import tags
from chalicelib.actions.base import Action, ActionError, Parameter, UndoRefused, register
from chalicelib.actions.contain_iam import role_refusal
from chalicelib.actions.iam import ROLE, USER
from chalicelib.actions.kms import KEY
from chalicelib.actions.s3 import BUCKET, _bucket_policy
from chalicelib.aws.clients import partition_of

SID_PREFIX = "TrailguardContain"
BUCKET_POLICY_LIMIT = 20 * 1024
"""Bytes a bucket policy may hold (S3 user guide, "Bucket policies": 20 KB)."""
KEY_POLICY_LIMIT = 32 * 1024
"""Bytes a key policy may hold (KMS developer guide, quotas: 32 KB)."""
_KEY_ADMINISTRATION = ("kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey")
"""What makes a principal the key's administrator, for the refusal: it can change who uses the key."""


@dataclass(frozen=True)
class Principal:
    """Who to deny, as `aws:PrincipalArn` will hold it."""

    kind: str
    """"role" or "user"."""
    name: str
    arns: tuple[str, ...]
    """The values of the condition (a role of another account whose path is unknown has two)."""
    role: dict[str, str] | None = None
    """A role's name, ARN and path, as `role_refusal` judges them."""


def _principal_parts(arn: str) -> tuple[str, str, str, str]:
    """(partition, account, kind, name) of a role, user or role session ARN; ActionError otherwise."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise ActionError(f"refused: {arn!r} is not an ARN; nothing was changed")
    partition, service, account, resource = parts[1], parts[2], parts[4], parts[5]
    if service == "iam" and resource.startswith(("role/", "user/")):
        return partition, account, resource.split("/", 1)[0], resource.rsplit("/", 1)[-1]
    if service == "sts" and resource.startswith("assumed-role/") and resource.count("/") >= 2:
        return partition, account, "role", resource.split("/")[1]
    raise ActionError(
        f"refused: {arn} is not an IAM role, a role's session or an IAM user (the root user, a federated "
        "user or a service cannot be contained this way); nothing was changed"
    )


class _PrincipalDenial(Action):
    """What the bucket and key denials share: who the principal is, the statement, undo."""

    resource_param: str
    limit: int
    resource_kind: str

    # -- per service ----------------------------------------------------------------------

    def _get(self) -> str | None:
        raise NotImplementedError

    def _put(self, policy: str) -> None:
        raise NotImplementedError

    def _delete(self) -> None:
        raise NotImplementedError

    def _statement(self, sid: str, condition: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _refuse_for_resource(self, principal: Principal, policy: Any) -> None:
        """A refusal that depends on the resource (a key's administrator); none by default."""

    # -- shared ---------------------------------------------------------------------------

    def _principal(self) -> Principal:
        given = str(self.params["principal"])
        partition, account, kind, name = _principal_parts(given)
        iam = self.context.clients("iam") if self.context.clients is not None else None
        if iam is not None and (self.context.account is None or account == self.context.account):
            try:
                if kind == "role":
                    role = iam.get_role(RoleName=name)["Role"]
                    found = {"RoleName": name, "Arn": str(role["Arn"]), "Path": str(role.get("Path") or "/")}
                    return Principal(kind, name, (found["Arn"],), found)
                user = iam.get_user(UserName=name)["User"]
                return Principal(kind, name, (str(user["Arn"]),))
            except iam.exceptions.NoSuchEntityException:
                raise ActionError(f"no {kind} {name} in account {account}: there is nobody to deny") from None
        if kind == "user":
            return Principal(kind, name, (f"arn:{partition}:iam::{account}:user/{name}",))
        if ":iam::" in given:  # a role ARN as written carries its path
            path = "/" + given.split(":role/", 1)[1][: -len(name)]
            return Principal(kind, name, (given,), {"RoleName": name, "Arn": given, "Path": path})
        plain = f"arn:{partition}:iam::{account}:role/{name}"
        role = {"RoleName": name, "Arn": plain, "Path": "/"}
        return Principal(kind, name, (plain, f"arn:{partition}:iam::{account}:role/*/{name}"), role)

    def _partition(self) -> str:
        return partition_of(self.context.region or "")

    def denial(self, principal: Principal) -> dict[str, Any]:
        """trailguard's statement denying `principal`, named by a hash of who it denies."""
        digest = hashlib.sha256("\n".join(principal.arns).encode()).hexdigest()[:16]
        values: str | list[str] = principal.arns[0] if len(principal.arns) == 1 else list(principal.arns)
        return self._statement(f"{SID_PREFIX}{digest}", {"ArnLike": {"aws:PrincipalArn": values}})

    def snapshot(self) -> dict[str, Any]:
        principal = self._principal()
        policy = self._get()
        sid = self.denial(principal)["Sid"]
        found = next((s for s in _statements(policy) if s.get("Sid") == sid), None)
        return {
            self.resource_kind: self.params[self.resource_param],
            "Principal": list(principal.arns),
            "Kind": principal.kind,
            "Name": principal.name,
            "Role": principal.role,
            "Sid": sid,
            "Statement": found,
            "Policy": policy,
        }

    def check(self, state: Mapping[str, Any]) -> bool:
        expected = self.denial(_principal_of(state))
        return state["Statement"] is not None and _same(state["Statement"], expected)

    def apply(self, state: Mapping[str, Any]) -> None:
        principal = _principal_of(state)
        if principal.role is not None:
            refusal = role_refusal(principal.role, self.context.protected)
            if refusal is not None:
                raise ActionError(f"refused: {refusal}; nothing was changed")
        statement = self.denial(principal)
        if state["Statement"] is not None:
            raise ActionError(
                f"the policy of {state[self.resource_kind]} already has a statement {statement['Sid']} that is not "
                "trailguard's denial as written (someone changed it): fix it by hand"
            )
        document = json.loads(state["Policy"]) if state["Policy"] else {"Version": "2012-10-17", "Statement": []}
        self._refuse_for_resource(principal, document)
        policy = json.dumps({**document, "Statement": [*_statements(document), statement]})
        size = len(policy.encode())
        if size > self.limit:
            raise ActionError(
                f"refused: with the denial of {principal.name} the policy of {state[self.resource_kind]} would be "
                f"{size:,} bytes, over the {self.limit:,} AWS accepts; nothing was changed (contain the principal "
                "with IAM instead)"
            )
        self._put(policy)
        self.note = f"{principal.kind} {principal.name} is denied every action on it ({statement['Sid']})"

    def undo(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """Take out trailguard's statement only: whatever else changed in the policy since
        stays; refused if the statement itself was changed or removed."""
        now = self.snapshot()
        if now["Statement"] != after["Statement"]:
            raise UndoRefused(
                f"{self.name}: the resource changed since trailguard acted (its statement {after['Sid']} was "
                f"{'removed' if now['Statement'] is None else 'changed'})"
            )
        self.restore(before, now)

    def restore(self, state: Mapping[str, Any], now: Mapping[str, Any] | None = None) -> None:
        if state["Statement"] is not None:  # the statement was there before trailguard: it stays
            return
        current = now if now is not None else self.snapshot()
        if not current["Policy"]:
            return
        document = json.loads(current["Policy"])
        kept = [s for s in _statements(document) if s.get("Sid") != state["Sid"]]
        if kept:
            self._put(json.dumps({**document, "Statement": kept}))
        else:
            self._delete()


def _principal_of(state: Mapping[str, Any]) -> Principal:
    return Principal(str(state["Kind"]), str(state["Name"]), tuple(state["Principal"]), state["Role"])


def _statements(policy: Any) -> list[dict[str, Any]]:
    document = json.loads(policy) if isinstance(policy, str) else policy
    if not isinstance(document, Mapping):
        return []
    given = document.get("Statement")
    return [dict(s) for s in (given if isinstance(given, list) else [given]) if isinstance(s, Mapping)]


def _normal(value: Any) -> Any:
    """A policy value as AWS may hand it back: a list of one is its element."""
    if isinstance(value, list):
        items = [_normal(v) for v in value]
        return items[0] if len(items) == 1 else sorted(items, key=json.dumps)
    if isinstance(value, Mapping):
        return {key: _normal(v) for key, v in value.items()}
    return value


def _same(found: Any, expected: Any) -> bool:
    return bool(_normal(found) == _normal(expected))


_PRINCIPAL = Parameter(
    "principal",
    "string",
    "The ARN of the IAM role, role session or IAM user to deny: actor_arn(userIdentity) for the caller of a "
    "call, finding_principal(@) for a finding's. A role session is denied as its role.",
)


@register
class DenyPrincipalOnBucket(_PrincipalDenial):
    """Deny one principal every action on a bucket and its objects: a statement trailguard
    owns (`TrailguardContain<hash>`, Effect Deny, `s3:*`, `aws:PrincipalArn` of the role or
    user) is added to the bucket policy, and a bucket without a policy gets one. The
    principal's reads, writes and deletes in the bucket are refused at once (S3 applies a
    new policy within seconds); everyone else's access, the principal's access elsewhere,
    and uploads already complete are untouched. A workload that runs as that role loses the
    bucket too: contain a shared role only when what it does there can stop.

    Refused for the root user, federated users and services, service-linked roles, Identity
    Center permission-set roles, trailguard's own and break-glass roles, and when the policy
    would exceed S3's 20 KB. Undo takes out exactly that statement (and deletes the policy
    if it held nothing else), and refuses if the statement was changed since. From a
    GuardDuty S3 finding, give it `resource.s3BucketDetails[0].name` and
    `finding_principal(@)` (`guardduty-s3-anomalous-access`).

    Example:

        steps:
          - action: s3.deny_principal
            with: {bucket: requestParameters.bucketName, principal: actor_arn(userIdentity)}
    """

    name = "s3.deny_principal"
    service = "s3"
    eventually_consistent = True  # S3 documents bucket configurations as eventually consistent
    permissions = {
        "s3:GetBucketTagging": BUCKET,
        "s3:GetBucketPolicy": BUCKET,
        "s3:PutBucketPolicy": BUCKET,
        "s3:DeleteBucketPolicy": BUCKET,
        "iam:GetRole": ROLE,
        "iam:GetUser": USER,
    }
    parameters = (Parameter("bucket", "string", "Name of the bucket."), _PRINCIPAL)
    resource_param = "bucket"
    resource_kind = "Bucket"
    limit = BUCKET_POLICY_LIMIT

    def resource_tags(self) -> dict[str, str] | None:
        return tags.bucket_tags(self.client, self.params["bucket"])

    def _get(self) -> str | None:
        return _bucket_policy(self.client, self.params["bucket"])

    def _put(self, policy: str) -> None:
        self.client.put_bucket_policy(Bucket=self.params["bucket"], Policy=policy)

    def _delete(self) -> None:
        self.client.delete_bucket_policy(Bucket=self.params["bucket"])

    def _statement(self, sid: str, condition: Mapping[str, Any]) -> dict[str, Any]:
        bucket = f"arn:{self._partition()}:s3:::{self.params['bucket']}"
        return {
            "Sid": sid,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket, f"{bucket}/*"],
            "Condition": dict(condition),
        }


@register
class DenyPrincipalOnKey(_PrincipalDenial):
    """Deny one principal every action on a KMS key: a statement trailguard owns
    (`TrailguardContain<hash>`, Effect Deny, `kms:*`, `aws:PrincipalArn` of the role or
    user) is added to the key policy. The principal can no longer decrypt, encrypt, disable
    or schedule the deletion of the key; data keys it already holds in memory stay usable
    (KMS never sees them again), and every other principal, and AWS services using the key
    on their own behalf, are untouched. A workload that runs as that role can no longer
    read what the key protects.

    Refused for the root user, federated users and services, the roles IAM containment
    refuses, an AWS managed key, a principal the key policy names as an administrator of the
    key (it could be locked out of its administration), and when the policy would exceed
    KMS's 32 KB. PutKeyPolicy keeps KMS's lockout safety check on. Undo takes out exactly
    that statement, and refuses if it was changed since.

    Example:

        steps:
          - action: kms.deny_principal
            with: {key: requestParameters.keyId, principal: actor_arn(userIdentity)}
    """

    name = "kms.deny_principal"
    service = "kms"
    eventually_consistent = True  # KMS documents its API as eventually consistent
    permissions = {
        "kms:ListResourceTags": KEY,
        "kms:DescribeKey": KEY,
        "kms:GetKeyPolicy": KEY,
        "kms:PutKeyPolicy": KEY,
        "iam:GetRole": ROLE,
        "iam:GetUser": USER,
    }
    parameters = (
        Parameter("key", "string", "Key id or key ARN (as in the event's requestParameters.keyId)."),
        _PRINCIPAL,
    )
    resource_param = "key"
    resource_kind = "Key"
    limit = KEY_POLICY_LIMIT

    def resource_tags(self) -> dict[str, str] | None:
        return tags.key_tags(self.client, self.params["key"])

    def _get(self) -> str | None:
        return str(self.client.get_key_policy(KeyId=self.params["key"], PolicyName="default")["Policy"])

    def _put(self, policy: str) -> None:
        self.client.put_key_policy(
            KeyId=self.params["key"], PolicyName="default", Policy=policy, BypassPolicyLockoutSafetyCheck=False
        )

    def _delete(self) -> None:  # a key always has a policy, and the denial is never its only statement
        raise ActionError(f"the policy of key {self.params['key']} would be empty: fix it by hand")

    def _statement(self, sid: str, condition: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "Sid": sid,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": dict(condition),
        }

    def _refuse_for_resource(self, principal: Principal, policy: Any) -> None:
        metadata = self.client.describe_key(KeyId=self.params["key"])["KeyMetadata"]
        if metadata.get("KeyManager") == "AWS":
            raise ActionError(
                f"refused: key {metadata['Arn']} is an AWS managed key: AWS owns its policy; nothing was changed"
            )
        for statement in _statements(policy):
            if statement.get("Effect") != "Allow" or not _names(statement, principal.arns):
                continue
            actions = statement.get("Action")
            granted = [str(a).lower() for a in (actions if isinstance(actions, list) else [actions])]
            if any(fnmatch.fnmatchcase(admin.lower(), pattern) for admin in _KEY_ADMINISTRATION for pattern in granted):
                raise ActionError(
                    f"refused: {principal.kind} {principal.name} administers key {metadata['Arn']} (statement "
                    f"{statement.get('Sid') or 'without Sid'}): denying it could lock the key's administration out; "
                    "contain it with IAM instead (revoke its sessions, quarantine it); nothing was changed"
                )


def _names(statement: Mapping[str, Any], arns: tuple[str, ...]) -> bool:
    """Whether a statement's Principal names one of `arns` (the AWS principals, as written)."""
    principal = statement.get("Principal")
    given = principal.get("AWS") if isinstance(principal, Mapping) else None
    named = given if isinstance(given, list) else [given]
    return any(isinstance(p, str) and fnmatch.fnmatchcase(p, arn) for p in named for arn in arns)
