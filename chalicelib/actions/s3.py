"""S3 remediations: take away what a bucket or an object gives to the whole internet."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalicelib.actions import tags
from chalicelib.actions.base import (
    ANY_RESOURCE,
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
from chalicelib.aws.quirks import PUBLIC_GROUPS
from chalicelib.aws.resource_policies import allow_statements, cloudtrail_can_write, open_to_everyone
from chalicelib.aws.retrying import error_code
from chalicelib.memory import chain
from chalicelib.named_lists import TRAIL_BUCKETS

BUCKET = ResourceType("Bucket", ("arn:*:s3:::*",))
"""A bucket."""
OBJECT = ResourceType("Object", ("arn:*:s3:::*/*",))
"""An object."""

_GRANTEE_KEYS = ("Type", "ID", "URI", "EmailAddress")


def _website(client: Any, bucket: str) -> bool:
    """Whether the bucket serves a static website (it has a website configuration)."""
    try:
        client.get_bucket_website(Bucket=bucket)
    except Exception as error:
        if error_code(error) in ("NoSuchWebsiteConfiguration", "NoSuchBucket"):
            return False
        raise
    return True


def _website_workload(client: Any, bucket: str, what: str) -> str | None:
    if not _website(client, bucket):
        return None
    return f"bucket {bucket} serves a static website (GetBucketWebsite): {what} could take it offline"


def _grant(grant: Mapping[str, Any]) -> dict[str, Any]:
    """A grant as S3 accepts it back; DisplayName is informational and left out."""
    grantee = grant.get("Grantee", {})
    return {
        "Grantee": {key: grantee[key] for key in _GRANTEE_KEYS if grantee.get(key)},
        "Permission": grant["Permission"],
    }


def _is_public(grant: Mapping[str, Any]) -> bool:
    return grant["Grantee"].get("URI") in PUBLIC_GROUPS


_HEADER_OF_PERMISSION = {
    "FULL_CONTROL": "GrantFullControl",
    "READ": "GrantRead",
    "READ_ACP": "GrantReadACP",
    "WRITE": "GrantWrite",
    "WRITE_ACP": "GrantWriteACP",
}
_HEADER_KEY_OF_GRANTEE = {"ID": "id", "URI": "uri", "EmailAddress": "emailAddress"}


def _grant_headers(grants: list[dict[str, Any]]) -> dict[str, str]:
    """Grants as put_*_acl's Grant* arguments: `id="..."`, `uri="..."`, comma-separated."""
    headers: dict[str, list[str]] = {}
    for grant in grants:
        grantee = grant["Grantee"]
        key = next(key for key in ("ID", "URI", "EmailAddress") if grantee.get(key))
        headers.setdefault(_HEADER_OF_PERMISSION[grant["Permission"]], []).append(
            f'{_HEADER_KEY_OF_GRANTEE[key]}="{grantee[key]}"'
        )
    return {header: ", ".join(values) for header, values in headers.items()}


def _sort_key(grant: Mapping[str, Any]) -> tuple[str, ...]:
    grantee = grant["Grantee"]
    return (*tuple(str(grantee.get(key, "")) for key in _GRANTEE_KEYS), grant["Permission"])


@register
class RemovePublicAcl(Action):
    """Remove the grants a bucket ACL gives to everyone (AllUsers) or to any AWS account
    (AuthenticatedUsers).

    Every other grant stays as it was: the owner's, other accounts', the log delivery
    group's. Undo puts the previous ACL back, public grants included. On a bucket that
    serves a static website (it has a website configuration), an automatic step is
    proposed instead: the site may rely on being public.

    Example:

        steps:
          - action: s3.remove_public_acl
            with: {bucket: requestParameters.bucketName}
    """

    name = "s3.remove_public_acl"
    service = "s3"
    eventually_consistent = True  # S3 documents bucket configurations as eventually consistent
    permissions = {
        "s3:GetBucketTagging": BUCKET,
        "s3:GetBucketAcl": BUCKET,
        "s3:PutBucketAcl": BUCKET,
        "s3:GetBucketWebsite": BUCKET,
    }
    parameters = (Parameter("bucket", "string", "Name of the bucket."),)

    def workload(self) -> str | None:
        return _website_workload(self.client, self.params["bucket"], "removing its public grants")

    def resource_tags(self) -> dict[str, str] | None:
        return tags.bucket_tags(self.client, self.params["bucket"])

    def snapshot(self) -> dict[str, Any]:
        acl = self.client.get_bucket_acl(Bucket=self.params["bucket"])
        grants = sorted((_grant(grant) for grant in acl.get("Grants", [])), key=_sort_key)
        return {"Bucket": self.params["bucket"], "Owner": {"ID": acl["Owner"]["ID"]}, "Grants": grants}

    def check(self, state: Mapping[str, Any]) -> bool:
        return not any(_is_public(grant) for grant in state["Grants"])

    def apply(self, state: Mapping[str, Any]) -> None:
        kept = [grant for grant in state["Grants"] if not _is_public(grant)]
        self._put(state, kept)

    def restore(self, state: Mapping[str, Any]) -> None:
        self._put(state, state["Grants"])

    def _put(self, state: Mapping[str, Any], grants: list[dict[str, Any]]) -> None:
        self.client.put_bucket_acl(
            Bucket=state["Bucket"],
            AccessControlPolicy={"Owner": dict(state["Owner"]), "Grants": list(grants)},
        )


