"""JMESPath over CloudTrail records, with the AWS quirks handled once in domain functions.

Every value a playbook takes from an event is a JMESPath expression. Expressions are
compiled and checked when a playbook is loaded: syntax, known functions and their
argument counts, the arguments that must be literals (a list's name in `named_list()`, a
prefix length), and top-level field names (a typo such as `requestParamters`, or the
bare word `true`, which JMESPath reads as a field, would otherwise quietly be null).
An expression is evaluated over the record with the organization's named lists of that
event (`named_lists`), which `named_list()` reads.
"""

from __future__ import annotations

import difflib
import inspect
import marshal
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath import functions

from chalicelib import named_lists
from chalicelib.aws import quirks, resource_policies
from chalicelib.aws.quirks import (
    admin_and_database_ports,
    arn_account,
    caller_is_user,
    data_events_missed,
    flow_log_ids,
    lifecycle_expirations,
    management_event_gaps,
    management_events_recorded,
    open_to_ports,
    public_access_block_off,
    public_acl_grants,
    public_cidrs,
    shared_outside,
    shared_with,
    trail_link,
    wide_cidrs,
)
from chalicelib.aws.resource_policies import (
    administrator_statements,
    cloudtrail_can_encrypt,
    cloudtrail_can_write,
    external_principals,
    lambda_permission_policy,
    public_statements,
)
from chalicelib.events import finding
from chalicelib.events.finding import ASFF_FIELDS, GUARDDUTY, GUARDDUTY_FIELDS, INSIGHTS, SECURITY_HUB
from chalicelib.named_lists import LISTS, NO_LISTS, NamedLists, named_list
from chalicelib.playbooks.compiled import Context, Evaluate, compile_tree

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


@dataclass(frozen=True)
class Fields:
    """The top-level fields of what an expression runs over, and what to call it in an error."""

    what: str
    names: frozenset[str]


CLOUDTRAIL = Fields("a CloudTrail record", CLOUDTRAIL_FIELDS)
FIELDS_BY_SOURCE = {
    GUARDDUTY: Fields("a GuardDuty finding", GUARDDUTY_FIELDS),
    SECURITY_HUB: Fields("a Security Hub finding (ASFF)", ASFF_FIELDS),
    INSIGHTS: Fields("a CloudTrail Insights record", CLOUDTRAIL_FIELDS),
}
"""What a playbook's expressions run over, by its `when.source` (CloudTrail for the rest)."""


class ExpressionError(ValueError):
    """A JMESPath expression that cannot be used; the message says why and what to write."""


