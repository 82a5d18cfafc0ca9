"""The AWS quirks playbooks should never have to know, handled once.

AWS writes the same thing in several shapes, and these functions read them all. They are
available in every playbook expression (registered in `expressions`); each function's
docstring is its documentation, and docs/playbooks.md is generated from them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.named_lists import TRAIL_BUCKETS, TRAIL_KEYS, TRAIL_LOG_GROUPS, TRAIL_ROLES, NamedLists

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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _first_text(value: Any) -> str | None:
    """CloudTrail writes some S3 headers as a one-item list, others as a plain string."""
    for item in _as_list(value):
        if isinstance(item, str):
            return item
    return None


def _header_name(key: Any) -> str:
    """A header as CloudTrail or a publisher wrote its name: `x-amz-grant-read`, or with
    underscores (`x_amz_grant_read`, as some tools normalise it), in any case."""
    return str(key).strip().lower().replace("_", "-")


def _grant_headers(request: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The `x-amz-grant-*` headers of an S3 request: at the top level of requestParameters,
    and nested under `accessControlList`, where CloudTrail writes them for some calls."""
    nested = [value for key, value in request.items() if _header_name(key) == "accesscontrollist"]
    for headers in [request, *nested]:
        if not isinstance(headers, Mapping):
            continue
        for key, value in headers.items():
            permission = _GRANT_HEADERS.get(_header_name(key))
            if permission is not None:
                yield permission, value


def public_acl_grants(request: Any) -> list[dict[str, str]]:
    """The grants an S3 PutBucketAcl/PutObjectAcl/CreateBucket request gives to everyone
    (AllUsers) or any AWS account (AuthenticatedUsers), whether through a canned ACL
    (`x-amz-acl`, a string or a one-item list), grant headers (`x-amz-grant-read:
    uri="..."`, at the top level or nested under `accessControlList`, names with `-` or
    `_`), or an AccessControlPolicy whose `Grant` is an object (one grant) or a list. Each
    grant is `{"grantee": ..., "permission": ...}`.
    """
    if not isinstance(request, Mapping):
        return []
    grants: list[tuple[str, str]] = []
    canned = _first_text(request.get("x-amz-acl"))
    grants.extend(_CANNED_PUBLIC_ACLS.get((canned or "").strip().lower(), []))
    for permission, values in _grant_headers(request):
        for value in _as_list(values):
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