@register
class RemovePublicObjectAcl(Action):
    """Remove the grants an object ACL gives to everyone (AllUsers) or to any AWS account.

    PutObjectAcl is a data event: the trail must record S3 data events for the bucket for
    this to be seen. Every other grant stays. Undo puts the previous ACL back. An object of
    a bucket that serves a static website may be a public page: an automatic step is then
    proposed instead.

    Example:

        steps:
          - action: s3.remove_public_object_acl
            with: {bucket: requestParameters.bucketName, key: requestParameters.key}
    """

    name = "s3.remove_public_object_acl"
    service = "s3"
    permissions = {
        "s3:GetBucketTagging": BUCKET,
        "s3:GetObjectAcl": OBJECT,
        "s3:PutObjectAcl": OBJECT,
        "s3:GetBucketWebsite": BUCKET,
    }
    parameters = (
        Parameter("bucket", "string", "Name of the bucket."),
        Parameter("key", "string", "Key of the object."),
    )

    def workload(self) -> str | None:
        return _website_workload(self.client, self.params["bucket"], f"making {self.params['key']} private")

    def resource_tags(self) -> dict[str, str] | None:
        return tags.bucket_tags(self.client, self.params["bucket"])

    def snapshot(self) -> dict[str, Any]:
        acl = self.client.get_object_acl(Bucket=self.params["bucket"], Key=self.params["key"])
        grants = sorted((_grant(grant) for grant in acl.get("Grants", [])), key=_sort_key)
        return {
            "Bucket": self.params["bucket"],
            "Key": self.params["key"],
            "Owner": {"ID": acl["Owner"]["ID"]},
            "Grants": grants,
        }

    def check(self, state: Mapping[str, Any]) -> bool:
        return not any(_is_public(grant) for grant in state["Grants"])

    def apply(self, state: Mapping[str, Any]) -> None:
        self._put(state, [grant for grant in state["Grants"] if not _is_public(grant)])

    def restore(self, state: Mapping[str, Any]) -> None:
        self._put(state, state["Grants"])

    def _put(self, state: Mapping[str, Any], grants: list[dict[str, Any]]) -> None:
        # The grant headers (x-amz-grant-*), which S3 documents as equivalent to an
        # AccessControlPolicy body and which every S3 implementation we test with honours.
        self.client.put_object_acl(Bucket=state["Bucket"], Key=state["Key"], **_grant_headers(grants))


