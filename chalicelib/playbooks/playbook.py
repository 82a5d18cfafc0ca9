"""A playbook, compiled: which events it answers, when it leaves them alone, and its plan.

Built by `loader` from a YAML file; everything here is already checked, so deciding about
an event only evaluates precompiled expressions. A plan is what one playbook would do about
one event, with every parameter resolved (its steps are `plan.PlannedStep`): plain data
that the responder acts on, replay prints and incidents keep.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.actions import Action
from chalicelib.events.event import Event
from chalicelib.named_lists import NO_LISTS, NamedLists
from chalicelib.playbooks.expressions import Expression
from chalicelib.playbooks.plan import PlanError, PlannedStep


@dataclass(frozen=True)
class Plan:
    playbook: Playbook
    event: Event
    steps: tuple[PlannedStep, ...]
    mode: str
    """The playbook's mode, or the lower one an `instead:` entry (or a look at the resource) gave."""
    because: str | None = None
    """Why the mode is lower than the playbook's, when it is."""
    lowered_by: str | None = None
    """Which of the organization's ceilings lowered the mode, for people:
    `auto -> approve: modes.accounts.111122223333` (`respond.controls`)."""

    def to_dict(self) -> dict[str, Any]:
        """The public shape of a plan (replay's JSON Lines output, incidents)."""
        shape: dict[str, Any] = {
            "playbook": self.playbook.id,
            "mode": self.mode,
            "steps": [step.to_dict() for step in self.steps],
        }
        if self.because:
            shape["because"] = self.because
        if self.lowered_by:
            shape["loweredBy"] = self.lowered_by
        return shape


@dataclass(frozen=True)
class Instead:
    """An `instead:` entry: a lower mode for the calls its condition holds for."""

    mode: str
    condition: Expression
    because: str


@dataclass(frozen=True)
class Step:
    action: type[Action]
    params: Mapping[str, Expression]
    unless: Expression | None = None
    """A `contain:` step's own suppression: when it holds, the step is left out."""


@dataclass(frozen=True)
class PlaybookTest:
    name: str
    event: Any
    expect: Any
    line: int | None
    lists: NamedLists = NO_LISTS
    """The organization's named lists as the test sets them (`named_lists:`); settings play no part."""


def _truthy(value: Any) -> bool:
    """JMESPath's truth: false, null and empty strings, lists and objects are false."""
    if value is None or value is False:
        return False
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True


@dataclass(frozen=True)
class Playbook:
    id: str
    title: str
    severity: str
    description: str
    source: str
    events: tuple[str, ...]
    mode: str
    steps: tuple[Step, ...]
    containment: tuple[Step, ...] = ()
    """The `contain:` steps: the second response, which waits for a person (`PlannedStep.contain`)."""
    condition: Expression | None = None
    exclusions: tuple[Expression, ...] = ()
    instead: tuple[Instead, ...] = ()
    """Lower modes for some calls (`instead:`): the first whose condition holds."""
    tests: tuple[PlaybookTest, ...] = ()
    version: int = 1
    approval_timeout: dt.timedelta = dt.timedelta(hours=24)
    """How long a proposal waits for a person before the sweep expires it."""
    slack_channel: str | None = None
    """Where its messages go; None: the default channel."""
    approvers: tuple[str, ...] = ()
    """Slack user and user-group ids that may press its buttons; empty: the global approvers."""
    path: Path | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)

    @property
    def every_step(self) -> tuple[Step, ...]:
        """Its steps and its `contain:` steps: what its actions may need (policies, docs)."""
        return self.steps + self.containment

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.path else self.id

    def rejection(self, event: Event, lists: NamedLists = NO_LISTS) -> str | None:
        """Why this playbook does not apply to `event` (its `if`/`unless`), or None if it does;
        `named_list()` reads `lists`, with the event's own account among the trusted ones."""
        seen = lists.for_account(event.account)
        if self.condition is not None and not _truthy(self.condition.search(event.record, seen)):
            return f"if: {self.condition.text}"
        for exclusion in self.exclusions:
            if _truthy(exclusion.search(event.record, seen)):
                return f"unless: {exclusion.text}"
        return None

    def plan(self, event: Event, lists: NamedLists = NO_LISTS) -> Plan:
        """Resolve every step's parameters from `event` (and `lists`, as `rejection` reads
        them), in the playbook's mode or the first `instead:` mode whose condition holds (a
        notice runs no steps); PlanError says which cannot be."""
        seen = lists.for_account(event.account)
        lower = next((entry for entry in self.instead if _truthy(entry.condition.search(event.record, seen))), None)
        if lower is not None and lower.mode == "notify":
            return Plan(self, event, (), "notify", lower.because)
        steps = tuple(self._resolve(number, step, event, seen) for number, step in enumerate(self.steps, 1))
        if lower is None:  # an `instead:` entry says the call may be meant: nobody to contain
            steps += self._containment(len(steps), event, seen)
        if not steps and self.containment and lower is None:
            return Plan(self, event, (), "notify", "the event names no principal its contain: steps can act on")
        if lower is not None:
            return Plan(self, event, steps, lower.mode, lower.because)
        return Plan(self, event, steps, self.mode)

    def _containment(self, first: int, event: Event, lists: NamedLists) -> tuple[PlannedStep, ...]:
        """The `contain:` steps that apply to this event's actor: one whose principal is null
        (a role's step for a user's call, a user's for a role's) is left out, not failed."""
        planned: list[PlannedStep] = []
        for number, step in enumerate(self.containment, first + 1):
            if step.unless is not None and _truthy(step.unless.search(event.record, lists)):
                continue
            if any(
                parameter.required
                and step.params.get(parameter.name) is not None
                and step.params[parameter.name].search(event.record, lists) is None
                for parameter in step.action.parameters
            ):
                continue
            resolved = self._resolve(number, step, event, lists)
            planned.append(PlannedStep(resolved.action, resolved.params, contain=True))
        return tuple(planned)

    def _resolve(self, number: int, step: Step, event: Event, lists: NamedLists) -> PlannedStep:
        params: dict[str, Any] = {}
        for parameter in step.action.parameters:
            expression = step.params.get(parameter.name)
            value = expression.search(event.record, lists) if expression else None
            if parameter.names_the_targets and value == []:
                raise PlanError(
                    f"step {number} ({step.action.name}): parameter {parameter.name!r} from "
                    f"{expression.text if expression else ''!r} is an empty list for this event: nothing to act on"
                )
            if value is None:
                if parameter.required:
                    source = f"from {expression.text!r} " if expression else ""
                    raise PlanError(
                        f"step {number} ({step.action.name}): parameter "
                        f"{parameter.name!r} {source}is null for this event"
                    )
                value = parameter.default
            elif not parameter.accepts(value):
                raise PlanError(
                    f"step {number} ({step.action.name}): parameter {parameter.name!r} "
                    f"must be {parameter.type}, got {value!r}"
                )
            if parameter.type == "integer" and isinstance(value, float):
                value = int(value)
            params[parameter.name] = value
        return PlannedStep(step.action.name, params)
