"""AWS Organizations remediations, in the management account: what blinds the organization trail.

These run through the management account's own minimal role (`TRAILGUARD_MANAGEMENT_ROLE`,
docs/deploy.md), not the member role: the management account is where the organization
trail and its trusted access live, and nothing else there is trailguard's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import ANY_RESOURCE, Action, Parameter, register


@register
class EnableServiceAccess(Action):
    """Give a service back its trusted access to the organization (by default CloudTrail's).

    `DisableAWSServiceAccess` for `cloudtrail.amazonaws.com` stops the organization trail
    from being created in new accounts and from being managed as one: AWS documents that
    disabling trusted access leaves the existing trails as they are only until they are
    next changed, and member accounts joining later are not logged. Undo disables it again.

    Example:

        steps:
          - action: organizations.enable_service_access
            with: {service: requestParameters.servicePrincipal}
    """

    name = "organizations.enable_service_access"
    service = "organizations"
    permissions = {
        "organizations:ListAWSServiceAccessForOrganization": ANY_RESOURCE,
        "organizations:EnableAWSServiceAccess": ANY_RESOURCE,
        "organizations:DisableAWSServiceAccess": ANY_RESOURCE,
    }
    parameters = (Parameter("service", "string", "The service principal.", False, "cloudtrail.amazonaws.com"),)

    def snapshot(self) -> dict[str, Any]:
        enabled: set[str] = set()
        for page in self.client.get_paginator("list_aws_service_access_for_organization").paginate():
            enabled.update(p["ServicePrincipal"] for p in page["EnabledServicePrincipals"])
        return {"Service": self.params["service"], "Enabled": self.params["service"] in enabled}

    def check(self, state: Mapping[str, Any]) -> bool:
        return bool(state["Enabled"])

    def apply(self, state: Mapping[str, Any]) -> None:
        self.client.enable_aws_service_access(ServicePrincipal=state["Service"])

    def restore(self, state: Mapping[str, Any]) -> None:
        if not state["Enabled"]:
            self.client.disable_aws_service_access(ServicePrincipal=state["Service"])
