"""CloudTrail remediations: keep the record of API calls flowing."""

from __future__ import annotations

from typing import Any, Mapping

from chalicelib.actions.base import Action, Parameter, register


@register
class StartLogging(Action):
    """Start a trail that was stopped.

    Stopping a trail is often an attacker's first move: everything after it goes
    unrecorded. Undo stops the trail again, for the day the stop was intended.

    Example:

        steps:
          - action: cloudtrail.start_logging
            with: {trail: requestParameters.name}
    """

    name = "cloudtrail.start_logging"
    service = "cloudtrail"
    permissions = ("cloudtrail:GetTrailStatus", "cloudtrail:StartLogging", "cloudtrail:StopLogging")
    parameters = (Parameter("trail", "string", "Name or ARN of the trail."),)

    def snapshot(self) -> dict[str, Any]:
        status = self.client.get_trail_status(Name=self.params["trail"])
        return {"Trail": self.params["trail"], "IsLogging": bool(status.get("IsLogging"))}

    def check(self, state: Mapping[str, Any]) -> bool:
        return bool(state["IsLogging"])

    def apply(self, state: Mapping[str, Any]) -> None:
        self.client.start_logging(Name=state["Trail"])

    def restore(self, state: Mapping[str, Any]) -> None:
        if not state["IsLogging"]:
            self.client.stop_logging(Name=state["Trail"])