@register
class RemovePublicPolicyStatements(Action):
    """Remove the statements of a bucket policy that any principal may use, and keep every
    other statement exactly as written.

    "Public" is `public_statements()` with the same trusted accounts and organizations as
    the playbook's condition: Principal `*` (or `{"AWS": "*"}`) without a condition that
    pins the caller to the organization (its accounts or organizations, a VPC or endpoint,
    narrow IP ranges). When no statement is left, the policy is deleted. Undo puts the
    previous policy back, byte for byte.

    Example:

        steps:
          - action: s3.remove_public_policy_statements
            with:
              bucket: requestParameters.bucketName
              trusted_accounts: named_list('trusted_accounts')
              trusted_organizations: named_list('trusted_organizations')
    """

    name = "s3.remove_public_policy_statements"
    service = "s3"
    eventually_consistent = True  # S3 documents bucket configurations as eventually consistent
    permissions = {
        "s3:GetBucketTagging": BUCKET,
        "s3:GetBucketPolicy": BUCKET,
        "s3:PutBucketPolicy": BUCKET,
        "s3:DeleteBucketPolicy": BUCKET,
    }
    parameters = (Parameter("bucket", "string", "Name of the bucket."), TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS)

    def resource_tags(self) -> dict[str, str] | None:
        return tags.bucket_tags(self.client, self.params["bucket"])

    def _public(self, policy: Any) -> list[Any]:
        return open_to_everyone(policy, trusted_by(self))

    def snapshot(self) -> dict[str, Any]:
        return {"Bucket": self.params["bucket"], "Policy": _bucket_policy(self.client, self.params["bucket"])}

    def check(self, state: Mapping[str, Any]) -> bool:
        return state["Policy"] is None or not self._public(state["Policy"])

    def apply(self, state: Mapping[str, Any]) -> None:
        document = json.loads(state["Policy"])
        public = self._public(document)
        statements = document.get("Statement")
        kept = [s for s in (statements if isinstance(statements, list) else [statements]) if s not in public]
        if kept:
            self.client.put_bucket_policy(Bucket=state["Bucket"], Policy=json.dumps({**document, "Statement": kept}))
        else:
            self.client.delete_bucket_policy(Bucket=state["Bucket"])

    def restore(self, state: Mapping[str, Any]) -> None:
        if state["Policy"] is None:
            self.client.delete_bucket_policy(Bucket=state["Bucket"])
        else:
            self.client.put_bucket_policy(Bucket=state["Bucket"], Policy=state["Policy"])


ACCOUNT_BUCKETS_READ = 200
"""The most buckets whose website configuration is read before the account's block is
put back by itself (one call each, within the Lambda's time)."""

_BLOCK_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
_ALL_ON = {setting: True for setting in _BLOCK_SETTINGS}


def _settings(value: Any) -> dict[str, bool]:
    """Block Public Access settings from a playbook value, every missing one on."""
    if value is None:
        return dict(_ALL_ON)
    if not isinstance(value, Mapping) or set(value) - set(_BLOCK_SETTINGS):
        raise ActionError(f"settings must be an object of {', '.join(_BLOCK_SETTINGS)}, got {value!r}")
    return {setting: bool(value.get(setting, True)) for setting in _BLOCK_SETTINGS}


class _PublicAccessBlock(Action):
    """Shared by the bucket and account forms: same settings, different API."""

    def _get(self) -> dict[str, bool] | None:
        raise NotImplementedError

    def _put(self, settings: Mapping[str, bool]) -> None:
        raise NotImplementedError

    def _delete(self) -> None:
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        try:
            current = self._get()
        except Exception as error:
            if error_code(error) != "NoSuchPublicAccessBlockConfiguration":
                raise
            current = None
        return {"Settings": current}

    def check(self, state: Mapping[str, Any]) -> bool:
        wanted = _settings(self.params.get("settings"))
        current = state["Settings"] or {}
        return all(current.get(setting, False) or not on for setting, on in wanted.items())

    def apply(self, state: Mapping[str, Any]) -> None:
        wanted = _settings(self.params.get("settings"))
        current = state["Settings"] or {}
        # Never weaker than now: a setting already on stays on.
        self._put({setting: wanted[setting] or bool(current.get(setting)) for setting in _BLOCK_SETTINGS})

    def restore(self, state: Mapping[str, Any]) -> None:
        if state["Settings"] is None:
            self._delete()
        else:
            self._put(state["Settings"])


_SETTINGS_PARAMETER = Parameter(
    "settings",
    "object",
    "The settings to turn on, e.g. {BlockPublicPolicy: true, RestrictPublicBuckets: true}; "
    "default: all four. A setting already on is never turned off.",
    required=False,
)


