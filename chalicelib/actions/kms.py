"""KMS remediations: keep keys usable, so that the data under them stays readable.

AWS refuses to enable a key that is pending deletion (the deletion must be cancelled
first, which leaves the key disabled); these actions follow that documented order even
where a local emulator is more lenient.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

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
from chalicelib.aws.clients import partition_of
from chalicelib.aws.resource_policies import cloudtrail_can_encrypt, open_to_everyone
from chalicelib.memory import chain
from chalicelib.named_lists import TRAIL_KEYS

KEY = ResourceType("Key", ("arn:*:kms:*:*:key/*",))
"""A KMS key."""

_KEY = Parameter("key", "string", "Key id or key ARN (as in the event's requestParameters.keyId).")
_MIN_WINDOW_DAYS, _MAX_WINDOW_DAYS = 7, 30
_SCHEDULED = ("PendingDeletion", "PendingReplicaDeletion")
"""A key scheduled for deletion: PendingDeletion, or PendingReplicaDeletion for a
multi-Region primary key whose replicas are deleted first (KMS API reference,
ScheduleKeyDeletion; CancelKeyDeletion cancels either)."""


def _describe(client: Any, key: str) -> dict[str, Any]:
    metadata = client.describe_key(KeyId=key)["KeyMetadata"]
    deletion = metadata.get("DeletionDate")
    return {
        "KeyId": metadata["KeyId"],
        "KeyArn": metadata["Arn"],
        "KeyState": metadata["KeyState"],
        "DeletionDate": deletion.isoformat() if isinstance(deletion, dt.datetime) else deletion,
    }


def _remaining_window(deletion_date: str | None) -> int:
    """Days left before a scheduled deletion, within the 7-30 days KMS accepts."""
    if not deletion_date:
        return _MAX_WINDOW_DAYS
    left = dt.datetime.fromisoformat(deletion_date) - dt.datetime.now(dt.UTC)
    days = math.ceil(left.total_seconds() / 86400)
    return min(max(days, _MIN_WINDOW_DAYS), _MAX_WINDOW_DAYS)


@register
class EnableKey(Action):
    """Enable a KMS key that was disabled.

    While a key is disabled nothing encrypted under it can be decrypted. A key pending
    deletion is left alone with an error that says so: cancel the deletion first
    (`kms.cancel_key_deletion`). Undo disables the key again.

    Example:

        steps:
          - action: kms.enable_key
            with: {key: requestParameters.keyId}
    """

    name = "kms.enable_key"
    service = "kms"
    eventually_consistent = True  # KMS documents its API as eventually consistent
    permissions = {
        "kms:ListResourceTags": KEY,
        "kms:DescribeKey": KEY,
        "kms:EnableKey": KEY,
        "kms:DisableKey": KEY,
    }
    parameters = (_KEY,)

    def resource_tags(self) -> dict[str, str] | None:
        return tags.key_tags(self.client, self.params["key"])

    def snapshot(self) -> dict[str, Any]:
        return _describe(self.client, self.params["key"])

    def check(self, state: Mapping[str, Any]) -> bool:
        return state["KeyState"] == "Enabled"

    def apply(self, state: Mapping[str, Any]) -> None:
        if state["KeyState"] in _SCHEDULED:
            raise ActionError(
                f"key {state['KeyArn']} is pending deletion: AWS will not enable it until the "
                "deletion is cancelled (kms.cancel_key_deletion)"
            )
        if state["KeyState"] != "Disabled":
            raise ActionError(f"key {state['KeyArn']} is {state['KeyState']}; only a Disabled key can be enabled")
        self.client.enable_key(KeyId=state["KeyId"])

    def restore(self, state: Mapping[str, Any]) -> None:
        if state["KeyState"] == "Disabled":
            self.client.disable_key(KeyId=state["KeyId"])


@register
class CancelKeyDeletion(Action):
    """Cancel the scheduled deletion of a KMS key, and leave it enabled.

    A key is scheduled for deletion in PendingDeletion, or, for a multi-Region primary
    key with replicas, in PendingReplicaDeletion (its replicas go first, then the key):
    CancelKeyDeletion cancels both. Cancelling leaves the key Disabled; it is then enabled
    again, as it was when the deletion was scheduled (set `enable` to `false` where keys
    are disabled before they are scheduled for deletion by routine). Undo schedules the
    deletion again, with the days that were left (7 at least, as KMS requires).

    Example:

        steps:
          - action: kms.cancel_key_deletion
            with: {key: requestParameters.keyId}
    """

    name = "kms.cancel_key_deletion"
    service = "kms"
    eventually_consistent = True  # KMS documents its API as eventually consistent
    permissions = {
        "kms:ListResourceTags": KEY,
        "kms:DescribeKey": KEY,
        "kms:CancelKeyDeletion": KEY,
        "kms:EnableKey": KEY,
        "kms:DisableKey": KEY,
        "kms:ScheduleKeyDeletion": KEY,
    }
    parameters = (
        _KEY,
        Parameter("enable", "boolean", "Enable the key once the deletion is cancelled.", False, True),
    )

    def resource_tags(self) -> dict[str, str] | None:
        return tags.key_tags(self.client, self.params["key"])

    def snapshot(self) -> dict[str, Any]:
        return _describe(self.client, self.params["key"])

    def check(self, state: Mapping[str, Any]) -> bool:
        if state["KeyState"] in _SCHEDULED:
            return False
        return not self.params["enable"] or state["KeyState"] == "Enabled"

    def apply(self, state: Mapping[str, Any]) -> None:
        key_state = state["KeyState"]
        if key_state in _SCHEDULED:
            self.client.cancel_key_deletion(KeyId=state["KeyId"])
            key_state = "Disabled"
        if self.params["enable"] and key_state == "Disabled":
            self.client.enable_key(KeyId=state["KeyId"])

    def restore(self, state: Mapping[str, Any]) -> None:
        if state["KeyState"] in _SCHEDULED:
            self.client.schedule_key_deletion(
                KeyId=state["KeyId"], PendingWindowInDays=_remaining_window(state["DeletionDate"])
            )
        elif state["KeyState"] == "Disabled":
            self.client.disable_key(KeyId=state["KeyId"])


@register
class RestoreKeyPolicy(Action):
    """Take out of a key policy the statements that let any principal use the key (Principal
    `*` without a condition that pins the caller to the organization, as
    `public_statements()` judges with the same trusted accounts and organizations as the
    playbook's condition), and keep every other statement.

    The event says what the policy became, not what it was, so "restore" means: what the
    policy was before the public statements were added, as far as the policy itself shows.
    If nothing would be left, the step fails (KMS refuses an empty policy, and a key nobody
    can administer is worse). Undo puts the previous policy back exactly.

    Example:

        steps:
          - action: kms.restore_key_policy
            with:
              key: requestParameters.keyId
              trusted_accounts: named_list('trusted_accounts')
              trusted_organizations: named_list('trusted_organizations')
    """

    name = "kms.restore_key_policy"
    service = "kms"
    eventually_consistent = True  # KMS documents its API as eventually consistent
    permissions = {
        "kms:ListResourceTags": KEY,
        "kms:GetKeyPolicy": KEY,
        "kms:PutKeyPolicy": KEY,
    }
    parameters = (_KEY, TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS)

    def resource_tags(self) -> dict[str, str] | None:
        return tags.key_tags(self.client, self.params["key"])

    def _public(self, policy: Any) -> list[Any]:
        return open_to_everyone(policy, trusted_by(self))

    def snapshot(self) -> dict[str, Any]:
        policy = self.client.get_key_policy(KeyId=self.params["key"], PolicyName="default")["Policy"]
        return {"Key": self.params["key"], "Policy": policy}

    def check(self, state: Mapping[str, Any]) -> bool:
        return not self._public(state["Policy"])

    def apply(self, state: Mapping[str, Any]) -> None:
        document = json.loads(state["Policy"])
        public = self._public(document)
        statements = document.get("Statement")
        kept = [s for s in (statements if isinstance(statements, list) else [statements]) if s not in public]
        if not kept:
            raise ActionError(f"every statement of the policy of key {state['Key']} is public: fix it by hand")
        self.client.put_key_policy(
            KeyId=state["Key"], PolicyName="default", Policy=json.dumps({**document, "Statement": kept})
        )

    def restore(self, state: Mapping[str, Any]) -> None:
        self.client.put_key_policy(KeyId=state["Key"], PolicyName="default", Policy=state["Policy"])


_GRANT_FIELDS = ("GranteePrincipal", "RetiringPrincipal", "Operations", "Constraints", "Name")


@register
class RevokeGrant(Action):
    """Revoke a grant on a KMS key. A grant lets its grantee use the key whatever the key
    policy says, so a grant to a principal of another account is a way in that key-policy
    reviews miss. Grants are also how AWS services and partners are given a key on
    purpose, so playbooks propose this. Undo creates the same grant again (KMS gives it a
    new id).

    Example:

        steps:
          - action: kms.revoke_grant
            with: {key: requestParameters.keyId, grant: responseElements.grantId}
    """

    name = "kms.revoke_grant"
    service = "kms"
    eventually_consistent = True  # KMS documents grants as eventually consistent
    permissions = {
        "kms:ListResourceTags": KEY,
        "kms:ListGrants": KEY,
        "kms:RevokeGrant": KEY,
        "kms:CreateGrant": KEY,
    }
    parameters = (_KEY, Parameter("grant", "string", "The grant's id (the event's responseElements.grantId)."))

    def resource_tags(self) -> dict[str, str] | None:
        return tags.key_tags(self.client, self.params["key"])

    def snapshot(self) -> dict[str, Any]:
        grants = []
        for page in self.client.get_paginator("list_grants").paginate(KeyId=self.params["key"]):
            grants += page["Grants"]
        grant = next((g for g in grants if g["GrantId"] == self.params["grant"]), None)
        kept = {field: grant[field] for field in _GRANT_FIELDS if grant.get(field)} if grant else None
        others = sorted(g["GrantId"] for g in grants if g["GrantId"] != self.params["grant"])
        return {"Key": self.params["key"], "GrantId": self.params["grant"], "Grant": kept, "OtherGrants": others}

    def check(self, state: Mapping[str, Any]) -> bool:
        return state["Grant"] is None

    def apply(self, state: Mapping[str, Any]) -> None:
        self.client.revoke_grant(KeyId=state["Key"], GrantId=state["GrantId"])

    def restore(self, state: Mapping[str, Any]) -> None:
        if state["Grant"] is not None:
            self.client.create_grant(KeyId=state["Key"], **state["Grant"])


def cloudtrail_key_statement(account: str, partition: str, trails: list[str]) -> dict[str, Any]:
    """The key-policy statement CloudTrail's user guide gives ("Configure AWS KMS key policies
    for CloudTrail"): CloudTrail may generate data keys for trails of this account (the
    encryption context names the trail), narrowed by `aws:SourceArn` to the trails known to
    use the key (an organization trail's is in the management account)."""
    condition: dict[str, Any] = {
        "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": [f"arn:{partition}:cloudtrail:*:{account}:trail/*"]}
    }
    if trails:
        condition["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"] = [
            f"arn:{partition}:cloudtrail:*:{arn.split(':')[4]}:trail/*" for arn in trails
        ]
        condition["StringEquals"] = {"aws:SourceArn": trails}
    return {
        "Sid": "AllowCloudTrailToEncryptLogs",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "kms:GenerateDataKey*",
        "Resource": "*",
        "Condition": condition,
    }


