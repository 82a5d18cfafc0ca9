"""The AWS quirks playbooks should never have to know, handled once.

AWS writes the same thing in several shapes, and these functions read them all. They are
available in every playbook expression (registered in `expressions`); each function's
docstring is its documentation, and docs/playbooks.md is generated from them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
PUBLIC_GROUPS = {ALL_USERS: "AllUsers", AUTHENTICATED_USERS: "AuthenticatedUsers"}

_CANNED_PUBLIC_ACLS = {
    "public-read": [("AllUsers", "READ")],
    "public-read-write": [("AllUsers", "READ"), ("AllUsers", "WRITE")],
    "authenticated-read": [("AuthenticatedUsers", "READ")],
}
_GRANT_HEADERS = {
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
    "x-amz-grant-full-control": "FULL_CONTROL",
}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _first_text(value: Any) -> str | None:
    """CloudTrail writes some S3 headers as a one-item list, others as a plain string."""
    for item in _as_list(value):
        if isinstance(item, str):
            return item
    return None


def public_acl_grants(request: Any) -> list[dict[str, str]]:
    """The grants an S3 PutBucketAcl/PutObjectAcl request gives to everyone (AllUsers) or
    any AWS account (AuthenticatedUsers), whether through a canned ACL (`x-amz-acl`, a
    string or a one-item list), grant headers (`x-amz-grant-read: uri="..."`), or an
    AccessControlPolicy whose `Grant` is an object (one grant) or a list. Each grant is
    `{"grantee": ..., "permission": ...}`.
    """
    if not isinstance(request, Mapping):
        return []
    grants: list[tuple[str, str]] = []
    canned = _first_text(request.get("x-amz-acl"))
    grants.extend(_CANNED_PUBLIC_ACLS.get((canned or "").strip().lower(), []))
    for header, permission in _GRANT_HEADERS.items():
        for value in _as_list(request.get(header)):
            if isinstance(value, str):
                grants.extend((group, permission) for uri, group in PUBLIC_GROUPS.items() if uri in value)
    policy = request.get("AccessControlPolicy")
    acl = policy.get("AccessControlList") if isinstance(policy, Mapping) else None
    for grant in _as_list(acl.get("Grant") if isinstance(acl, Mapping) else None):
        if not isinstance(grant, Mapping):
            continue
        grantee = grant.get("Grantee")
        uri = grantee.get("URI") if isinstance(grantee, Mapping) else None
        if uri in PUBLIC_GROUPS:
            grants.append((PUBLIC_GROUPS[uri], str(grant.get("Permission"))))
    unique = dict.fromkeys(grants)
    return [{"grantee": grantee, "permission": permission} for grantee, permission in unique]


_PORT_TEXT = re.compile(r"-?[0-9]{1,6}")


def _port(value: Any) -> int | None:
    """Ports arrive as numbers, and in some records as numeric strings: ASCII digits only
    (`str.isdigit` accepts "²", which `int` refuses)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _PORT_TEXT.fullmatch(value.strip()):
        return int(value)
    return None


def _is_public_cidr(cidr: Any, max_prefix: int) -> bool:
    """At least as wide as /max_prefix, and not a private range (10.0.0.0/8 is not the internet)."""
    if not isinstance(cidr, str):
        return False
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return False
    return network.prefixlen <= max_prefix and not network.is_private