class DomainFunctions(functions.Functions):
    """The domain functions, registered under the names playbooks call them by, and the
    organization's named lists as one event sees them (for `named_list()`)."""

    def __init__(self, lists: NamedLists = NO_LISTS) -> None:
        self.lists = lists

    @functions.signature({"types": ["object", "null"]})
    def _func_public_acl_grants(self, request: Any) -> list[dict[str, str]]:
        return public_acl_grants(request)

    @functions.signature({"types": ["object", "null"]})
    def _func_public_cidrs(self, request: Any) -> list[dict[str, Any]]:
        return public_cidrs(request)

    @functions.signature({"types": ["object", "null"]}, {"types": ["number"]})
    def _func_wide_cidrs(self, request: Any, prefix_length: float) -> list[dict[str, Any]]:
        return wide_cidrs(request, _prefix_length(prefix_length))

    @functions.signature({"types": ["object", "string", "null"]}, {"types": ["array"]}, {"types": ["array"]})
    def _func_public_statements(
        self, policy: Any, trusted_accounts: list[Any], trusted_organizations: list[Any]
    ) -> list[Any]:
        return public_statements(policy, trusted_accounts, trusted_organizations)

    @functions.signature({"types": ["object", "null"]})
    def _func_lambda_permission_policy(self, request: Any) -> dict[str, Any] | None:
        return lambda_permission_policy(request)

    @functions.signature({"types": ["object", "null"]})
    def _func_management_event_gaps(self, request: Any) -> list[str]:
        return management_event_gaps(request)

    @functions.signature({"types": ["array", "null"]}, {"types": ["array"]})
    def _func_open_to_ports(self, rules: Any, ports: list[Any]) -> list[Any]:
        return open_to_ports(rules, ports)

    @functions.signature({"types": ["object", "null"]})
    def _func_shared_with(self, request: Any) -> list[str]:
        return shared_with(request)

    @functions.signature({"types": ["object", "string", "null"]}, {"types": ["array"]}, {"types": ["array"]})
    def _func_external_principals(
        self, policy: Any, trusted_accounts: list[Any], trusted_organizations: list[Any]
    ) -> list[str]:
        return external_principals(policy, trusted_accounts, trusted_organizations)

    @functions.signature()
    def _func_admin_and_database_ports(self) -> list[int]:
        return admin_and_database_ports()

    @functions.signature({"types": ["object", "null"]}, {"types": ["string", "null"]})
    def _func_caller_is_user(self, identity: Any, user_name: Any) -> bool:
        return caller_is_user(identity, user_name)

    @functions.signature({"types": ["object", "null"]})
    def _func_public_access_block_off(self, request: Any) -> list[str]:
        return public_access_block_off(request)

    @functions.signature({"types": ["object", "null"]})
    def _func_management_events_recorded(self, request: Any) -> dict[str, bool]:
        return management_events_recorded(request)

    @functions.signature({"types": ["object", "null"]}, {"types": ["array"]}, {"types": ["array"]})
    def _func_shared_outside(
        self, request: Any, trusted_accounts: list[Any], trusted_organizations: list[Any]
    ) -> list[str]:
        return shared_outside(request, trusted_accounts, trusted_organizations)

    @functions.signature({"types": ["object", "string", "null"]})
    def _func_administrator_statements(self, policy: Any) -> list[Any]:
        return administrator_statements(policy)

    @functions.signature({"types": ["object", "null"]})
    def _func_lifecycle_expirations(self, request: Any) -> list[dict[str, Any]]:
        return lifecycle_expirations(request)

    @functions.signature({"types": ["string", "null"]})
    def _func_arn_account(self, value: Any) -> str | None:
        return arn_account(value)

    @functions.signature({"types": ["object", "null"]})
    def _func_flow_log_ids(self, request: Any) -> list[str]:
        return flow_log_ids(request)

    @functions.signature({"types": ["object", "null"]}, {"types": ["array"]})
    def _func_data_events_missed(self, request: Any, buckets: list[Any]) -> list[str]:
        return data_events_missed(request, buckets)

    @functions.signature({"types": ["object", "null"]})
    def _func_trail_link(self, record: Any) -> str | None:
        return trail_link(record, self.lists)

    @functions.signature({"types": ["object", "string", "null"]})
    def _func_cloudtrail_can_write(self, policy: Any) -> bool:
        return cloudtrail_can_write(policy)

    @functions.signature({"types": ["object", "string", "null"]})
    def _func_cloudtrail_can_encrypt(self, policy: Any) -> bool:
        return cloudtrail_can_encrypt(policy)

    @functions.signature({"types": ["object", "null"]})
    def _func_finding_role(self, record: Any) -> str | None:
        return finding.finding_role(record)

    @functions.signature({"types": ["object", "null"]})
    def _func_finding_user(self, record: Any) -> str | None:
        return finding.finding_user(record)

    @functions.signature({"types": ["object", "null"]})
    def _func_finding_principal(self, record: Any) -> str | None:
        return finding.finding_principal(record)

    @functions.signature({"types": ["object", "null"]})
    def _func_finding_access_key(self, record: Any) -> str | None:
        return finding.finding_access_key(record)

    @functions.signature({"types": ["object", "null"]})
    def _func_finding_instance(self, record: Any) -> str | None:
        return finding.finding_instance(record)

    @functions.signature({"types": ["object", "null"]})
    def _func_finding_severity(self, record: Any) -> str | None:
        return finding.finding_severity(record)

    @functions.signature({"types": ["object", "null"]})
    def _func_insight_principal(self, record: Any) -> str | None:
        return finding.insight_principal(record)

    @functions.signature({"types": ["object", "null"]})
    def _func_actor_role(self, identity: Any) -> str | None:
        return quirks.actor_role(identity)

    @functions.signature({"types": ["object", "null"]})
    def _func_actor_user(self, identity: Any) -> str | None:
        return quirks.actor_user(identity)

    @functions.signature({"types": ["object", "null"]})
    def _func_actor_arn(self, identity: Any) -> str | None:
        return quirks.actor_arn(identity)

    @functions.signature({"types": ["string"]})
    def _func_named_list(self, name: str) -> list[str]:
        return named_list(self.lists, name)


DOCUMENTED_BY: dict[str, Any] = {
    name: next(
        getattr(module, name) for module in (quirks, resource_policies, named_lists, finding) if hasattr(module, name)
    )
    for name in sorted(method.removeprefix("_func_") for method in vars(DomainFunctions) if method.startswith("_func_"))
}
"""Each of trailguard's own functions, by the Python function whose docstring documents it
(docs/playbooks.md)."""


def _prefix_length(value: float) -> int:
    if not math.isfinite(value) or value != int(value) or not 0 <= value <= 128:
        raise ExpressionError(f"wide_cidrs() takes a whole prefix length from 0 to 128, got {value}")
    return int(value)


_FUNCTIONS = DomainFunctions()


