"""Containing an EC2 instance: cut it off the network, keeping what it had for undo.

`ec2.isolate_instance` swaps the security groups of every network interface of the
instance for a quarantine group trailguard creates once per VPC (`trailguard-quarantine`:
no inbound rule, its default outbound rule removed). AWS documents that security groups are
stateful and that changing them does not interrupt flows already tracked: an established
connection (a miner's pool, a reverse shell) can survive until it is idle or the instance
restarts; new connections are refused at once. Nothing is stopped or deleted: the instance,
its disks and memory stay for forensics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.actions import tags
from chalicelib.actions.base import ANY_RESOURCE, Action, ActionError, Parameter, ResourceType, register
from chalicelib.actions.ec2 import SECURITY_GROUP

QUARANTINE_GROUP = "trailguard-quarantine"
NETWORK_INTERFACE = ResourceType("NetworkInterface", ("arn:*:ec2:*:*:network-interface/*",))
"""An elastic network interface."""
VPC = ResourceType("Vpc", ("arn:*:ec2:*:*:vpc/*",))
"""A VPC (where a security group is created)."""
INSTANCE = ResourceType("Instance", ("arn:*:ec2:*:*:instance/*",))
"""An EC2 instance."""
TAGGED_AT_CREATION = ResourceType("CreatedByTrailguard", (*SECURITY_GROUP.arns, "arn:*:ec2:*::snapshot/*"))
"""What containment tags as it creates it: the quarantine group, the forensic snapshots
(one IAM permission, ec2:CreateTags, is narrowed to one resource type for all actions)."""


@register
class IsolateInstance(Action):
    """Isolate an EC2 instance: replace the security groups of each of its network interfaces
    with trailguard's quarantine group of its VPC (created on first use: no inbound rule, no
    outbound rule). New connections in and out are refused; connections already established
    may live on (security groups track them) until idle or a reboot. The workload the
    instance serves stops answering; the instance keeps running for forensics.

    Undo gives each interface back the groups it had, and refuses if any of them changed since.

    Example:

        steps:
          - action: ec2.isolate_instance
            with: {instance: finding_instance(@)}
    """

    name = "ec2.isolate_instance"
    service = "ec2"
    eventually_consistent = True  # EC2 documents its API as eventually consistent
    permissions = {
        "ec2:DescribeInstances": ANY_RESOURCE,
        "ec2:DescribeSecurityGroups": ANY_RESOURCE,
        "ec2:DescribeTags": ANY_RESOURCE,
        "ec2:CreateSecurityGroup": VPC,
        "ec2:CreateTags": TAGGED_AT_CREATION,
        "ec2:RevokeSecurityGroupEgress": SECURITY_GROUP,
        "ec2:ModifyNetworkInterfaceAttribute": NETWORK_INTERFACE,
    }
    parameters = (Parameter("instance", "string", "The instance id (i-...)."),)

    def resource_tags(self) -> dict[str, str] | None:
        return tags.ec2_tags(self.client, self.params["instance"])

    def _instance(self) -> dict[str, Any]:
        reservations = self.client.describe_instances(InstanceIds=[self.params["instance"]])["Reservations"]
        instances = [instance for reservation in reservations for instance in reservation["Instances"]]
        if not instances:
            raise ActionError(f"no instance {self.params['instance']}")
        return dict(instances[0])

    def _quarantine_group(self, vpc: str) -> str | None:
        groups = self.client.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": [QUARANTINE_GROUP]}]
        )["SecurityGroups"]
        return str(groups[0]["GroupId"]) if groups else None

    def snapshot(self) -> dict[str, Any]:
        instance = self._instance()
        vpc = instance.get("VpcId")
        if not vpc:
            raise ActionError(f"instance {self.params['instance']} is not in a VPC: it cannot be isolated this way")
        interfaces = {
            interface["NetworkInterfaceId"]: sorted(group["GroupId"] for group in interface.get("Groups", []))
            for interface in instance.get("NetworkInterfaces", [])
        }
        return {
            "Instance": self.params["instance"],
            "Vpc": vpc,
            "QuarantineGroup": self._quarantine_group(vpc),
            "Interfaces": dict(sorted(interfaces.items())),
        }

    def check(self, state: Mapping[str, Any]) -> bool:
        group = state["QuarantineGroup"]
        return bool(state["Interfaces"]) and all(groups == [group] for groups in state["Interfaces"].values())

    def apply(self, state: Mapping[str, Any]) -> None:
        if not state["Interfaces"]:
            raise ActionError(f"instance {state['Instance']} has no network interface to isolate")
        group = state["QuarantineGroup"] or self._create_quarantine_group(state["Vpc"])
        for interface in state["Interfaces"]:
            self.client.modify_network_interface_attribute(NetworkInterfaceId=interface, Groups=[group])
        self.note = f"its interfaces are in {group} ({QUARANTINE_GROUP}) only"

    def restore(self, state: Mapping[str, Any]) -> None:
        for interface, groups in state["Interfaces"].items():
            self.client.modify_network_interface_attribute(NetworkInterfaceId=interface, Groups=list(groups))

    def undo(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        # The quarantine group may have been created by apply: `before` did not know its id,
        # and undo leaves the group in the VPC for next time.
        super().undo(before, after)

    def _create_quarantine_group(self, vpc: str) -> str:
        created = self.client.create_security_group(
            GroupName=QUARANTINE_GROUP,
            Description="trailguard: isolates an instance (no inbound, no outbound)",
            VpcId=vpc,
            TagSpecifications=[
                {"ResourceType": "security-group", "Tags": [{"Key": "trailguard:purpose", "Value": "quarantine"}]}
            ],
        )
        group = str(created["GroupId"])
        described = self.client.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
        egress = described.get("IpPermissionsEgress") or []
        if egress:  # the default "all traffic to 0.0.0.0/0" rule every new group gets
            self.client.revoke_security_group_egress(GroupId=group, IpPermissions=egress)
        return group


VOLUME_AND_SNAPSHOT = ResourceType("VolumeSnapshot", ("arn:*:ec2:*:*:volume/*", "arn:*:ec2:*::snapshot/*"))
"""What CreateSnapshot is authorized on: the volume it reads and the snapshot it makes."""
EVIDENCE_TAG = "trailguard:incident"
"""The tag that names the incident a forensic snapshot was taken for."""


@register
class SnapshotVolumes(Action):
    """Take a forensic snapshot of every EBS volume attached to an EC2 instance, before it is
    isolated: each snapshot is tagged with the incident id (`trailguard:incident`), the
    instance and the volume, so investigators find them and know where they came from.
    A snapshot is point-in-time and crash-consistent; the instance keeps running and
    nothing on it changes (EBS may take a while to finish copying the blocks).

    The snapshots are evidence: undo never deletes them (it has nothing to put back, and
    says so); delete them yourself once the investigation is closed. Snapshots are billed
    for the data they hold.

    List it before `ec2.isolate_instance`, so that the disks are kept first.

    Example:

        steps:
          - action: ec2.snapshot_volumes
            with: {instance: finding_instance(@)}
    """

    name = "ec2.snapshot_volumes"
    service = "ec2"
    eventually_consistent = True  # a snapshot just made may not be listed at once
    permissions = {
        "ec2:DescribeInstances": ANY_RESOURCE,
        "ec2:DescribeSnapshots": ANY_RESOURCE,
        "ec2:DescribeTags": ANY_RESOURCE,
        "ec2:CreateSnapshot": VOLUME_AND_SNAPSHOT,
        "ec2:CreateTags": TAGGED_AT_CREATION,
    }
    parameters = (Parameter("instance", "string", "The instance id (i-...)."),)

    def resource_tags(self) -> dict[str, str] | None:
        return tags.ec2_tags(self.client, self.params["instance"])

    def _incident(self) -> str:
        """The incident the snapshots are evidence for (`unattributed` outside one: tests, replay)."""
        return self.context.incident_id or "unattributed"

    def snapshot(self) -> dict[str, Any]:
        instance = self.params["instance"]
        reservations = self.client.describe_instances(InstanceIds=[instance])["Reservations"]
        found = [item for reservation in reservations for item in reservation["Instances"]]
        if not found:
            raise ActionError(f"no instance {instance}")
        volumes = sorted(
            mapping["Ebs"]["VolumeId"] for mapping in found[0].get("BlockDeviceMappings", []) if "Ebs" in mapping
        )
        taken: dict[str, str] = {}
        pages = self.client.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"],
            Filters=[
                {"Name": f"tag:{EVIDENCE_TAG}", "Values": [self._incident()]},
                {"Name": "tag:trailguard:instance", "Values": [instance]},
            ],
        )
        for page in pages:
            for snapshot in page["Snapshots"]:
                if snapshot.get("State") != "error":  # a failed copy is no evidence
                    taken.setdefault(snapshot["VolumeId"], snapshot["SnapshotId"])
        return {"Instance": instance, "Volumes": volumes, "Snapshots": dict(sorted(taken.items()))}

    def check(self, state: Mapping[str, Any]) -> bool:
        """Safe once every attached volume has its snapshot for this incident."""
        return all(volume in state["Snapshots"] for volume in state["Volumes"])

    def apply(self, state: Mapping[str, Any]) -> None:
        if not state["Volumes"]:
            raise ActionError(f"instance {state['Instance']} has no EBS volume to snapshot")
        made = []
        for volume in state["Volumes"]:
            if volume in state["Snapshots"]:
                continue
            created = self.client.create_snapshot(
                VolumeId=volume,
                Description=f"trailguard forensic snapshot of {volume} on {state['Instance']} ({self._incident()})",
                TagSpecifications=[
                    {
                        "ResourceType": "snapshot",
                        "Tags": [
                            {"Key": EVIDENCE_TAG, "Value": self._incident()},
                            {"Key": "trailguard:instance", "Value": state["Instance"]},
                            {"Key": "trailguard:volume", "Value": volume},
                            {"Key": "trailguard:purpose", "Value": "forensics"},
                        ],
                    }
                ],
            )
            made.append(str(created["SnapshotId"]))
        self.note = f"evidence kept: {', '.join(made)} (undo keeps them)"

    def restore(self, state: Mapping[str, Any]) -> None:
        """Nothing: the snapshots are evidence, and undo never deletes evidence."""

    def undo(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        # Undoing an isolation must never delete evidence: the snapshots stay, whatever
        # happened to them since; there is nothing else to put back.
        kept = ", ".join(after.get("Snapshots", {}).values()) or "none"
        self.note = f"the forensic snapshots are kept as evidence ({kept}); delete them when the case is closed"