BLOCK_PUBLIC_ACCESS_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def public_access_block_off(request: Any) -> list[str]:
    """The S3 Block Public Access settings a PutBucketPublicAccessBlock or
    PutAccountPublicAccessBlock request leaves off, by name (`BlockPublicAcls`,
    `IgnorePublicAcls`, `BlockPublicPolicy`, `RestrictPublicBuckets`). CloudTrail writes the
    configuration directly under requestParameters (`PublicAccessBlockConfiguration`, with
    an `xmlns`), and some records nest it under `PublicAccessBlock`; values are booleans or
    the strings "true"/"false". The call replaces the whole configuration, so a setting it
    does not name is off. A request with no configuration at all names nothing: empty.
    """
    if not isinstance(request, Mapping):
        return []
    configuration = request.get("PublicAccessBlockConfiguration")
    nested = request.get("PublicAccessBlock")
    if not isinstance(configuration, Mapping) and isinstance(nested, Mapping):
        configuration = nested.get("PublicAccessBlockConfiguration")
    if not isinstance(configuration, Mapping):
        return []
    return [name for name in BLOCK_PUBLIC_ACCESS_SETTINGS if not _is_true(configuration.get(name))]


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def lifecycle_expirations(request: Any) -> list[dict[str, Any]]:
    """The rules of a PutBucketLifecycle request (CloudTrail records PutBucketLifecycleConfiguration
    under that name) that delete current objects: enabled rules with an `Expiration`, each
    `{id, prefix, days}` (a rule that expires objects on a `Date` counts as 0 days).
    `LifecycleConfiguration.Rule` is an object for one rule and a list for several; the prefix
    is `Filter.Prefix`, `Filter.And.Prefix` or the older top-level `Prefix`, null for the
    whole bucket. Days arrive as numbers or numeric strings.
    """
    if not isinstance(request, Mapping):
        return []
    configuration = request.get("LifecycleConfiguration")
    rules = configuration.get("Rule") if isinstance(configuration, Mapping) else None
    found = []
    for rule in _as_list(rules):
        if not isinstance(rule, Mapping) or str(rule.get("Status", "")).lower() != "enabled":
            continue
        expiration = rule.get("Expiration")
        if not isinstance(expiration, Mapping):
            continue
        days = 0 if expiration.get("Date") else _port(expiration.get("Days"))
        if days is None:
            continue
        rule_filter = _mapping(rule.get("Filter"))
        prefix = rule_filter.get("Prefix", _mapping(rule_filter.get("And")).get("Prefix", rule.get("Prefix")))
        found.append({"id": rule.get("ID"), "prefix": prefix or None, "days": days})
    return found


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
    modified = request.get("ModifySecurityGroupRulesRequest")
    rules = modified.get("SecurityGroupRule") if isinstance(modified, Mapping) else None
    for entry in _as_list(rules):
        changed = entry.get("SecurityGroupRule") if isinstance(entry, Mapping) else None
        if not isinstance(changed, Mapping):
            continue
        for cidr_key in ("CidrIpv4", "CidrIpv6"):
            if changed.get(cidr_key) is not None:
                yield {
                    "ipProtocol": str(changed.get("IpProtocol", "-1")),
                    "fromPort": _port(changed.get("FromPort")),
                    "toPort": _port(changed.get("ToPort")),
                    "cidr": changed.get(cidr_key),
                }


def public_cidrs(request: Any, max_prefix: int = 0) -> list[dict[str, Any]]:
    """The ranges an EC2 ingress request opens to the whole internet (prefix length 0:
    `0.0.0.0/0`, `::/0`, whatever the base address), from
    `ipPermissions.items[].ipRanges/ipv6Ranges` and the legacy top-level `cidrIp` of
    AuthorizeSecurityGroupIngress, and from the XML-shaped
    `ModifySecurityGroupRulesRequest.SecurityGroupRule` (an object for one rule, a list for
    several: `{SecurityGroupRule: {IpProtocol, FromPort, ToPort, CidrIpv4|CidrIpv6}}`), with
    ports as numbers even where the record has them as strings. Each entry is
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


_KINDS = ("read", "write")


@dataclass(frozen=True)
class _Selection:
    """What one selector records of management events: which kinds (read-only calls,
    writes), and from which sources: all but `sources`, or (`only`) only `sources`."""

    kinds: frozenset[str]
    sources: frozenset[str] = frozenset()
    only: bool = False

    def misses(self, source: str) -> bool:
        return (source not in self.sources) if self.only else (source in self.sources)


def _basic_selections(selectors: list[Any]) -> list[_Selection]:
    kinds = {"All": {"read", "write"}, "ReadOnly": {"read"}, "WriteOnly": {"write"}}
    return [
        _Selection(
            frozenset(kinds.get(str(_field(s, "readWriteType", "All")), set())),
            frozenset(str(source) for source in _as_list(_field(s, "excludeManagementEventSources"))),
        )
        for s in selectors
        if isinstance(s, Mapping) and _field(s, "includeManagementEvents", True) is not False
    ]


def _values(field: Mapping[str, Any], operator: str) -> set[str]:
    return {str(value).lower() for value in _as_list(_field(field, operator))}


_READ_ONLY_VALUE = {"read": "true", "write": "false"}


def _advanced_selections(selectors: list[Any]) -> list[_Selection]:
    found = []
    for selector in selectors:
        if not isinstance(selector, Mapping):
            continue
        fields = {
            str(_field(f, "field")): f for f in _as_list(_field(selector, "fieldSelectors")) if isinstance(f, Mapping)
        }
        category = fields.get("eventCategory")
        if category is None or "management" not in _values(category, "equals"):
            continue
        kinds = set(_KINDS)
        read_only = fields.get("readOnly")
        if read_only is not None:
            equals, not_equals = _values(read_only, "equals"), _values(read_only, "notEquals")
            kinds = {
                k
                for k in kinds
                if (not equals or _READ_ONLY_VALUE[k] in equals) and _READ_ONLY_VALUE[k] not in not_equals
            }
        source = fields.get("eventSource")
        if source is not None and _field(source, "equals") is not None:
            found.append(
                _Selection(frozenset(kinds), frozenset(str(v) for v in _as_list(_field(source, "equals"))), True)
            )
        elif source is not None:
            found.append(_Selection(frozenset(kinds), frozenset(str(v) for v in _as_list(_field(source, "notEquals")))))
        else:
            found.append(_Selection(frozenset(kinds)))
    return found


def _selections(request: Any) -> list[_Selection] | None:
    """The request's management-event selections, or None for a request that sets no selectors."""
    if not isinstance(request, Mapping):
        return None
    advanced = _field(request, "advancedEventSelectors")
    if isinstance(advanced, list) and advanced:
        return _advanced_selections(advanced)
    basic = _field(request, "eventSelectors")
    return _basic_selections(basic) if isinstance(basic, list) else None