def _ingress_ranges(request: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    permissions = request.get("ipPermissions")
    items = permissions.get("items") if isinstance(permissions, Mapping) else permissions
    for permission in _as_list(items):
        if not isinstance(permission, Mapping):
            continue
        rule = {
            "ipProtocol": str(permission.get("ipProtocol", "-1")),
            "fromPort": _port(permission.get("fromPort")),
            "toPort": _port(permission.get("toPort")),
        }
        for ranges_key, cidr_key in (("ipRanges", "cidrIp"), ("ipv6Ranges", "cidrIpv6")):
            ranges = permission.get(ranges_key)
            for entry in _as_list(ranges.get("items") if isinstance(ranges, Mapping) else ranges):
                if isinstance(entry, Mapping):
                    yield {**rule, "cidr": entry.get(cidr_key)}
    for cidr_key in ("cidrIp", "cidrIpv6"):
        if request.get(cidr_key) is not None:
            yield {
                "ipProtocol": str(request.get("ipProtocol", "-1")),
                "fromPort": _port(request.get("fromPort")),
                "toPort": _port(request.get("toPort")),
                "cidr": request.get(cidr_key),
            }


def public_cidrs(request: Any, max_prefix: int = 0) -> list[dict[str, Any]]:
    """The ranges an EC2 ingress request opens to the whole internet (prefix length 0:
    `0.0.0.0/0`, `::/0`, whatever the base address), from
    `ipPermissions.items[].ipRanges/ipv6Ranges` and from the legacy top-level `cidrIp`,
    with ports as numbers even where the record has them as strings. Each entry is
    `{cidr, ipProtocol, fromPort, toPort}`.
    """
    if not isinstance(request, Mapping):
        return []
    return [rule for rule in _ingress_ranges(request) if _is_public_cidr(rule["cidr"], max_prefix)]


def _field(mapping: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """CloudTrail writes request fields camelCase (`readWriteType`); the API's own shape is
    PascalCase (`ReadWriteType`): accept both."""
    if name in mapping:
        return mapping[name]
    return mapping.get(name[0].upper() + name[1:], default)


def _basic_gaps(selectors: list[Any]) -> list[str]:
    management = [
        s for s in selectors if isinstance(s, dict) and _field(s, "includeManagementEvents", True) is not False
    ]
    if not management:
        return ["management events are not recorded"]
    gaps: list[str] = []
    kinds = {str(_field(s, "readWriteType", "All")) for s in management}
    if "All" not in kinds and kinds != {"ReadOnly", "WriteOnly"}:
        gaps.append(f"only {'/'.join(sorted(kinds))} management events are recorded")
    excluded = sorted(
        {str(source) for s in management for source in _as_list(_field(s, "excludeManagementEventSources"))}
    )
    if excluded:
        gaps.append("management events from " + ", ".join(excluded) + " are not recorded")
    return gaps


def _advanced_gaps(selectors: list[Any]) -> list[str]:
    management = []
    for selector in selectors:
        fields = {
            str(_field(f, "field")): f for f in _as_list(_field(selector, "fieldSelectors")) if isinstance(f, dict)
        }
        category = fields.get("eventCategory")
        if category is not None and "Management" in _as_list(_field(category, "equals")):
            management.append(fields)
    if not management:
        return ["management events are not recorded"]
    gaps: list[str] = []
    if all("readOnly" in fields for fields in management):
        kinds = sorted({str(v) for fields in management for v in _as_list(_field(fields["readOnly"], "equals"))})
        gaps.append(f"only management events with readOnly={'/'.join(kinds) or '?'} are recorded")
    excluded = sorted(
        {
            str(v)
            for fields in management
            if "eventSource" in fields
            for v in _as_list(_field(fields["eventSource"], "notEquals"))
        }
    )
    if excluded:
        gaps.append("management events from " + ", ".join(excluded) + " are not recorded")
    return gaps


def management_event_gaps(request: Any) -> list[str]:
    """What a PutEventSelectors request stops a trail from recording among management
    events (none recorded, only read-only or only write, sources excluded), one sentence
    each, from basic `eventSelectors` or `advancedEventSelectors`; empty when all
    management events are still recorded.
    """
    if not isinstance(request, dict):
        return []
    advanced = _field(request, "advancedEventSelectors")
    if isinstance(advanced, list) and advanced:
        return _advanced_gaps(advanced)
    basic = _field(request, "eventSelectors")
    if isinstance(basic, list):
        return _basic_gaps(basic)
    return []


def _covers(rule: Mapping[str, Any], port: int) -> bool:
    if str(rule.get("ipProtocol")) in ("-1", "all"):
        return True
    low, high = rule.get("fromPort"), rule.get("toPort")
    if low is None or high is None:
        return False
    if low == -1 and high == -1:  # icmp "all types": no port
        return False
    return low <= port <= high


def open_to_ports(rules: Any, ports: Any) -> list[Any]:
    """Of `public_cidrs()` entries, those that reach any of `ports` (a port range covering
    one, or every protocol: `-1`).
    """
    wanted = [p for p in (_port(port) for port in _as_list(ports)) if p is not None]
    return [rule for rule in _as_list(rules) if isinstance(rule, Mapping) and any(_covers(rule, p) for p in wanted)]


def shared_with(request: Any) -> list[str]:
    """Whom an EC2 ModifySnapshotAttribute / ModifyImageAttribute request adds: account
    ids, and `all` for everyone, from `createVolumePermission.add.items` or
    `launchPermission.add.items` (`userId`, `group`).
    """
    if not isinstance(request, Mapping):
        return []
    found: list[str] = []
    for attribute in ("createVolumePermission", "launchPermission"):
        permission = request.get(attribute)
        added = permission.get("add") if isinstance(permission, Mapping) else None
        items = added.get("items") if isinstance(added, Mapping) else added
        for item in _as_list(items):
            if not isinstance(item, Mapping):
                continue
            if item.get("group") == "all":
                found.append("all")
            elif isinstance(item.get("userId"), str):
                found.append(item["userId"])
    return list(dict.fromkeys(found))


def flow_log_ids(request: Any) -> list[str]:
    """The flow log ids of a DeleteFlowLogs request, from `flowLogIds` or from the
    XML-shaped `DeleteFlowLogsRequest.FlowLogId` CloudTrail writes
    (`{"content": "fl-...", "tag": 1}`, one or a list).
    """
    if not isinstance(request, Mapping):
        return []
    ids = request.get("flowLogIds") or request.get("FlowLogIds")
    if ids is None:
        wrapped = request.get("DeleteFlowLogsRequest")
        ids = wrapped.get("FlowLogId") if isinstance(wrapped, Mapping) else None
    found = []
    for item in _as_list(ids.get("items") if isinstance(ids, Mapping) and "items" in ids else ids):
        value = item.get("content") if isinstance(item, Mapping) else item
        if isinstance(value, str) and value:
            found.append(value)
    return found


ADMIN_AND_DATABASE_PORTS = (
    22,
    23,
    135,
    139,
    445,
    1433,
    1521,
    2049,
    2375,
    2376,
    3306,
    3389,
    5432,
    5601,
    5900,
    5984,
    6379,
    7000,
    7001,
    8020,
    9042,
    9200,
    9300,
    11211,
    27017,
    50070,
)


def acting_user(identity: Any) -> str | None:
    """The name of who made the call: an IAM user's name, an assumed-role session's name
    (for SSO, the person), `root` for the root user.
    """
    if not isinstance(identity, Mapping):
        return None
    kind = identity.get("type")
    if kind == "Root":
        return "root"
    if kind == "IAMUser" and isinstance(identity.get("userName"), str):
        return identity["userName"]
    arn = identity.get("arn")
    if isinstance(arn, str) and "/" in arn:
        return arn.rsplit("/", 1)[1]
    name = identity.get("userName")
    return name if isinstance(name, str) else None


def wide_cidrs(request: Any, prefix_length: int) -> list[dict[str, Any]]:
    """Like `public_cidrs()`, for ranges at least as wide as `/prefix_length` (0 to 128):
    catches `0.0.0.0/1` + `128.0.0.0/1` and other ways of opening the internet in pieces.
    Private ranges (10.0.0.0/8, fc00::/7...) are not the internet and are left out. Give
    `ec2.revoke_public_ingress` the same entries, so that it closes what the condition found.
    """
    return public_cidrs(request, prefix_length)


def admin_and_database_ports() -> list[int]:
    """The ports of remote administration and databases (22, 3389, 3306, 5432, 6379, 9200,
    27017, ...) that nothing should open to the internet.
    """
    return list(ADMIN_AND_DATABASE_PORTS)
