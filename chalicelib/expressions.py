"""JMESPath over CloudTrail records, with the AWS quirks handled once in domain functions.

Every value a playbook takes from an event is a JMESPath expression. Expressions are
compiled and checked when a playbook is loaded: syntax, known functions and their
argument counts, and top-level field names (a typo such as `requestParamters`, or the
bare word `true`, which JMESPath reads as a field, would otherwise quietly be null).

Domain functions (documented in docs/playbooks.md):

- `public_acl_grants(requestParameters)`: the grants an S3 PutBucketAcl/PutObjectAcl
  request gives to everyone (AllUsers) or any AWS account (AuthenticatedUsers), whether
  through a canned ACL (`x-amz-acl`, a string or a one-item list), grant headers
  (`x-amz-grant-read: uri="..."`), or an AccessControlPolicy whose `Grant` is an object
  (one grant) or a list.
- `public_cidrs(requestParameters)`: the ranges an EC2 ingress request opens to the
  whole internet (prefix length 0: `0.0.0.0/0`, `::/0`, whatever the base address),
  from `ipPermissions.items[].ipRanges/ipv6Ranges` and from the legacy top-level
  `cidrIp`, with ports as numbers even where the record has them as strings.
- `wide_cidrs(requestParameters, prefix_length)`: the same for ranges at least as wide
  as `/prefix_length` (catches `0.0.0.0/1` + `128.0.0.0/1` and other splits).
- `public_statements(policy)`: the Allow statements of a resource policy (object or JSON
  text) that any principal may use: Principal `"*"`, `{"AWS": "*"}` or a list holding
  `"*"`, unless a condition restricts the caller to fixed values of `aws:SourceVpce`,
  `aws:SourceVpc`, `aws:SourceIp`, `aws:PrincipalOrgID`, `aws:PrincipalAccount`,
  `aws:SourceAccount`, `aws:SourceArn`, `aws:SourceOwner` or `aws:PrincipalArn`.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
from typing import Any, Iterator, Mapping

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath import functions

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

# Condition keys that pin who may use a statement; with a fixed value they make it non-public
# (the same keys S3 Block Public Access treats as restricting, see docs/playbooks.md).
_RESTRICTING_KEYS = {
    "aws:sourcevpce",
    "aws:sourcevpc",
    "aws:sourceip",
    "aws:principalorgid",
    "aws:principalaccount",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceowner",
    "aws:principalarn",
}
_RESTRICTING_OPERATORS = {
    "stringequals",
    "stringequalsignorecase",
    "stringlike",
    "arnequals",
    "arnlike",
    "ipaddress",
    "forallvalues:stringequals",
    "forallvalues:stringlike",
}

# Top-level fields of a CloudTrail record (CloudTrail record contents, user guide).
CLOUDTRAIL_FIELDS = frozenset(
    {
        "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName",
        "awsRegion", "sourceIPAddress", "userAgent", "errorCode", "errorMessage",
        "requestParameters", "responseElements", "additionalEventData", "requestID",
        "eventID", "readOnly", "resources", "eventType", "apiVersion", "managementEvent",
        "recipientAccountId", "sharedEventID", "vpcEndpointId", "vpcEndpointAccountId",
        "eventCategory", "tlsDetails", "sessionCredentialFromConsole", "edgeDeviceDetails",
        "serviceEventDetails", "insightDetails", "addendum", "annotation",
    }
)


class ExpressionError(ValueError):
    """A JMESPath expression that cannot be used; the message says why and what to write."""


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
    """See the module docstring; each grant is `{"grantee": ..., "permission": ...}`."""
    if not isinstance(request, Mapping):
        return []
    grants: list[tuple[str, str]] = []
    canned = _first_text(request.get("x-amz-acl"))
    grants.extend(_CANNED_PUBLIC_ACLS.get((canned or "").strip().lower(), []))
    for header, permission in _GRANT_HEADERS.items():
        for value in _as_list(request.get(header)):
            if isinstance(value, str):
                grants.extend(
                    (group, permission) for uri, group in PUBLIC_GROUPS.items() if uri in value
                )
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


def _port(value: Any) -> int | None:
    """Ports arrive as numbers, and in some records as numeric strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _is_public_cidr(cidr: Any, max_prefix: int) -> bool:
    if not isinstance(cidr, str):
        return False
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return False
    return network.prefixlen <= max_prefix


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
    """See the module docstring; each entry is `{cidr, ipProtocol, fromPort, toPort}`."""
    if not isinstance(request, Mapping):
        return []
    return [rule for rule in _ingress_ranges(request) if _is_public_cidr(rule["cidr"], max_prefix)]


def _parse_policy(policy: Any) -> Any:
    if isinstance(policy, str):
        try:
            return json.loads(policy)
        except ValueError:
            return None
    return policy


def _principal_is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, list):
        return any(_principal_is_everyone(item) for item in principal)
    if isinstance(principal, Mapping):
        return any("*" in _as_list(principal.get(kind)) for kind in ("AWS", "CanonicalUser"))
    return False


