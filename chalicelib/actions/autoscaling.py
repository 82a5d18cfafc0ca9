"""Keeping an isolated instance alive: out of its Auto Scaling group.

An instance trailguard isolates stops answering health checks, and its Auto Scaling group
would then replace it, terminating it with its memory and, unless kept, its disks: the
evidence. The AWS Security Incident Response Guide lists "detach the EC2 instance from any
Auto Scaling groups" among the steps of isolating an instance; `DetachInstances` with
`ShouldDecrementDesiredCapacity=false` makes the group launch a replacement, so the
workload keeps its capacity. (Standby, which AWS's `AWSSupport-ContainEC2Instance` runbook
uses, keeps the instance in the group and its capacity counted: the workload runs one
short for as long as the investigation lasts.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.actions.base import ANY_RESOURCE, Action, Parameter, ResourceType, UndoRefused, register

AUTO_SCALING_GROUP = ResourceType(
    "AutoScalingGroup", ("arn:*:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*",)
)
"""An Auto Scaling group."""
_LEAVING = frozenset({"Detaching", "Detached", "Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated"})
"""Lifecycle states in which an instance is on its way out of its group: not held by it."""


@register
class DetachFromAutoScaling(Action):
    """Detach an EC2 instance from its Auto Scaling group, so that the group does not
    terminate it once it is isolated (an isolated instance fails its health checks). The
    group's desired capacity is kept: it launches a replacement, and the workload keeps
    its capacity. An instance in no group is left alone (already safe).

    Undo attaches the instance to its group again if the group still exists and has room
    (attaching raises its desired capacity by one, up to its maximum size); otherwise it
    is refused with the reason (raise the maximum size, or remove the replacement, then
    undo again).

    List it before `ec2.isolate_instance`.

    Example:

        steps:
          - action: autoscaling.detach_instance
            with: {instance: finding_instance(@)}
    """

    name = "autoscaling.detach_instance"
    service = "autoscaling"
    eventually_consistent = True  # a detach takes a moment to show
    permissions = {
        "autoscaling:DescribeAutoScalingInstances": ANY_RESOURCE,
        "autoscaling:DescribeAutoScalingGroups": ANY_RESOURCE,
        "autoscaling:DetachInstances": AUTO_SCALING_GROUP,
        "autoscaling:AttachInstances": AUTO_SCALING_GROUP,
    }
    parameters = (Parameter("instance", "string", "The instance id (i-...)."),)

    def snapshot(self) -> dict[str, Any]:
        instance = self.params["instance"]
        found = self.client.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"]
        held = [item for item in found if item.get("LifecycleState") not in _LEAVING]
        return {"Instance": instance, "Group": str(held[0]["AutoScalingGroupName"]) if held else None}

    def check(self, state: Mapping[str, Any]) -> bool:
        return state["Group"] is None

    def apply(self, state: Mapping[str, Any]) -> None:
        self.client.detach_instances(
            InstanceIds=[state["Instance"]],
            AutoScalingGroupName=state["Group"],
            ShouldDecrementDesiredCapacity=False,
        )
        self.note = f"detached from {state['Group']}, which launches a replacement"

    def restore(self, state: Mapping[str, Any]) -> None:
        group_name = state["Group"]
        if group_name is None:
            return
        groups = self.client.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
        if not groups:
            raise UndoRefused(
                f"{self.name}: the Auto Scaling group {group_name} no longer exists: {state['Instance']} stays "
                "on its own"
            )
        group = groups[0]
        if int(group["DesiredCapacity"]) + 1 > int(group["MaxSize"]):
            raise UndoRefused(
                f"{self.name}: the Auto Scaling group {group_name} has no room for {state['Instance']} (desired "
                f"{group['DesiredCapacity']}, maximum {group['MaxSize']}; attaching adds one): raise its maximum "
                "size or remove its replacement, then undo again"
            )
        self.client.attach_instances(InstanceIds=[state["Instance"]], AutoScalingGroupName=group_name)