@dataclass(frozen=True)
class _Recorded:
    """One kind of management event, as all the selectors together record it."""

    at_all: bool
    missed: tuple[str, ...] = ()
    """Sources left out: each selector that records the kind misses them."""
    only: tuple[str, ...] = ()
    """When every selector that records the kind names its sources: those, and no other."""


def _recorded(selections: list[_Selection]) -> dict[str, _Recorded]:
    found = {}
    for kind in _KINDS:
        covering = [s for s in selections if kind in s.kinds]
        if not covering:
            found[kind] = _Recorded(False)
        elif all(s.only for s in covering):
            found[kind] = _Recorded(True, only=tuple(sorted(set().union(*(s.sources for s in covering)))))
        else:
            candidates = set().union(*(s.sources for s in covering if not s.only))
            found[kind] = _Recorded(True, tuple(sorted(c for c in candidates if all(s.misses(c) for s in covering))))
    return found


def management_events_recorded(request: Any) -> dict[str, bool]:
    """What a PutEventSelectors request keeps recording of management events: `read` and
    `write` (read-only calls, and the others: each true when some selector records it, for
    some sources at least) and `allSources` (no service's events left out), from basic
    `eventSelectors` (readWriteType, includeManagementEvents, excludeManagementEventSources)
    or `advancedEventSelectors` (eventCategory, readOnly, eventSource). Selectors add up: a
    readOnly=true selector and a readOnly=false one record everything. A request that sets
    no selectors changes nothing: all true.
    """
    selections = _selections(request)
    if selections is None:
        return {"read": True, "write": True, "allSources": True}
    recorded = _recorded(selections)
    return {
        "read": recorded["read"].at_all,
        "write": recorded["write"].at_all,
        "allSources": all(not (r.missed or r.only) for r in recorded.values() if r.at_all),
    }