def _condition_restricts_caller(condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return False
    for operator, clauses in condition.items():
        if str(operator).lower() not in _RESTRICTING_OPERATORS or not isinstance(clauses, Mapping):
            continue
        for key, values in clauses.items():
            key = str(key).lower()
            values = _as_list(values)
            if key not in _RESTRICTING_KEYS or not values:
                continue
            if key == "aws:sourceip":
                if not any(_is_public_cidr(value, 0) for value in values):
                    return True
            elif all(isinstance(value, str) and value.strip("*?") == value for value in values):
                return True
    return False


def public_statements(policy: Any) -> list[Any]:
    """See the module docstring; returns the statements as written in the policy."""
    document = _parse_policy(policy)
    if not isinstance(document, Mapping):
        return []
    found = []
    for statement in _as_list(document.get("Statement")):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        everyone = _principal_is_everyone(statement.get("Principal")) or "NotPrincipal" in statement
        if everyone and not _condition_restricts_caller(statement.get("Condition")):
            found.append(statement)
    return found


class DomainFunctions(functions.Functions):
    """The domain functions, registered under the names playbooks call them by."""

    @functions.signature({"types": ["object", "null"]})
    def _func_public_acl_grants(self, request: Any) -> list[dict[str, str]]:
        return public_acl_grants(request)

    @functions.signature({"types": ["object", "null"]})
    def _func_public_cidrs(self, request: Any) -> list[dict[str, Any]]:
        return public_cidrs(request)

    @functions.signature({"types": ["object", "null"]}, {"types": ["number"]})
    def _func_wide_cidrs(self, request: Any, max_prefix: float) -> list[dict[str, Any]]:
        return public_cidrs(request, int(max_prefix))

    @functions.signature({"types": ["object", "string", "null"]})
    def _func_public_statements(self, policy: Any) -> list[Any]:
        return public_statements(policy)


_FUNCTIONS = DomainFunctions()
_OPTIONS = jmespath.Options(custom_functions=_FUNCTIONS)


class Expression:
    """A compiled JMESPath expression, evaluated with the domain functions available."""

    __slots__ = ("text", "_parsed")

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._parsed = jmespath.compile(text)
        except jmespath_errors.JMESPathError as error:
            raise ExpressionError(_syntax_problem(text, error)) from None
        _check_tree(self._parsed.parsed)

    def search(self, data: Any) -> Any:
        try:
            return self._parsed.search(data, options=_OPTIONS)
        except jmespath_errors.JMESPathError as error:
            # Type errors only show on some records (a function given a number, say).
            raise ExpressionError(f"{self.text!r} cannot be evaluated on this event: {error}") from None

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def _syntax_problem(text: str, error: jmespath_errors.JMESPathError) -> str:
    position = getattr(error, "lex_position", None)
    where = f" at column {position + 1}" if isinstance(position, int) else ""
    reason = str(error).splitlines()[0].rstrip(":")
    for prefix in ("Invalid jmespath expression: ", "Bad jmespath expression: "):
        reason = reason.removeprefix(prefix)
    return f"JMESPath syntax error{where} in {text!r}: {reason}"


def _check_tree(node: Mapping[str, Any], at_root: bool = True) -> None:
    """Check function names and arity, and the field names read from the record itself."""
    kind = node["type"]
    children = node.get("children", [])
    if kind == "field":
        if at_root:
            _check_root_field(node["value"])
        return
    if kind == "function_expression":
        _check_function(node["value"], len(children))
        for child in children:
            _check_tree(child, at_root and child["type"] != "expref")
        return
    if kind in ("subexpression", "index_expression", "projection", "value_projection",
                "filter_projection", "pipe"):
        # The left side is evaluated where the expression stands; the rest on its result.
        _check_tree(children[0], at_root)
        for child in children[1:]:
            _check_tree(child, False)
        return
    if kind == "expref":
        _check_tree(children[0], False)
        return
    for child in children:
        _check_tree(child, at_root)


def _check_root_field(name: str) -> None:
    if name in CLOUDTRAIL_FIELDS:
        return
    if name in ("true", "false", "null"):
        raise ExpressionError(
            f"'{name}' is read by JMESPath as a field name, not a value; "
            f"write the literal as `{name}` (with backticks)"
        )
    close = difflib.get_close_matches(name, CLOUDTRAIL_FIELDS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ExpressionError(f"'{name}' is not a field of a CloudTrail record{hint}")


def _check_function(name: str, arguments: int) -> None:
    entry = _FUNCTIONS.FUNCTION_TABLE.get(name)
    if entry is None:
        known = sorted(_FUNCTIONS.FUNCTION_TABLE)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]}()?" if close else f"known functions: {', '.join(known)}"
        raise ExpressionError(f"unknown function {name}(); {hint}")
    signature = entry["signature"]
    variadic = bool(signature) and signature[-1].get("variadic", False)
    required = len(signature)
    if arguments < required or (not variadic and arguments > required):
        expected = f"at least {required}" if variadic else str(required)
        raise ExpressionError(f"{name}() takes {expected} argument(s), got {arguments}")
