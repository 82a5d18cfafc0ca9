"""JMESPath over CloudTrail records, with the AWS quirks handled once in domain functions.

Every value a playbook takes from an event is a JMESPath expression. Expressions are
compiled and checked when a playbook is loaded: syntax, known functions and their
argument counts, and top-level field names (a typo such as `requestParamters`, or the
bare word `true`, which JMESPath reads as a field, would otherwise quietly be null).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath import functions

from chalicelib.domain_functions import (
    acting_user,
    admin_and_database_ports,
    external_principals,
    flow_log_ids,
    management_event_gaps,
    open_to_ports,
    public_acl_grants,
    public_cidrs,
    public_statements,
    shared_with,
    wide_cidrs,
)

# Top-level fields of a CloudTrail record (CloudTrail record contents, user guide).
CLOUDTRAIL_FIELDS = frozenset(
    {
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "errorCode",
        "errorMessage",
        "requestParameters",
        "responseElements",
        "additionalEventData",
        "requestID",
        "eventID",
        "readOnly",
        "resources",
        "eventType",
        "apiVersion",
        "managementEvent",
        "recipientAccountId",
        "sharedEventID",
        "vpcEndpointId",
        "vpcEndpointAccountId",
        "eventCategory",
        "tlsDetails",
        "sessionCredentialFromConsole",
        "edgeDeviceDetails",
        "serviceEventDetails",
        "insightDetails",
        "addendum",
        "annotation",
    }
)


class ExpressionError(ValueError):
    """A JMESPath expression that cannot be used; the message says why and what to write."""


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
        return wide_cidrs(request, int(max_prefix))

    @functions.signature({"types": ["object", "string", "null"]})
    def _func_public_statements(self, policy: Any) -> list[Any]:
        return public_statements(policy)

    @functions.signature({"types": ["object", "null"]})
    def _func_management_event_gaps(self, request: Any) -> list[str]:
        return management_event_gaps(request)

    @functions.signature({"types": ["array", "null"]}, {"types": ["array"]})
    def _func_open_to_ports(self, rules: Any, ports: list[Any]) -> list[Any]:
        return open_to_ports(rules, ports)

    @functions.signature({"types": ["object", "null"]})
    def _func_shared_with(self, request: Any) -> list[str]:
        return shared_with(request)

    @functions.signature({"types": ["object", "string", "null"]}, {"types": ["array"]})
    def _func_external_principals(self, policy: Any, trusted: list[Any]) -> list[str]:
        return external_principals(policy, trusted)

    @functions.signature()
    def _func_admin_and_database_ports(self) -> list[int]:
        return admin_and_database_ports()

    @functions.signature({"types": ["object", "null"]})
    def _func_acting_user(self, identity: Any) -> str | None:
        return acting_user(identity)

    @functions.signature({"types": ["object", "null"]})
    def _func_flow_log_ids(self, request: Any) -> list[str]:
        return flow_log_ids(request)


_FUNCTIONS = DomainFunctions()
_OPTIONS = jmespath.Options(custom_functions=_FUNCTIONS)


class Expression:
    """A compiled JMESPath expression, evaluated with the domain functions available."""

    __slots__ = ("_parsed", "text")

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
    if kind in ("subexpression", "index_expression", "projection", "value_projection", "filter_projection", "pipe"):
        if kind in ("subexpression", "index_expression") and children[0]["type"] == "not_expression":
            # `!a.b` parses as `(!a).b`: a boolean's field, always null, so never true.
            raise ExpressionError(
                "JMESPath reads '!' before a path as applying to its first name only "
                "(`!a.b` is `(!a).b`, always null); write the negation around the whole path: `!(a.b)`"
            )
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
            f"'{name}' is read by JMESPath as a field name, not a value; write the literal as `{name}` (with backticks)"
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