class Expression:
    """A compiled JMESPath expression, evaluated with the domain functions available."""

    __slots__ = ("_evaluate", "_tree", "text")

    def __init__(self, text: str, fields: Fields | None = None) -> None:
        """`fields`: the top-level fields of what it runs over (default: a CloudTrail record)."""
        self.text = text
        try:
            self._tree: Mapping[str, Any] | bytes = jmespath.compile(text).parsed
        except jmespath_errors.JMESPathError as error:
            raise ExpressionError(_syntax_problem(text, error)) from None
        _check_tree(self._tree, fields or CLOUDTRAIL)
        self._evaluate: Evaluate | None = None

    @classmethod
    def checked(cls, text: str, tree: bytes) -> Expression:
        """An expression parsed and checked before, by this code (the precompiled catalog):
        its tree as marshal wrote it, read when first needed (most of a large catalog's
        expressions are never evaluated by a given container)."""
        expression = cls.__new__(cls)
        expression.text = text
        expression._tree = tree
        expression._evaluate = None
        return expression

    @property
    def tree(self) -> Mapping[str, Any]:
        """jmespath's parsed tree (read by the catalog's index of tested fields)."""
        tree = self._tree
        if isinstance(tree, bytes):
            tree = self._tree = marshal.loads(tree)
        return tree

    def search(self, data: Any, lists: NamedLists = NO_LISTS) -> Any:
        """Evaluate over `data` (a CloudTrail record), `named_list()` reading `lists`."""
        functions = DomainFunctions(lists) if lists is not NO_LISTS else _FUNCTIONS
        evaluate = self._evaluate
        if evaluate is None:
            # Python closures with jmespath's semantics, built on first use: most of a large
            # catalog's expressions are never evaluated by a given container.
            evaluate = self._evaluate = compile_tree(self.tree)
        try:
            return evaluate(data, Context(functions))
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


def _check_tree(node: Mapping[str, Any], fields: Fields, at_root: bool = True) -> None:
    """Check function names and arity, and the field names read from the record itself."""
    kind = node["type"]
    children = node.get("children", [])
    if kind == "field":
        if at_root:
            _check_root_field(node["value"], fields)
        return
    if kind == "function_expression":
        _check_function(node["value"], len(children))
        _check_literal_arguments(node["value"], children)
        for child in children:
            _check_tree(child, fields, at_root and child["type"] != "expref")
        return
    if kind in ("subexpression", "index_expression", "projection", "value_projection", "filter_projection", "pipe"):
        if kind in ("subexpression", "index_expression") and children[0]["type"] == "not_expression":
            # `!a.b` parses as `(!a).b`: a boolean's field, always null, so never true.
            raise ExpressionError(
                "JMESPath reads '!' before a path as applying to its first name only "
                "(`!a.b` is `(!a).b`, always null); write the negation around the whole path: `!(a.b)`"
            )
        # The left side is evaluated where the expression stands; the rest on its result.
        _check_tree(children[0], fields, at_root)
        for child in children[1:]:
            _check_tree(child, fields, False)
        return
    if kind == "expref":
        _check_tree(children[0], fields, False)
        return
    for child in children:
        _check_tree(child, fields, at_root)


def _check_root_field(name: str, fields: Fields) -> None:
    if name in fields.names:
        return
    if name in ("true", "false", "null"):
        raise ExpressionError(
            f"'{name}' is read by JMESPath as a field name, not a value; write the literal as `{name}` (with backticks)"
        )
    close = difflib.get_close_matches(name, fields.names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ExpressionError(f"'{name}' is not a field of {fields.what}{hint}")


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
        raise ExpressionError(f"{name}() takes {expected} argument(s), got {arguments}: {_usage(name)}")


def _usage(name: str) -> str:
    """`name(parameter, ...)`, from the registered function's own parameters."""
    method = getattr(DomainFunctions, f"_func_{name}", None)
    if method is None:  # one of JMESPath's own functions
        return f"see https://jmespath.org/specification.html#{name}"
    parameters = list(inspect.signature(method).parameters)[1:]
    return f"{name}({', '.join(parameters)})"


def _check_literal_arguments(name: str, arguments: list[Mapping[str, Any]]) -> None:
    """Arguments that must be known when the playbook is loaded, not found wrong at 3 a.m."""
    if name == "named_list":
        given = arguments[0]
        if given["type"] != "literal" or not isinstance(given["value"], str):
            raise ExpressionError(
                "named_list() takes the list's name as a literal, such as named_list('trusted_accounts')"
            )
        if given["value"] not in LISTS:
            close = difflib.get_close_matches(given["value"], list(LISTS), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known lists: {', '.join(sorted(LISTS))}"
            raise ExpressionError(f"named_list(): no list is named {given['value']!r}; {hint}")
    if name == "wide_cidrs" and len(arguments) == 2 and arguments[1]["type"] == "literal":
        value = arguments[1]["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExpressionError(f"wide_cidrs() takes a whole prefix length from 0 to 128, got {value!r}")
        _prefix_length(value)
