"""The action contract: what every remediation declares and how it behaves.

An action is a small class registered under a stable public name (`service.verb_object`).
Like Cloud Custodian's actions, it declares next to its code everything about itself: the
parameters it takes, the IAM permissions it needs with the resource type each can be
narrowed to (the deploy policies are generated from these declarations alone) and, in
its docstring, a YAML example (the reference documentation is generated from it).

Its life in an incident:

    before = action.snapshot()        read what undo will need, change nothing
    if action.check(before): done     already safe: nothing to apply
    action.apply(before)              make the change (running it again changes nothing)
    after = action.snapshot()         what trailguard left, read back from AWS:
    action.check(after) or fail       the step fails unless it is safe now
    ...
    action.undo(before, after)        only if the resource is still exactly `after`

Snapshots are small JSON-ready dicts of the state that matters (never timestamps that
change on their own), so that "still as trailguard left it" is a plain comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from chalicelib.aws.errors import ActionError
from chalicelib.aws.resource_policies import Trusted
from chalicelib.memory.rules import configuration

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@dataclass(frozen=True)
class ResourceType:
    """What an IAM permission can be narrowed to: the ARNs of one resource type, as the IAM
    Service Authorization Reference lists them for the permission, and the name its policy
    statement carries (`Remediate<name>`)."""

    name: str
    arns: tuple[str, ...]


ANY_RESOURCE = ResourceType("AnyResource", ("*",))
"""For a permission the service grants on no resource type (DescribeTrails, ListDetectors,
CreateFlowLogs...), and for iam:PassRole, which is narrowed by the service it passes to."""


class UndoRefused(ActionError):
    """The resource changed after trailguard acted, so putting the old state back is unsafe."""


@dataclass(frozen=True)
class Parameter:
    """A value an action takes from the playbook's `with:` (a JMESPath over the record)."""

    name: str
    type: str
    description: str
    required: bool = True
    default: Any = None
    names_the_targets: bool = False
    """An array that names what the step acts on: empty, the plan fails (a step given nothing
    to act on would find nothing unsafe and report success)."""

    def __post_init__(self) -> None:
        if self.type not in _JSON_TYPES:
            raise ValueError(f"parameter {self.name}: unknown type {self.type!r}")

    def accepts(self, value: Any) -> bool:
        if self.type == "integer" and isinstance(value, bool):
            return False
        if self.type == "integer" and isinstance(value, float) and value.is_integer():
            return True
        return isinstance(value, _JSON_TYPES[self.type])


@dataclass(frozen=True)
class Protected:
    """The principals containment never touches, whatever a playbook says: trailguard's own
    roles (by name, in every account: a containment of them would stop trailguard itself)
    and the organization's break-glass roles (by ARN, `lists.break_glass_roles` of the
    settings: people need them most when things go wrong)."""

    own_roles: frozenset[str] = frozenset()
    break_glass_roles: frozenset[str] = frozenset()


NOTHING_PROTECTED = Protected()


@dataclass(frozen=True)
class ActionContext:
    """Where the action runs, and what it may need besides its client: trailguard's memory
    of last known configurations, the configuration recalled when the incident was opened,
    and the incident's id. Empty in unit tests and replay."""

    account: str | None = None
    region: str | None = None
    memory: Any = None
    remembered: dict[str, Any] | None = None
    incident_id: str | None = None
    clients: Callable[[str], Any] | None = None
    """A client of another service in the same account and region, for an action that reads
    more than its own service to judge a workload (the account's buckets, for the account's
    Block Public Access)."""
    protected: Protected = NOTHING_PROTECTED
    """What containment refuses to act on (`Protected`)."""