@register
class RestoreCloudTrailEncrypt(Action):
    """Let CloudTrail encrypt log files with a trail's key again: add CloudTrail's documented
    statement (GenerateDataKey*, for the trails trailguard saw using the key) to the key
    policy, take out Deny statements that name CloudTrail, and keep every other statement.

    A key policy that no longer lets `cloudtrail.amazonaws.com` generate data keys stops
    every delivery of the trails encrypted with it, as surely as disabling the key, and
    neither the key nor the trail shows it. The key is a trail's when the audit chain says so
    (`trail_link(@)`). Undo puts the previous policy back exactly.

    Example:

        steps:
          - action: kms.restore_cloudtrail_encrypt
            with: {key: requestParameters.keyId}
    """

    name = "kms.restore_cloudtrail_encrypt"
    service = "kms"
    eventually_consistent = True
    permissions = {"kms:DescribeKey": KEY, "kms:GetKeyPolicy": KEY, "kms:PutKeyPolicy": KEY}
    parameters = (_KEY,)

    def snapshot(self) -> dict[str, Any]:
        policy = self.client.get_key_policy(KeyId=self.params["key"], PolicyName="default")["Policy"]
        return {"Key": self.params["key"], "Policy": policy}

    def check(self, state: Mapping[str, Any]) -> bool:
        return cloudtrail_can_encrypt(state["Policy"])

    def apply(self, state: Mapping[str, Any]) -> None:
        metadata = self.client.describe_key(KeyId=state["Key"])["KeyMetadata"]
        document = json.loads(state["Policy"])
        given = document.get("Statement")
        statements = [s for s in (given if isinstance(given, list) else [given]) if isinstance(s, Mapping)]
        kept = [
            s
            for s in statements
            if s.get("Sid") != "AllowCloudTrailToEncryptLogs"
            and not (s.get("Effect") == "Deny" and _names_cloudtrail(s))
        ]
        trails = chain.trails_using(self.context.memory, TRAIL_KEYS, metadata["Arn"])
        region = metadata["Arn"].split(":")[3]
        added = cloudtrail_key_statement(metadata["AWSAccountId"], partition_of(region), trails)
        self.client.put_key_policy(
            KeyId=state["Key"], PolicyName="default", Policy=json.dumps({**document, "Statement": [*kept, added]})
        )
        self.note = f"CloudTrail's statement added for {', '.join(trails) if trails else 'the trails of the account'}"

    def restore(self, state: Mapping[str, Any]) -> None:
        self.client.put_key_policy(KeyId=state["Key"], PolicyName="default", Policy=state["Policy"])


def _names_cloudtrail(statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal")
    services = principal.get("Service") if isinstance(principal, Mapping) else None
    return "cloudtrail.amazonaws.com" in (services if isinstance(services, list) else [services])
