"""CloudTrail remediations: keep the record of API calls flowing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib import trails
from chalicelib.actions.base import (
    Action,
    ActionContext,
    ActionError,
    Parameter,
    register,
)


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


def _trail_key(params: Mapping[str, Any], context: ActionContext) -> str | None:
    if context.region is None:
        return None
    account, region, name = trails.locate(params["trail"], context.account or "", context.region)
    return trails.memory_key(account, region, name)


@register
class RestoreTrail(Action):
    """Re-create a deleted trail exactly as it was, and start it.

    DeleteTrail erases the trail's configuration along with it, so trailguard keeps the
    last known configuration of every trail (S3 bucket and prefix, SNS topic, KMS key,
    multi-region, organization, log file validation, CloudWatch Logs group and role,
    event selectors or advanced selectors, tags). When none was ever seen, the trail is
    re-created from `fallback` if the playbook gives one; with neither, the step fails
    and says so: it never does nothing quietly. Undo deletes the re-created trail.

    Example:

        steps:
          - action: cloudtrail.restore_trail
            with:
              trail: requestParameters.name
              fallback: '`{"S3BucketName": "org-cloudtrail-logs", "IsMultiRegionTrail": true}`'
    """

    name = "cloudtrail.restore_trail"
    service = "cloudtrail"
    permissions = (
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetEventSelectors",
        "cloudtrail:ListTags",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:CreateTrail",
        "cloudtrail:PutEventSelectors",
        "cloudtrail:AddTags",
        "cloudtrail:StartLogging",
        "cloudtrail:DeleteTrail",
        "iam:PassRole",
    )
    passes_role_to = "cloudtrail.amazonaws.com"
    parameters = (
        Parameter("trail", "string", "Name or ARN of the deleted trail."),
        Parameter(
            "fallback",
            "object",
            "The trail to create when no configuration was remembered: describe_trails fields "
            "(S3BucketName required; S3KeyPrefix, IsMultiRegionTrail, KmsKeyId, ...).",
            required=False,
        ),
    )

    @classmethod
    def memory_key(cls, params: Mapping[str, Any], context: ActionContext) -> str | None:
        return _trail_key(params, context)

    def snapshot(self) -> dict[str, Any]:
        config = trails.describe(self.client, self.params["trail"])
        return {"Trail": self.params["trail"], "Exists": config is not None, "Config": config}

    def check(self, state: Mapping[str, Any]) -> bool:
        return bool(state["Exists"])

    def apply(self, state: Mapping[str, Any]) -> None:
        trail = self.params["trail"]
        config = self.remembered()
        if config is not None:
            self.note = (
                f"re-created from the configuration remembered at {config.get('RememberedAt', 'an unknown time')}"
            )
        else:
            fallback = self.params.get("fallback")
            if not fallback or not fallback.get("S3BucketName"):
                raise ActionError(
                    f"no configuration of trail {trail} was ever remembered and the playbook gives no "
                    "`fallback` with an S3BucketName: re-create the trail by hand"
                )
            config = {**fallback, "Name": trails.locate(trail, "", "")[2]}
            self.note = "no configuration was remembered: re-created from the playbook's fallback"
        trails.create(self.client, config)

    def restore(self, state: Mapping[str, Any]) -> None:
        if not state["Exists"]:
            self.client.delete_trail(Name=self.params["trail"])


@register
class RestoreEventSelectors(Action):
    """Put back the event selectors a PutEventSelectors took away.

    Turning off management events (or keeping only read-only ones) blinds a trail without
    stopping it. The selectors come from the trail's last known configuration; when none
    was remembered, from `selectors` (default: all management events, read and write).
    Undo puts back the selectors trailguard replaced.

    Example:

        steps:
          - action: cloudtrail.restore_event_selectors
            with: {trail: requestParameters.trailName}
    """

    name = "cloudtrail.restore_event_selectors"
    service = "cloudtrail"
    permissions = ("cloudtrail:GetEventSelectors", "cloudtrail:PutEventSelectors")
    parameters = (
        Parameter("trail", "string", "Name or ARN of the trail."),
        Parameter(
            "selectors",
            "object",
            "Selectors to put when none were remembered: {EventSelectors: [...]} or {AdvancedEventSelectors: [...]}.",
            required=False,
            default={"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]},
        ),
    )

    @classmethod
    def memory_key(cls, params: Mapping[str, Any], context: ActionContext) -> str | None:
        return _trail_key(params, context)

    def snapshot(self) -> dict[str, Any]:
        current = self.client.get_event_selectors(TrailName=self.params["trail"])
        return {"Trail": self.params["trail"], **trails.selectors_of(current)}

    def _wanted(self) -> dict[str, Any]:
        remembered = self.remembered()
        if remembered is not None:
            self.note = f"selectors remembered at {remembered.get('RememberedAt', 'an unknown time')}"
            return trails.selectors_of(remembered)
        self.note = "no selectors were remembered: put the playbook's default"
        return trails.selectors_of(self.params.get("selectors") or self.parameter("selectors").default)  # type: ignore[union-attr]

    def check(self, state: Mapping[str, Any]) -> bool:
        wanted = self._wanted()
        return all(state.get(key) == value for key, value in wanted.items())

    def apply(self, state: Mapping[str, Any]) -> None:
        trails.put_selectors(self.client, state["Trail"], self._wanted())

    def restore(self, state: Mapping[str, Any]) -> None:
        trails.put_selectors(self.client, state["Trail"], dict(state))


# describe_trails field -> update_trail parameter, and the value that clears it.
_UPDATABLE = {
    "S3BucketName": ("S3BucketName", None),
    "S3KeyPrefix": ("S3KeyPrefix", ""),
    "SnsTopicName": ("SnsTopicName", ""),
    "IncludeGlobalServiceEvents": ("IncludeGlobalServiceEvents", False),
    "IsMultiRegionTrail": ("IsMultiRegionTrail", False),
    "LogFileValidationEnabled": ("EnableLogFileValidation", False),
    "CloudWatchLogsLogGroupArn": ("CloudWatchLogsLogGroupArn", ""),
    "CloudWatchLogsRoleArn": ("CloudWatchLogsRoleArn", ""),
    "KmsKeyId": ("KmsKeyId", ""),
}


@register
class RestoreTrailSettings(Action):
    """Put a trail's settings back as trailguard last saw them, after an UpdateTrail that
    weakened it (multi-region off, log file validation off, KMS encryption removed, the
    bucket or prefix changed, CloudWatch Logs delivery removed).

    The settings are those remembered when the incident was opened; with none, the step
    fails and says so. Undo puts back the settings it replaced.

    Example:

        steps:
          - action: cloudtrail.restore_trail_settings
            with: {trail: requestParameters.name}
    """

    name = "cloudtrail.restore_trail_settings"
    service = "cloudtrail"
    permissions = (
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetEventSelectors",
        "cloudtrail:ListTags",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:UpdateTrail",
        "iam:PassRole",
    )
    passes_role_to = "cloudtrail.amazonaws.com"
    parameters = (Parameter("trail", "string", "Name or ARN of the trail."),)

    @classmethod
    def memory_key(cls, params: Mapping[str, Any], context: ActionContext) -> str | None:
        return _trail_key(params, context)

    def _wanted(self) -> dict[str, Any]:
        remembered = self.remembered()
        if remembered is None:
            raise ActionError(
                f"trailguard never saw trail {self.params['trail']} before this change: "
                "its previous settings are unknown; check them by hand"
            )
        return {field: remembered.get(field) for field in _UPDATABLE}

    def snapshot(self) -> dict[str, Any]:
        config = trails.describe(self.client, self.params["trail"])
        if config is None:
            raise ActionError(f"trail {self.params['trail']} does not exist")
        return {"Trail": self.params["trail"], "Settings": {field: config.get(field) for field in _UPDATABLE}}

    def check(self, state: Mapping[str, Any]) -> bool:
        return state["Settings"] == self._wanted()

    def apply(self, state: Mapping[str, Any]) -> None:
        self._update(self._wanted(), state["Settings"])
        self.note = "settings remembered at " + str((self.remembered() or {}).get("RememberedAt", "?"))

    def restore(self, state: Mapping[str, Any]) -> None:
        self._update(state["Settings"], self.snapshot()["Settings"])

    def _update(self, settings: Mapping[str, Any], current: Mapping[str, Any]) -> None:
        """Change only the settings that differ (an empty value clears one, as UpdateTrail documents)."""
        parameters = {}
        for field, (parameter, cleared) in _UPDATABLE.items():
            value = settings.get(field)
            if value == current.get(field) or (value is None and cleared is None):
                continue
            parameters[parameter] = cleared if value is None else value
        if parameters:
            self.client.update_trail(Name=self.params["trail"], **parameters)
