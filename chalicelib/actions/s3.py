"""S3 remediations: take away what a bucket gives to the whole internet."""

from __future__ import annotations

from typing import Any, Mapping

from chalicelib.actions.base import Action, Parameter, register
from chalicelib.domain_functions import PUBLIC_GROUPS

_GRANTEE_KEYS = ("Type", "ID", "URI", "EmailAddress")


def _grant(grant: Mapping[str, Any]) -> dict[str, Any]:
    """A grant as S3 accepts it back; DisplayName is informational and left out."""
    grantee = grant.get("Grantee", {})
    return {
        "Grantee": {key: grantee[key] for key in _GRANTEE_KEYS if grantee.get(key)},
        "Permission": grant["Permission"],
    }


def _is_public(grant: Mapping[str, Any]) -> bool:
    return grant["Grantee"].get("URI") in PUBLIC_GROUPS


def _sort_key(grant: Mapping[str, Any]) -> tuple[str, ...]:
    grantee = grant["Grantee"]
    return tuple(str(grantee.get(key, "")) for key in _GRANTEE_KEYS) + (grant["Permission"],)


@register
class RemovePublicAcl(Action):
    """Remove the grants a bucket ACL gives to everyone (AllUsers) or to any AWS account
    (AuthenticatedUsers).

    Every other grant stays as it was: the owner's, other accounts', the log delivery
    group's. Undo puts the previous ACL back, public grants included.

    Example:

        steps:
          - action: s3.remove_public_acl
            with: {bucket: requestParameters.bucketName}
    """

    name = "s3.remove_public_acl"
    service = "s3"
    permissions = ("s3:GetBucketAcl", "s3:PutBucketAcl")
    parameters = (Parameter("bucket", "string", "Name of the bucket."),)

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
