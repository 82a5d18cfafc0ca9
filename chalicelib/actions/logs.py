"""CloudWatch Logs remediations: the log group a trail delivers to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import Action, Parameter, ResourceType, register

LOG_GROUP = ResourceType("LogGroup", ("arn:*:logs:*:*:log-group:*",))
"""A log group."""


@register
class RecreateLogGroup(Action):
    """Create again the CloudWatch Logs group a trail delivers to, after it was deleted.

    CloudTrail's delivery to a deleted log group fails, and every metric filter and alarm
    built on it (root logins, IAM changes, the CIS benchmark's alarms) goes quiet. An empty
    group under the same name lets delivery resume: the trail names the group by its ARN,
    which the name and place alone make (the events of the gap are still in the trail's S3
    log files). The group's metric filters and retention are not known after the deletion,
    so the incident says to restore them. Undo deletes the group trailguard created, if
    nobody changed it since.

    Example:

        steps:
          - action: logs.recreate_log_group
            with: {log_group: requestParameters.logGroupName}
    """

    name = "logs.recreate_log_group"
    service = "logs"
    permissions = {
        "logs:DescribeLogGroups": LOG_GROUP,
        "logs:CreateLogGroup": LOG_GROUP,
        "logs:DeleteLogGroup": LOG_GROUP,
    }
    parameters = (Parameter("log_group", "string", "Name of the log group."),)

    def snapshot(self) -> dict[str, Any]:
        name = self.params["log_group"]
        groups = self.client.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        group = next((group for group in groups if group["logGroupName"] == name), None)
        if group is None:
            return {"LogGroup": name, "Exists": False}
        return {"LogGroup": name, "Exists": True, "RetentionInDays": group.get("retentionInDays")}

    def check(self, state: Mapping[str, Any]) -> bool:
        return bool(state["Exists"])

    def apply(self, state: Mapping[str, Any]) -> None:
        self.client.create_log_group(logGroupName=state["LogGroup"])
        self.note = "created empty: put back its metric filters, subscriptions and retention"

    def restore(self, state: Mapping[str, Any]) -> None:
        if not state["Exists"]:
            self.client.delete_log_group(logGroupName=state["LogGroup"])