@register
class BlockPublicAccess(_PublicAccessBlock):
    """Turn a bucket's Block Public Access settings back on after they were deleted or weakened.

    The event says what the settings became, not what they were, so the action turns on
    the settings the playbook names (all four by default) and leaves on whatever already
    is. Undo puts back the settings it found (or deletes the configuration if there was
    none). A bucket that serves a static website is public on purpose (the S3 user guide's
    website tutorial turns the block off): an automatic step is then proposed instead.

    Example:

        steps:
          - action: s3.block_public_access
            with: {bucket: requestParameters.bucketName}
    """

    name = "s3.block_public_access"
    service = "s3"
    eventually_consistent = True  # S3 documents bucket configurations as eventually consistent
    permissions = {
        "s3:GetBucketTagging": BUCKET,
        "s3:GetBucketPublicAccessBlock": BUCKET,
        "s3:PutBucketPublicAccessBlock": BUCKET,
        "s3:GetBucketWebsite": BUCKET,
    }
    parameters = (Parameter("bucket", "string", "Name of the bucket."), _SETTINGS_PARAMETER)

    def workload(self) -> str | None:
        return _website_workload(self.client, self.params["bucket"], "blocking public access")

    def resource_tags(self) -> dict[str, str] | None:
        return tags.bucket_tags(self.client, self.params["bucket"])

    def snapshot(self) -> dict[str, Any]:
        return {"Bucket": self.params["bucket"], **super().snapshot()}

    def _get(self) -> dict[str, bool] | None:
        response = self.client.get_public_access_block(Bucket=self.params["bucket"])
        return {key: bool(response["PublicAccessBlockConfiguration"].get(key)) for key in _BLOCK_SETTINGS}

    def _put(self, settings: Mapping[str, bool]) -> None:
        self.client.put_public_access_block(Bucket=self.params["bucket"], PublicAccessBlockConfiguration=dict(settings))

    def _delete(self) -> None:
        self.client.delete_public_access_block(Bucket=self.params["bucket"])


@register
class BlockAccountPublicAccess(_PublicAccessBlock):
    """Turn the account's S3 Block Public Access settings back on (they override every
    bucket's), after they were deleted or weakened.

    An account whose buckets serve static websites needs the block off for them: when
    one of its buckets has a website configuration (or it has more buckets than are read,
    `ACCOUNT_BUCKETS_READ`), an automatic step is proposed instead.

    Example:

        steps:
          - action: s3.block_account_public_access
            with: {account: recipientAccountId}
    """

    name = "s3.block_account_public_access"
    service = "s3control"
    eventually_consistent = True  # S3 documents bucket configurations as eventually consistent
    permissions = {
        "s3:GetAccountPublicAccessBlock": ANY_RESOURCE,
        "s3:PutAccountPublicAccessBlock": ANY_RESOURCE,
        "s3:ListAllMyBuckets": ANY_RESOURCE,
        "s3:GetBucketWebsite": BUCKET,
    }
    parameters = (Parameter("account", "string", "The AWS account id."), _SETTINGS_PARAMETER)

    def workload(self) -> str | None:
        if self.context.clients is None:
            return "the account's buckets could not be read: whether one serves a website is unknown"
        s3 = self.context.clients("s3")
        buckets = [bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])]
        if len(buckets) > ACCOUNT_BUCKETS_READ:
            return (
                f"the account has {len(buckets)} buckets, more than the {ACCOUNT_BUCKETS_READ} read for a website: "
                "blocking public access for all of them is left to a person"
            )
        websites = [bucket for bucket in buckets if _website(s3, bucket)]
        if not websites:
            return None
        return (
            f"{len(websites)} bucket(s) of the account serve a static website ({', '.join(sorted(websites)[:5])}): "
            "the account's block overrides theirs and could take them offline"
        )

    def snapshot(self) -> dict[str, Any]:
        return {"Account": self.params["account"], **super().snapshot()}

    def _get(self) -> dict[str, bool] | None:
        response = self.client.get_public_access_block(AccountId=self.params["account"])
        return {key: bool(response["PublicAccessBlockConfiguration"].get(key)) for key in _BLOCK_SETTINGS}

    def _put(self, settings: Mapping[str, bool]) -> None:
        self.client.put_public_access_block(
            AccountId=self.params["account"], PublicAccessBlockConfiguration=dict(settings)
        )

    def _delete(self) -> None:
        self.client.delete_public_access_block(AccountId=self.params["account"])


def _trail_writes_to(policy: str | None) -> bool:
    """Whether a bucket policy lets CloudTrail deliver logs (Service cloudtrail.amazonaws.com
    may s3:PutObject): every trail's bucket has such a statement, whichever account the
    trail is in (CloudTrail user guide, "Amazon S3 bucket policy for CloudTrail")."""
    for statement in allow_statements(policy):
        principal = statement.get("Principal")
        services = principal.get("Service") if isinstance(principal, Mapping) else None
        given = statement.get("Action")
        actions = {str(action).lower() for action in (given if isinstance(given, list) else [given])}
        listed = services if isinstance(services, list) else [services]
        if "cloudtrail.amazonaws.com" in listed and actions & {"s3:putobject", "s3:*", "*"}:
            return True
    return False