class Action:
    """Base class of every action; subclasses fill in the class attributes and four methods."""

    name: ClassVar[str]
    service: ClassVar[str]
    """The boto3 client the action needs, created in the event's account and region
    ("" for an action that calls no AWS service)."""
    permissions: ClassVar[Mapping[str, ResourceType]]
    """Every IAM action that snapshot, apply and undo call, with what IAM lets it be narrowed to."""
    passes_role_to: ClassVar[str | None] = None
    """With iam:PassRole among the permissions: the only service it may pass roles to."""
    parameters: ClassVar[tuple[Parameter, ...]]
    eventually_consistent: ClassVar[bool] = False
    """True where AWS documents that a read may not show a change at once (IAM, EC2, KMS,
    S3 bucket settings, a trail just created): the state is then read back a few times,
    over a few seconds, before the step fails for not being safe."""
    propose_only_if_unsafe: ClassVar[bool] = False
    """True where what `check` finds when the call is judged says whether there is anything
    to propose: it compares the resource with the configuration remembered from before the
    call and never asks for more than that (a console edit that re-sends the same
    settings, or adds protection, took nothing away), or asks whether the resource is one
    the playbook guards at all (a bucket a trail writes to). A proposal whose every step
    finds its resource safe then is not made."""

    def __init__(self, client: Any, params: Mapping[str, Any], context: ActionContext | None = None) -> None:
        self.client = client
        self.params = dict(params)
        self.context = context or ActionContext()
        self.note: str | None = None
        """Set by apply when the incident should say how it was done (what it restored from)."""

    # -- to implement ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The current state of the resource, as far as undo and check need it."""
        raise NotImplementedError

    def check(self, state: Mapping[str, Any]) -> bool:
        """Is the resource, in `state`, already safe (so that apply has nothing to do)?"""
        raise NotImplementedError

    def apply(self, state: Mapping[str, Any]) -> None:
        """Make the resource safe, starting from `state` (the snapshot just taken)."""
        raise NotImplementedError

    def restore(self, state: Mapping[str, Any]) -> None:
        """Put the resource back into `state` (the snapshot taken before apply)."""
        raise NotImplementedError

    def workload(self) -> str | None:
        """What applying would break that people may rely on, as AWS shows the resource now
        (a static website the bucket serves, a function URL open to the internet), in a
        sentence; None when there is nothing of the kind. An automatic step whose resource
        has one is proposed instead, and waits for a person (DESIGN: approve where a fix
        could break a legitimate workload, decided on the resource, not on the event).
        Actions that can break nothing keep this default."""
        return None

    def resource_tags(self) -> dict[str, str] | None:
        """The tags of the resource the step acts on (the opt-out tag, a playbook's tag scope),
        read through the action's client; None where the action cannot tell. An action that
        reads them declares the permission among its `permissions`."""
        return None

    # -- shared behaviour -----------------------------------------------------------------

    def undo(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """Restore `before`, but only if nobody changed the resource since trailguard left it."""
        now = self.snapshot()
        if now != after:
            change = describe_change(after, now)
            raise UndoRefused(f"{self.name}: the resource changed since trailguard acted ({change})")
        self.restore(before)

    @classmethod
    def parameter(cls, name: str) -> Parameter | None:
        return next((p for p in cls.parameters if p.name == name), None)

    @classmethod
    def memory_key(cls, params: Mapping[str, Any], context: ActionContext) -> str | None:
        """For actions that put back a remembered configuration: where it is remembered.

        The configuration is recalled when the incident is opened and kept in its plan, so
        that an approval hours later restores what was known at the time of the event,
        not what trailguard saw since (the change itself, perhaps)."""
        return None

    @classmethod
    def memory_keys(cls, params: Mapping[str, Any], context: ActionContext) -> list[str]:
        """Every remembered configuration the action may put back (an incident holds them)."""
        key = cls.memory_key(params, context)
        return [key] if key is not None and context.memory is not None else []

    @classmethod
    def recall(cls, params: Mapping[str, Any], context: ActionContext) -> dict[str, Any] | None:
        key = cls.memory_key(params, context)
        if key is None or context.memory is None:
            return None
        return configuration(context.memory.recall(key))

    def remembered(self) -> dict[str, Any] | None:
        """The configuration recalled for this step (at opening, else now), if any."""
        if self.context.remembered is not None:
            return self.context.remembered
        return type(self).recall(self.params, self.context)


TRUSTED_ACCOUNTS = Parameter(
    "trusted_accounts",
    "array",
    "The organization's accounts, as the playbook's condition reads them: named_list('trusted_accounts') "
    "(the resource's own account is always trusted).",
)
TRUSTED_ORGANIZATIONS = Parameter(
    "trusted_organizations",
    "array",
    "The organization's AWS Organizations ids, as the condition reads them: named_list('trusted_organizations').",
)


def trusted_by(action: Action, *own_accounts: str) -> Trusted:
    """Who an action's `trusted_accounts`/`trusted_organizations` let in, with the account it
    acts in (and `own_accounts`, such as the resource's own) always among them."""
    accounts = [*action.params["trusted_accounts"], *own_accounts]
    if action.context.account:
        accounts.append(action.context.account)
    return Trusted.of(accounts, action.params["trusted_organizations"])


_SHOWN_VALUE = 60
"""The longest value a change or an error shows whole; longer ones are named by their size."""


def describe_change(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> str:
    """One line saying which fields differ, for messages that refuse an undo: short values
    are shown, long ones (a whole policy) only by their size, so that a refusal repeated
    many times does not copy snapshots into the incident's history."""
    keys = sorted(set(expected) | set(actual))
    changes = [
        f"{key}: {_brief(expected.get(key))} -> {_brief(actual.get(key))}"
        for key in keys
        if expected.get(key) != actual.get(key)
    ]
    return "; ".join(changes) or "no visible difference"


def _brief(value: Any) -> str:
    shown = repr(value)
    if len(shown) <= _SHOWN_VALUE:
        return shown
    if isinstance(value, (list, dict)):
        return f"({type(value).__name__} of {len(value):,} items)"
    return f"{shown[: _SHOWN_VALUE - 20]}… ({len(shown):,} characters)"


_REGISTRY: dict[str, type[Action]] = {}


def register(action: type[Action]) -> type[Action]:
    """Class decorator: make `action` available to playbooks under `action.name`."""
    for attribute in ("name", "service", "permissions", "parameters"):
        if not hasattr(action, attribute):
            raise TypeError(f"{action.__name__} must declare {attribute!r}")
    if action.name in _REGISTRY:
        raise ValueError(f"action {action.name!r} is registered twice")
    wrong = [p for p, kind in action.permissions.items() if ":" not in p or not isinstance(kind, ResourceType)]
    if wrong:
        raise TypeError(f"{action.__name__}.permissions: give each IAM action (service:Verb) its ResourceType: {wrong}")
    action.permissions = MappingProxyType(dict(action.permissions))  # a declaration, never changed
    _REGISTRY[action.name] = action
    return action


def registered_actions() -> Mapping[str, type[Action]]:
    return _REGISTRY
