"""EC2 remediations: close what a security group opens to the internet, take back what a
snapshot or an image shares, and put back deleted VPC flow logs."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from chalicelib import flowlogs, memory
from chalicelib.actions.base import (
    Action,
    ActionContext,
    ActionError,
    Parameter,
    register,
)
from chalicelib.domain_functions import (
    ADMIN_AND_DATABASE_PORTS,
    open_to_ports,
    public_cidrs,
)


def _network(cidr: Any) -> str | None:
    try:
        return str(ipaddress.ip_network(str(cidr).strip(), strict=False))
    except ValueError:
        return None


def _rule_key(protocol: Any, low: Any, high: Any, cidr: Any) -> tuple[str, int, int, str | None]:
    protocol = str(protocol)
    if protocol == "all":
        protocol = "-1"
    return (protocol, int(low if low is not None else -1), int(high if high is not None else -1), _network(cidr))


@register
class RevokePublicIngress(Action):
    """Revoke the ingress rules a call just opened to the whole internet on administration
    or database ports (or on every port), and nothing else.

    The rules to close come from the call itself: `rules` are the rules the response
    created (securityGroupRuleSet.items, with their rule ids), or, for older records,
    `permissions` as `public_cidrs(requestParameters)` reads them. Of those, only the ones
    open to 0.0.0.0/0 or ::/0 that reach one of `ports` (or every protocol) are revoked,
    by rule id. Undo authorizes the same rules again.

    Example:

        steps:
          - action: ec2.revoke_public_ingress
            with:
              group: requestParameters.groupId
              rules: responseElements.securityGroupRuleSet.items
              permissions: public_cidrs(requestParameters)
    """

    name = "ec2.revoke_public_ingress"
    service = "ec2"
    eventually_consistent = True  # the EC2 API is eventually consistent, as AWS documents
    permissions = (
        "ec2:DescribeSecurityGroupRules",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupIngress",
    )
    parameters = (
        Parameter("group", "string", "Id of the security group."),
        Parameter(
            "rules",
            "array",
            "The rules the call created (responseElements.securityGroupRuleSet.items).",
            required=False,
        ),
        Parameter(
            "permissions",
            "array",
            "The ranges the call opened, when the response lists no rules (public_cidrs(requestParameters)).",
            required=False,
        ),
        Parameter(
            "ports",
            "array",
            "Ports that must not be open to the internet (default: administration and database ports).",
            required=False,
            default=list(ADMIN_AND_DATABASE_PORTS),
        ),
    )

    def _targets(self) -> set[tuple[str, int, int, str | None]]:
        added: list[Mapping[str, Any]] = [
            {
                "ipProtocol": rule.get("ipProtocol"),
                "fromPort": rule.get("fromPort"),
                "toPort": rule.get("toPort"),
                "cidr": rule.get("cidrIpv4") or rule.get("cidrIpv6"),
            }
            for rule in self.params.get("rules") or []
            if isinstance(rule, Mapping) and not rule.get("isEgress")
        ] or [rule for rule in self.params.get("permissions") or [] if isinstance(rule, Mapping)]
        public = public_cidrs(
            {
                "ipPermissions": [
                    {
                        "ipProtocol": rule["ipProtocol"],
                        "fromPort": rule["fromPort"],
                        "toPort": rule["toPort"],
                        "ipRanges": [{"cidrIp": rule["cidr"]}] if ":" not in str(rule["cidr"]) else [],
                        "ipv6Ranges": [{"cidrIpv6": rule["cidr"]}] if ":" in str(rule["cidr"]) else [],
                    }
                    for rule in added
                ]
            }
        )
        ports = self.params.get("ports") or list(ADMIN_AND_DATABASE_PORTS)
        return {_rule_key(r["ipProtocol"], r["fromPort"], r["toPort"], r["cidr"]) for r in open_to_ports(public, ports)}

    def _matching(self) -> list[dict[str, Any]]:
        targets = self._targets()
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
    "Account ids to take the share back from, besides everyone (`all`); default: everyone only.",
    required=False,
    default=[],
)


class _SharedPermission(Action):
    """Shared by snapshots and images: who may use it is a list of groups and account ids."""

    resource_param: str
    eventually_consistent = True  # the EC2 API is eventually consistent, as AWS documents

    def _entries(self) -> list[dict[str, str]]:
        """The resource's permission entries, each `{"Group": ...}` or `{"UserId": ...}`."""
        raise NotImplementedError

    def _describe(self) -> tuple[list[str], list[str]]:
        entries = self._entries()
        return [e["Group"] for e in entries if "Group" in e], [e["UserId"] for e in entries if "UserId" in e]

    def _modify(self, operation: str, groups: list[str], users: list[str]) -> None:
        raise NotImplementedError

    def _unwanted(self) -> set[str]:
        return {"all", *(str(account) for account in self.params.get("accounts") or [])}

    def snapshot(self) -> dict[str, Any]:
        groups, users = self._describe()
        return {
            self.resource_param.capitalize(): self.params[self.resource_param],
            "Groups": sorted(groups),
            "UserIds": sorted(users),
        }

    def check(self, state: Mapping[str, Any]) -> bool:
        return not (set(state["Groups"]) | set(state["UserIds"])) & self._unwanted()

    def apply(self, state: Mapping[str, Any]) -> None:
        unwanted = self._unwanted()
        self._modify(
            "remove", [g for g in state["Groups"] if g in unwanted], [u for u in state["UserIds"] if u in unwanted]
        )

    def restore(self, state: Mapping[str, Any]) -> None:
        groups, users = self._describe()
        self._modify(
            "add", [g for g in state["Groups"] if g not in groups], [u for u in state["UserIds"] if u not in users]
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
    permissions = ("ec2:DescribeSnapshotAttribute", "ec2:ModifySnapshotAttribute")
    parameters = (Parameter("snapshot", "string", "Id of the EBS snapshot."), _ACCOUNTS)
    resource_param = "snapshot"

    def _entries(self) -> list[dict[str, str]]:
        response = self.client.describe_snapshot_attribute(
            SnapshotId=self.params["snapshot"], Attribute="createVolumePermission"
        )
        entries: list[dict[str, str]] = response.get("CreateVolumePermissions", [])
        return entries

    def _modify(self, operation: str, groups: list[str], users: list[str]) -> None:
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
    """Stop sharing an AMI with everyone (and, if named, with `accounts`).

    A public image lets any AWS account launch it, and read what it holds. Other shares
    stay. Undo shares it again as before.

    Example:

        steps:
          - action: ec2.remove_public_image_permission
            with: {image: requestParameters.imageId}
    """

    name = "ec2.remove_public_image_permission"
    service = "ec2"
    permissions = ("ec2:DescribeImageAttribute", "ec2:ModifyImageAttribute")
    parameters = (Parameter("image", "string", "Id of the AMI."), _ACCOUNTS)
    resource_param = "image"

    def _entries(self) -> list[dict[str, str]]:
        response = self.client.describe_image_attribute(ImageId=self.params["image"], Attribute="launchPermission")
        entries: list[dict[str, str]] = response.get("LaunchPermissions", [])
        return entries

    def _modify(self, operation: str, groups: list[str], users: list[str]) -> None:
        entries = [{"Group": g} for g in groups] + [{"UserId": u} for u in users]
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
    permissions = (
        "ec2:DescribeFlowLogs",
        "ec2:CreateFlowLogs",
        "ec2:DeleteFlowLogs",
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
        "iam:PassRole",
    )
    passes_role_to = "vpc-flow-logs.amazonaws.com"
    parameters = (Parameter("flow_logs", "array", "Ids of the deleted flow logs (flow_log_ids(requestParameters))."),)

    @classmethod
    def memory_keys(cls, params: Mapping[str, Any], context: ActionContext) -> list[str]:
        if context.memory is None or context.region is None:
            return []
        return [flowlogs.memory_key(context.account or "", context.region, f) for f in params.get("flow_logs") or []]

    @classmethod
    def recall(cls, params: Mapping[str, Any], context: ActionContext) -> dict[str, Any] | None:
        found = {}
        for flow_log, key in zip(params.get("flow_logs") or [], cls.memory_keys(params, context), strict=False):
            config = memory.configuration(context.memory.recall(key))
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
        current = flowlogs.describe_all(self.client)
        present = {flowlogs.identity(config): flow_log for flow_log, config in current.items()}
        return {
            "Missing": sorted(f for f, config in configs.items() if flowlogs.identity(config) not in present),
            "Present": sorted(
                present[flowlogs.identity(c)] for c in configs.values() if flowlogs.identity(c) in present
            ),
        }

    def check(self, state: Mapping[str, Any]) -> bool:
        return not state["Missing"]

    def apply(self, state: Mapping[str, Any]) -> None:
        configs = self._configs()
        for flow_log in state["Missing"]:
            flowlogs.create(self.client, configs[flow_log])
        self.note = f"re-created {len(state['Missing'])} flow log(s) from their remembered configuration"

    def restore(self, state: Mapping[str, Any]) -> None:
        created = sorted(set(self.snapshot()["Present"]) - set(state["Present"]))
        if created:
            self.client.delete_flow_logs(FlowLogIds=created)