def management_event_gaps(request: Any) -> list[str]:
    """What a PutEventSelectors request stops a trail from recording among management
    events, one sentence each (none recorded, no read-only or no write calls, some
    services' events left out), as `management_events_recorded()` judges the selectors
    together; empty when every management event is still recorded.
    """
    selections = _selections(request)
    if selections is None:
        return []
    recorded = _recorded(selections)
    if not any(r.at_all for r in recorded.values()):
        return ["management events are not recorded"]
    names = {"read": "read-only ", "write": "write "}
    gaps = [f"{names[kind]}management events are not recorded" for kind, r in recorded.items() if not r.at_all]
    partial = {kind: r for kind, r in recorded.items() if r.at_all and (r.missed or r.only)}
    if len(partial) == 2 and partial["read"] == partial["write"]:
        partial, names = {"read": partial["read"]}, {"read": ""}
    for kind, r in partial.items():
        if r.only:
            gaps.append(f"only {names[kind]}management events from {', '.join(r.only)} are recorded")
        else:
            gaps.append(f"{names[kind]}management events from {', '.join(r.missed)} are not recorded")
    return gaps


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


_SHARE_KEYS = ("userId", "organizationArn", "organizationalUnitArn")


def shared_with(request: Any) -> list[str]:
    """Whom an EC2 ModifySnapshotAttribute / ModifyImageAttribute request adds, from
    `createVolumePermission.add.items` or `launchPermission.add.items`: account ids
    (`userId`), `all` for everyone (`group`), and for images the ARNs of AWS Organizations
    and organizational units (`organizationArn`, `organizationalUnitArn`).
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
            found.extend(item[key] for key in _SHARE_KEYS if isinstance(item.get(key), str))
    return list(dict.fromkeys(found))


def organization_of(arn: Any) -> str | None:
    """The AWS Organizations id in an organization's or an organizational unit's ARN
    (`arn:aws:organizations::111122223333:organization/o-a1b2c3d4e5`, `...:ou/o-.../ou-...`)."""
    if not isinstance(arn, str) or not arn.startswith("arn:") or arn.count(":") < 5:
        return None
    resource = arn.split(":", 5)[5]
    kind, _, rest = resource.partition("/")
    if kind not in ("organization", "ou"):
        return None
    return rest.split("/", 1)[0] or None


def shared_outside(request: Any, trusted_accounts: Any, trusted_organizations: Any) -> list[str]:
    """Of `shared_with()`, the shares outside the organization: accounts not in
    `trusted_accounts`, organizations and organizational units of an organization not in
    `trusted_organizations`; `all` (everyone) is left to the playbooks that answer a public
    share. Pass `named_list('trusted_accounts')` and `named_list('trusted_organizations')`.
    """
    accounts = {a for a in _as_list(trusted_accounts) if isinstance(a, str)}
    organizations = {o for o in _as_list(trusted_organizations) if isinstance(o, str)}
    return [
        share
        for share in shared_with(request)
        if share != "all"
        and share not in accounts
        and (not share.startswith("arn:") or organization_of(share) not in organizations)
    ]


def flow_log_ids(request: Any) -> list[str]:
    """The flow log ids of a DeleteFlowLogs request, from the XML-shaped
    `DeleteFlowLogsRequest.FlowLogId` CloudTrail writes today (`{"content": "fl-...",
    "tag": 1}`, an object for one id, a list for several), from `flowLogIds`, or from the
    older flat `flowLogId` list. Empty when the request names none: a plan that needs the
    ids then fails, rather than restore nothing and call that safe.
    """
    if not isinstance(request, Mapping):
        return []
    ids = request.get("flowLogIds") or request.get("FlowLogIds") or request.get("flowLogId")
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


def arn_account(value: Any) -> str | None:
    """The account id in an ARN (`arn:aws:iam::111122223333:root` gives 111122223333), or the
    value itself when it is an account id; null for anything else (a service principal such
    as `ecr.us-west-2.amazonaws.com`, a principal id)."""
    if not isinstance(value, str):
        return None
    if value.isascii() and value.isdigit() and len(value) == 12:
        return value
    parts = value.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[4].isascii() and parts[4].isdigit():
        return parts[4]
    return None


def caller_is_user(identity: Any, user_name: Any) -> bool:
    """Whether AWS asserts that the caller is the IAM user named `user_name`: an `IAMUser`
    identity whose `userName` is that name. Anyone else is another principal acting on
    that user: the root user, a federated user, a service, and a role session whatever its
    name (the session name is the caller's choice: `AssumeRole` with `RoleSessionName`
    set to the target user's name hides nothing). For "someone else's" access key or
    password: `requestParameters.userName && !caller_is_user(userIdentity, requestParameters.userName)`.
    """
    if not isinstance(identity, Mapping) or not isinstance(user_name, str) or not user_name:
        return False
    return identity.get("type") == "IAMUser" and identity.get("userName") == user_name


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


# -- the audit chain: which resource a call touches, as the trails depend on it ---------------


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _kms_key_arn(record: Mapping[str, Any], account: str, region: str) -> str | None:
    """The key a KMS call names: CloudTrail lists it in `resources`; else the request's keyId
    (an ARN, or an id in the call's account and region)."""
    for resource in _as_list(record.get("resources")):
        if isinstance(resource, Mapping) and resource.get("type") == "AWS::KMS::Key" and resource.get("ARN"):
            return str(resource["ARN"])
    key = _first_text(_mapping(record.get("requestParameters")).get("keyId"))
    if key is None or key.startswith("alias/"):
        return None
    return key if key.startswith("arn:") else f"arn:{_partition(region)}:kms:{region}:{account}:key/{key}"


def trail_link(record: Any, lists: NamedLists) -> str | None:
    """Which link of the audit chain the call's resource is: `bucket` (a bucket trails deliver
    to), `key` (a key they encrypt with), `log-group` (a CloudWatch Logs group they deliver to),
    `role` (the role they deliver with), or null. The named lists `trail_buckets`,
    `trail_keys`, `trail_log_groups` and `trail_roles` say which resources those are: what
    the stage's settings file names, and what trailguard remembers of every trail it saw (the
    trail's own configuration, read by the sweep and after each trail call), so that the
    bucket a trail wrote to yesterday is still its bucket when its policy is deleted today.
    Written `trail_link(@)`; a playbook's test sets the lists with `named_lists:`."""
    record = _mapping(record)
    request = _mapping(record.get("requestParameters"))
    source = record.get("eventSource")
    region = str(record.get("awsRegion") or "")
    account = str(record.get("recipientAccountId") or _mapping(record.get("userIdentity")).get("accountId") or "")
    if source == "s3.amazonaws.com":
        bucket = _first_text(request.get("bucketName"))
        return "bucket" if bucket and bucket in lists.get(TRAIL_BUCKETS) else None
    if source == "kms.amazonaws.com":
        key = _kms_key_arn(record, account, region)
        return "key" if key and key in lists.get(TRAIL_KEYS) else None
    if source == "logs.amazonaws.com":
        group = _first_text(request.get("logGroupName"))
        arn = f"arn:{_partition(region)}:logs:{region}:{account}:log-group:{group}"
        return "log-group" if group and arn in lists.get(TRAIL_LOG_GROUPS) else None
    if source == "iam.amazonaws.com":
        role = _first_text(request.get("roleName"))
        roles = [arn for arn in lists.get(TRAIL_ROLES) if arn.split(":")[4:5] == [account]]
        return "role" if role and any(arn.rsplit("/", 1)[-1] == role for arn in roles) else None
    return None


def _covers_bucket(values: list[str], bucket: str, prefix_match: bool = True) -> bool:
    """Whether S3 object ARNs (or prefixes) select a bucket's objects: `arn:aws:s3` (or
    `arn:aws:s3:::`) is every bucket; `arn:aws:s3:::bucket/...` the bucket (or part of it)."""
    for value in values:
        text = str(value).rstrip("/")
        if text.endswith(":s3") or text.endswith(":s3:::"):
            return True
        if ":s3:::" in text and text.split(":s3:::", 1)[1].split("/", 1)[0] == bucket:
            return True
    return False


def data_events_missed(request: Any, buckets: Any) -> list[str]:
    """The named buckets whose S3 data events a PutEventSelectors request no longer records:
    a bucket is recorded by a basic selector with a `dataResources` entry of type
    `AWS::S3::Object` whose values name it (or all buckets, `arn:aws:s3`), or by an advanced
    selector of `eventCategory` `Data` and `resources.type` `AWS::S3::Object` whose
    `resources.ARN` (`StartsWith`/`Equals`) names it, or that names no ARN (every bucket).
    A request that sets no selectors misses nothing. Written
    `data_events_missed(requestParameters, named_list('data_event_buckets'))`."""
    if not isinstance(request, Mapping) or not isinstance(buckets, list) or not buckets:
        return []
    covered: set[str] = set()
    advanced = _field(request, "advancedEventSelectors")
    basic = _field(request, "eventSelectors")
    if not (isinstance(advanced, list) and advanced) and not isinstance(basic, list):
        return []
    for selector in _as_list(basic) if not (isinstance(advanced, list) and advanced) else []:
        for resource in _as_list(_field(_mapping(selector), "dataResources")):
            resource = _mapping(resource)
            if _field(resource, "type") == "AWS::S3::Object":
                values = [str(v) for v in _as_list(_field(resource, "values"))]
                covered |= {b for b in buckets if _covers_bucket(values, str(b))}
    for selector in _as_list(advanced):
        fields = {
            str(_field(_mapping(f), "field")): _mapping(f)
            for f in _as_list(_field(_mapping(selector), "fieldSelectors"))
        }
        if _as_list(_field(fields.get("eventCategory", {}), "equals")) != ["Data"]:
            continue
        if "AWS::S3::Object" not in _as_list(_field(fields.get("resources.type", {}), "equals")):
            continue
        arn = fields.get("resources.ARN")
        if arn is None:
            covered |= {str(b) for b in buckets}
            continue
        values = [str(v) for key in ("startsWith", "equals") for v in _as_list(_field(arn, key))]
        covered |= {b for b in buckets if _covers_bucket(values, str(b))}
    return [str(b) for b in buckets if str(b) not in covered]


def actor_role(identity: Any) -> str | None:
    """The role whose session made the call, by name, as AWS asserts it (the session
    issuer of an `AssumedRole` identity); None for any other caller. For containing who
    called: `actor_role(userIdentity)` gives `iam.revoke_role_sessions` its role. The session
    name is never read: the caller chooses it."""
    if not isinstance(identity, Mapping) or identity.get("type") != "AssumedRole":
        return None
    issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
    if not isinstance(issuer, Mapping) or issuer.get("type") != "Role":
        return None
    name = issuer.get("userName")
    return name if isinstance(name, str) and name else None


def actor_user(identity: Any) -> str | None:
    """The IAM user who made the call, by name (an `IAMUser` identity's `userName`); None for
    any other caller (a role session, root, a federated user, a service)."""
    if not isinstance(identity, Mapping) or identity.get("type") != "IAMUser":
        return None
    name = identity.get("userName")
    return name if isinstance(name, str) and name else None


def actor_arn(identity: Any) -> str | None:
    """The ARN of who made the call, as a resource policy's `aws:PrincipalArn` holds it: the
    role (the session issuer's ARN, with its path) for an `AssumedRole` identity, the user's
    ARN for an `IAMUser`; None for any other caller. For denying the caller on a bucket or a
    key (`s3.deny_principal`, `kms.deny_principal`); never read from the session name."""
    if isinstance(identity, Mapping) and identity.get("type") == "IAMUser":
        arn = identity.get("arn")
        return arn if isinstance(arn, str) and ":user/" in arn else None
    if actor_role(identity) is None:
        return None
    arn = identity["sessionContext"]["sessionIssuer"].get("arn")
    return arn if isinstance(arn, str) and ":role/" in arn else None