@register
class RemoveLogExpiration(Action):
    """Take out of a trail bucket's lifecycle configuration the rules that delete log files
    sooner than `days` after they are written, and keep every other rule.

    A one-day expiration on the bucket a trail writes to deletes each day's record of API
    calls the next day, while the trail looks healthy (Stratus Red Team's
    cloudtrail-lifecycle-rule). Whether the bucket is a trail's is read on the bucket: its
    policy lets CloudTrail write (every trail's bucket has that statement, even for a trail
    in another account). A bucket no trail writes to, or without such a rule, is safe, and
    no proposal is made for it. With no rule left, the lifecycle configuration is deleted.
    Undo puts the previous rules back.

    Example:

        steps:
          - action: s3.remove_log_expiration
            with: {bucket: requestParameters.bucketName, days: '`90`'}
    """

    name = "s3.remove_log_expiration"
    service = "s3"
    eventually_consistent = True  # S3 documents bucket configurations as eventually consistent
    propose_only_if_unsafe = True  # safe = not a trail's bucket, or no short expiration
    permissions = {
        "s3:GetBucketTagging": BUCKET,
        "s3:GetBucketPolicy": BUCKET,
        "s3:GetLifecycleConfiguration": BUCKET,
        "s3:PutLifecycleConfiguration": BUCKET,
    }
    parameters = (
        Parameter("bucket", "string", "Name of the bucket."),
        Parameter("days", "integer", "Rules that delete objects sooner than this many days are removed.", False, 90),
    )

    def resource_tags(self) -> dict[str, str] | None:
        return tags.bucket_tags(self.client, self.params["bucket"])

    def _short(self, rule: Mapping[str, Any]) -> bool:
        expiration = rule.get("Expiration") or {}
        if rule.get("Status") != "Enabled" or not expiration:
            return False
        return bool(expiration.get("Date")) or int(expiration.get("Days", self.params["days"])) < self.params["days"]

    def snapshot(self) -> dict[str, Any]:
        policy = _bucket_policy(self.client, self.params["bucket"])
        try:
            rules = self.client.get_bucket_lifecycle_configuration(Bucket=self.params["bucket"])["Rules"]
        except Exception as error:
            if error_code(error) != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        return {"Bucket": self.params["bucket"], "TrailBucket": _trail_writes_to(policy), "Rules": rules}

    def check(self, state: Mapping[str, Any]) -> bool:
        return not state["TrailBucket"] or not any(self._short(rule) for rule in state["Rules"])

    def apply(self, state: Mapping[str, Any]) -> None:
        self._put([rule for rule in state["Rules"] if not self._short(rule)])

    def restore(self, state: Mapping[str, Any]) -> None:
        self._put(state["Rules"])

    def _put(self, rules: list[Any]) -> None:
        if rules:
            self.client.put_bucket_lifecycle_configuration(
                Bucket=self.params["bucket"], LifecycleConfiguration={"Rules": list(rules)}
            )
        else:
            self.client.delete_bucket_lifecycle(Bucket=self.params["bucket"])


def _bucket_policy(client: Any, bucket: str) -> str | None:
    try:
        return str(client.get_bucket_policy(Bucket=bucket)["Policy"])
    except Exception as error:
        if error_code(error) != "NoSuchBucketPolicy":
            raise
        return None


def cloudtrail_bucket_statements(bucket: str, partition: str, trails: list[str]) -> list[dict[str, Any]]:
    """CloudTrail's two statements on its bucket, as its user guide writes them ("Amazon S3
    bucket policy for CloudTrail"): check the bucket's ACL, then write log files with the
    owner given full control; narrowed by `aws:SourceArn` to the trails known to write there
    (none known: the guide's older form, without the condition)."""
    condition: dict[str, Any] = {"StringEquals": {"aws:SourceArn": trails}} if trails else {}
    check = {
        "Sid": "AWSCloudTrailAclCheck",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:GetBucketAcl",
        "Resource": f"arn:{partition}:s3:::{bucket}",
    }
    write = {
        "Sid": "AWSCloudTrailWrite",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"arn:{partition}:s3:::{bucket}/*",
        "Condition": {
            "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", **condition.get("StringEquals", {})}
        },
    }
    return [{**check, **({"Condition": condition} if condition else {})}, write]


