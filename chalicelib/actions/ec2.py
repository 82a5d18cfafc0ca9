"""EC2 remediations: close what a security group opens to the internet, take back what a
snapshot or an image shares, and put back deleted VPC flow logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from chalicelib.actions import tags
from chalicelib.actions.base import ANY_RESOURCE, Action, ActionContext, ActionError, Parameter, ResourceType, register
from chalicelib.memory import flow_logs
from chalicelib.memory.rules import configuration

EBS_SNAPSHOT = ResourceType("EbsSnapshot", ("arn:*:ec2:*::snapshot/*",))
"""An EBS snapshot."""
IMAGE = ResourceType("Image", ("arn:*:ec2:*::image/*",))
"""An AMI."""
SECURITY_GROUP = ResourceType(
    "SecurityGroup", ("arn:*:ec2:*:*:security-group/*", "arn:*:ec2:*:*:security-group-rule/*")
)
"""A security group and its rules."""


def _network(cidr: Any) -> str | None:
    try:
        return str(ipaddress.ip_network(str(cidr).strip(), strict=False))
    except ValueError:
        return None


# EC2 names the protocols it knows; a rule authorized as "6" is described as "tcp".
_PROTOCOL_NAMES = {"all": "-1", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}


def _port_number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _rule_key(protocol: Any, low: Any, high: Any, cidr: Any) -> tuple[str, int, int, str | None]:
    protocol = str(protocol).lower()
    return (_PROTOCOL_NAMES.get(protocol, protocol), _port_number(low), _port_number(high), _network(cidr))


@register
class RevokePublicIngress(Action):
    """Revoke exactly the ingress ranges the playbook's condition found open, and nothing else.

    The action does not judge what "open to the internet" means: `ranges` are the entries
    the condition found, written with the same expression (`public_cidrs()` for
    0.0.0.0/0 and ::/0, ``wide_cidrs(requestParameters, `8`)`` for the internet opened in
    pieces, narrowed to administration and database ports by `open_to_ports()`), so that the
    step closes what the condition objected to. The matching rules of the group are revoked
    by rule id. Undo authorizes the same rules again.

    Example:

        steps:
          - action: ec2.revoke_public_ingress
            with:
              group: requestParameters.groupId
              ranges: open_to_ports(wide_cidrs(requestParameters, `8`), admin_and_database_ports())
    """

    name = "ec2.revoke_public_ingress"
    service = "ec2"
    eventually_consistent = True  # the EC2 API is eventually consistent, as AWS documents
    permissions = {
        "ec2:DescribeTags": ANY_RESOURCE,
        "ec2:DescribeSecurityGroupRules": ANY_RESOURCE,
        "ec2:RevokeSecurityGroupIngress": SECURITY_GROUP,
        "ec2:AuthorizeSecurityGroupIngress": SECURITY_GROUP,
    }
    parameters = (
        Parameter("group", "string", "Id of the security group."),
        Parameter(
            "ranges",
            "array",
            "The ranges to close, as the condition found them: entries ({cidr, ipProtocol, fromPort, toPort}) "
            "of public_cidrs() or wide_cidrs(), usually narrowed by open_to_ports().",
        ),
    )

    def resource_tags(self) -> dict[str, str] | None:
        return tags.ec2_tags(self.client, self.params["group"])

    def _targets(self) -> set[tuple[str, int, int, str | None]]:
        return {
            _rule_key(r.get("ipProtocol", "-1"), r.get("fromPort"), r.get("toPort"), r.get("cidr"))
            for r in self.params["ranges"]
            if isinstance(r, Mapping) and _network(r.get("cidr")) is not None
        }

    def _matching(self) -> list[dict[str, Any]]:
        targets = self._targets()
        if not targets:
            return []
        described = self.client.describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [self.params["group"]]}]
        )["SecurityGroupRules"]
        return [
            rule
            for rule in described
            if not rule.get("IsEgress")
            and _rule_key(
                rule["IpProtocol"],
                rule.get("FromPort"),
                rule.get("ToPort"),
                rule.get("CidrIpv4") or rule.get("CidrIpv6"),
            )
            in targets
        ]

    def snapshot(self) -> dict[str, Any]:
        rules = sorted(
            (
                {
                    key: rule[key]
                    for key in ("IpProtocol", "FromPort", "ToPort", "CidrIpv4", "CidrIpv6", "Description")
                    if rule.get(key) not in (None, "")
                }
                for rule in self._matching()
            ),
            key=lambda rule: sorted(rule.items()),
        )
        return {"Group": self.params["group"], "OpenRules": rules}

    def check(self, state: Mapping[str, Any]) -> bool:
        return not state["OpenRules"]

    def apply(self, state: Mapping[str, Any]) -> None:
        ids = [rule["SecurityGroupRuleId"] for rule in self._matching()]
        if ids:
            self.client.revoke_security_group_ingress(GroupId=self.params["group"], SecurityGroupRuleIds=ids)

    def restore(self, state: Mapping[str, Any]) -> None:
        permissions = []
        for rule in state["OpenRules"]:
            permission: dict[str, Any] = {"IpProtocol": rule["IpProtocol"]}
            if rule["IpProtocol"] != "-1":
                permission.update(FromPort=rule["FromPort"], ToPort=rule["ToPort"])
            entry = {key: rule[key] for key in ("Description",) if key in rule}
            if "CidrIpv4" in rule:
                permission["IpRanges"] = [{"CidrIp": rule["CidrIpv4"], **entry}]
            else:
                permission["Ipv6Ranges"] = [{"CidrIpv6": rule["CidrIpv6"], **entry}]
            permissions.append(permission)
        if permissions:
            self.client.authorize_security_group_ingress(GroupId=self.params["group"], IpPermissions=permissions)


_ACCOUNTS = Parameter(
    "accounts",
    "array",
    "Account ids (and, for an AMI, organization or organizational unit ARNs) to take the share back from, "
    "besides everyone (`all`); default: everyone only.",
    required=False,
    default=[],
)

_ORGANIZATION_KEYS = ("OrganizationArn", "OrganizationalUnitArn")
_SHARE_KINDS = ("Groups", "UserIds", "Organizations")


class _SharedPermission(Action):
    """Shared by snapshots and images: who may use it is a list of groups, account ids and,
    for images, organizations and organizational units."""

    resource_param: str
    eventually_consistent = True  # the EC2 API is eventually consistent, as AWS documents

    def _entries(self) -> list[dict[str, str]]:
        """The resource's permission entries, each `{"Group": ...}`, `{"UserId": ...}` or an organization's."""
        raise NotImplementedError

    def _describe(self) -> dict[str, list[str]]:
        entries = self._entries()
        shared = {
            "Groups": [e["Group"] for e in entries if "Group" in e],
            "UserIds": [e["UserId"] for e in entries if "UserId" in e],
        }
        organizations = [e[key] for e in entries for key in _ORGANIZATION_KEYS if key in e]
        if organizations:
            shared["Organizations"] = organizations
        return shared

    def _modify(self, operation: str, shared: Mapping[str, list[str]]) -> None:
        raise NotImplementedError

    def _unwanted(self) -> set[str]:
        return {"all", *(str(account) for account in self.params.get("accounts") or [])}

    def snapshot(self) -> dict[str, Any]:
        shared = self._describe()
        return {self.resource_param.capitalize(): self.params[self.resource_param]} | {
            kind: sorted(values) for kind, values in shared.items()
        }

    def check(self, state: Mapping[str, Any]) -> bool:
        return (
            not {v for kind in ("Groups", "UserIds", "Organizations") for v in state.get(kind, [])} & self._unwanted()
        )

    def apply(self, state: Mapping[str, Any]) -> None:
        unwanted = self._unwanted()
        self._modify("remove", {kind: [v for v in state.get(kind, []) if v in unwanted] for kind in _SHARE_KINDS})

    def restore(self, state: Mapping[str, Any]) -> None:
        now = self._describe()
        self._modify(
            "add", {kind: [v for v in state.get(kind, []) if v not in now.get(kind, [])] for kind in _SHARE_KINDS}
        )


@register
class RemovePublicSnapshotPermission(_SharedPermission):
    """Stop sharing an EBS snapshot with everyone (and, if named, with `accounts`).

    A public snapshot lets any AWS account create a volume from it: a copy of the disk.
    Other shares stay. Undo shares it again as before.

    Example:

        steps:
          - action: ec2.remove_public_snapshot_permission
            with: {snapshot: requestParameters.snapshotId}
    """

    name = "ec2.remove_public_snapshot_permission"
    service = "ec2"
    permissions = {
        "ec2:DescribeTags": ANY_RESOURCE,
        "ec2:DescribeSnapshotAttribute": EBS_SNAPSHOT,
        "ec2:ModifySnapshotAttribute": EBS_SNAPSHOT,
    }
    parameters = (Parameter("snapshot", "string", "Id of the EBS snapshot."), _ACCOUNTS)
    resource_param = "snapshot"

    def resource_tags(self) -> dict[str, str] | None:
        return tags.ec2_tags(self.client, self.params["snapshot"])

    def _entries(self) -> list[dict[str, str]]:
        response = self.client.describe_snapshot_attribute(
            SnapshotId=self.params["snapshot"], Attribute="createVolumePermission"
        )
        entries: list[dict[str, str]] = response.get("CreateVolumePermissions", [])
        return entries

    def _modify(self, operation: str, shared: Mapping[str, list[str]]) -> None:
        groups, users = list(shared.get("Groups", [])), list(shared.get("UserIds", []))
        if groups or users:
            self.client.modify_snapshot_attribute(
                SnapshotId=self.params["snapshot"],
                Attribute="createVolumePermission",
                OperationType=operation,
                GroupNames=groups,
                UserIds=users,
            )


@register
class RemovePublicImagePermission(_SharedPermission):
    """Stop sharing an AMI with everyone (and, if named, with `accounts`: account ids,
    organization and organizational unit ARNs).

    A public image lets any AWS account launch it, and read what it holds. Other shares
    stay. Undo shares it again as before.

    Example:

        steps:
          - action: ec2.remove_public_image_permission
            with: {image: requestParameters.imageId}
    """

    name = "ec2.remove_public_image_permission"
    service = "ec2"
    permissions = {
        "ec2:DescribeTags": ANY_RESOURCE,
        "ec2:DescribeImageAttribute": IMAGE,
        "ec2:ModifyImageAttribute": IMAGE,
    }
    parameters = (Parameter("image", "string", "Id of the AMI."), _ACCOUNTS)
    resource_param = "image"

    def resource_tags(self) -> dict[str, str] | None:
        return tags.ec2_tags(self.client, self.params["image"])

    def _entries(self) -> list[dict[str, str]]:
        response = self.client.describe_image_attribute(ImageId=self.params["image"], Attribute="launchPermission")
        entries: list[dict[str, str]] = response.get("LaunchPermissions", [])
        return entries

    def _modify(self, operation: str, shared: Mapping[str, list[str]]) -> None:
        entries = [{"Group": g} for g in shared.get("Groups", [])] + [{"UserId": u} for u in shared.get("UserIds", [])]
        for arn in shared.get("Organizations", []):
            entries.append({"OrganizationalUnitArn" if ":ou/" in arn else "OrganizationArn": arn})
        if entries:
            key = "Add" if operation == "add" else "Remove"
            self.client.modify_image_attribute(ImageId=self.params["image"], LaunchPermission={key: entries})


@register
class RestoreFlowLogs(Action):
    """Re-create deleted VPC flow logs from their last known configuration.

    Flow logs are how a network is investigated afterwards; deleting them is cleaning up
    before acting. trailguard remembers every flow log it sees (on CreateFlowLogs and in
    the sweep); a flow log it never saw cannot be re-created, and the step says so.
    Undo deletes the flow logs it created.

    Example:

        steps:
          - action: ec2.restore_flow_logs
            with: {flow_logs: flow_log_ids(requestParameters)}
    """

    name = "ec2.restore_flow_logs"
    service = "ec2"
    eventually_consistent = True  # the EC2 API is eventually consistent, as AWS documents
    permissions = {
        "ec2:DescribeFlowLogs": ANY_RESOURCE,
        "ec2:CreateFlowLogs": ANY_RESOURCE,
        "ec2:DeleteFlowLogs": ANY_RESOURCE,
        "logs:CreateLogDelivery": ANY_RESOURCE,
        "logs:DeleteLogDelivery": ANY_RESOURCE,
        "iam:PassRole": ANY_RESOURCE,
    }
    passes_role_to = "vpc-flow-logs.amazonaws.com"
    parameters = (
        Parameter(
            "flow_logs",
            "array",
            "Ids of the deleted flow logs (flow_log_ids(requestParameters)).",
            names_the_targets=True,
        ),
    )

    @classmethod
    def memory_keys(cls, params: Mapping[str, Any], context: ActionContext) -> list[str]:
        if context.memory is None or context.region is None:
            return []
        return [flow_logs.memory_key(context.account or "", context.region, f) for f in params.get("flow_logs") or []]

    @classmethod
    def recall(cls, params: Mapping[str, Any], context: ActionContext) -> dict[str, Any] | None:
        found = {}
        for flow_log, key in zip(params.get("flow_logs") or [], cls.memory_keys(params, context), strict=False):
            config = configuration(context.memory.recall(key))
            if config is not None:
                found[flow_log] = config
        return {"FlowLogs": found} if found else None

    def _configs(self) -> dict[str, dict[str, Any]]:
        remembered = (self.remembered() or {}).get("FlowLogs", {})
        missing = [flow_log for flow_log in self.params["flow_logs"] if flow_log not in remembered]
        if missing:
            raise ActionError(
                f"no configuration was ever remembered for flow log(s) {', '.join(missing)}: re-create them by hand"
            )
        return remembered

    def snapshot(self) -> dict[str, Any]:
        configs = self._configs()
        current = flow_logs.describe_all(self.client)
        present = {flow_logs.identity(config): flow_log for flow_log, config in current.items()}
        return {
            "Missing": sorted(f for f, config in configs.items() if flow_logs.identity(config) not in present),
            "Present": sorted(
                present[flow_logs.identity(c)] for c in configs.values() if flow_logs.identity(c) in present
            ),
        }

    def check(self, state: Mapping[str, Any]) -> bool:
        return not state["Missing"]

    def apply(self, state: Mapping[str, Any]) -> None:
        configs = self._configs()
        for flow_log in state["Missing"]:
            flow_logs.create(self.client, configs[flow_log])
        self.note = f"re-created {len(state['Missing'])} flow log(s) from their remembered configuration"

    def restore(self, state: Mapping[str, Any]) -> None:
        created = sorted(set(self.snapshot()["Present"]) - set(state["Present"]))
        if created:
            self.client.delete_flow_logs(FlowLogIds=created)