@register
class RestoreCloudTrailWrite(Action):
    """Give CloudTrail back its way into a trail's bucket: add CloudTrail's documented
    statements (check the bucket ACL, write log files; `aws:SourceArn` narrowed to the trails
    trailguard saw writing there) to the bucket's policy, keeping every other statement, and
    take out the Deny statements that name CloudTrail.

    A bucket policy deleted or replaced by one without them stops every log file of the
    trails that write there: the trails still look healthy (`IsLogging`), and deliveries
    fail silently. The bucket is a trail's when the audit chain says so (`trail_link(@)`: the
    settings file's `trail_buckets`, or a trail trailguard saw). A bucket CloudTrail can
    already write to is safe. Undo puts the previous policy back exactly (or deletes it, if
    there was none).

    Example:

        steps:
          - action: s3.restore_cloudtrail_write
            with: {bucket: requestParameters.bucketName}
    """

    name = "s3.restore_cloudtrail_write"
    service = "s3"
    eventually_consistent = True  # S3 documents bucket configurations as eventually consistent
    permissions = {
        "s3:GetBucketPolicy": BUCKET,
        "s3:PutBucketPolicy": BUCKET,
        "s3:DeleteBucketPolicy": BUCKET,
    }
    parameters = (Parameter("bucket", "string", "Name of the trail's bucket."),)

    def snapshot(self) -> dict[str, Any]:
        return {"Bucket": self.params["bucket"], "Policy": _bucket_policy(self.client, self.params["bucket"])}

    def check(self, state: Mapping[str, Any]) -> bool:
        return cloudtrail_can_write(state["Policy"])

    def apply(self, state: Mapping[str, Any]) -> None:
        bucket = state["Bucket"]
        document = json.loads(state["Policy"]) if state["Policy"] else {"Version": "2012-10-17", "Statement": []}
        given = document.get("Statement")
        statements = [s for s in (given if isinstance(given, list) else [given]) if isinstance(s, Mapping)]
        kept = [s for s in statements if not _names_cloudtrail(s) or s.get("Effect") == "Allow"]
        kept = [s for s in kept if s.get("Sid") not in ("AWSCloudTrailAclCheck", "AWSCloudTrailWrite")]
        trails = chain.trails_using(self.context.memory, TRAIL_BUCKETS, bucket)
        added = cloudtrail_bucket_statements(bucket, partition_of(self.context.region or ""), trails)
        self.client.put_bucket_policy(Bucket=bucket, Policy=json.dumps({**document, "Statement": [*kept, *added]}))
        self.note = f"CloudTrail's statements added for {', '.join(trails) if trails else 'any trail'}"

    def restore(self, state: Mapping[str, Any]) -> None:
        if state["Policy"]:
            self.client.put_bucket_policy(Bucket=state["Bucket"], Policy=state["Policy"])
        else:
            self.client.delete_bucket_policy(Bucket=state["Bucket"])


def _names_cloudtrail(statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal")
    services = principal.get("Service") if isinstance(principal, Mapping) else None
    return "cloudtrail.amazonaws.com" in (services if isinstance(services, list) else [services])


@register
class EnableVersioning(Action):
    """Turn a trail bucket's versioning back on (`Enabled`), so that a log file overwritten or
    deleted can still be read, and Object Lock (which needs versioning) keeps its meaning.

    Suspending versioning on the bucket a trail writes to is the step before deleting its log
    files for good. Turning it back on breaks nothing (old versions are kept, at a storage
    cost); MFA delete cannot be turned on without the root user's MFA device, so trailguard
    leaves it as it is and the incident says so. Undo suspends versioning again.

    Example:

        steps:
          - action: s3.enable_versioning
            with: {bucket: requestParameters.bucketName}
    """

    name = "s3.enable_versioning"
    service = "s3"
    eventually_consistent = True
    permissions = {"s3:GetBucketVersioning": BUCKET, "s3:PutBucketVersioning": BUCKET}
    parameters = (Parameter("bucket", "string", "Name of the bucket."),)

    def snapshot(self) -> dict[str, Any]:
        answer = self.client.get_bucket_versioning(Bucket=self.params["bucket"])
        return {"Bucket": self.params["bucket"], "Status": answer.get("Status") or "Off"}

    def check(self, state: Mapping[str, Any]) -> bool:
        return bool(state["Status"] == "Enabled")

    def apply(self, state: Mapping[str, Any]) -> None:
        self.client.put_bucket_versioning(Bucket=state["Bucket"], VersioningConfiguration={"Status": "Enabled"})

    def restore(self, state: Mapping[str, Any]) -> None:
        # A bucket whose versioning was never on cannot go back to "off": Suspended is the nearest.
        self.client.put_bucket_versioning(Bucket=state["Bucket"], VersioningConfiguration={"Status": "Suspended"})
