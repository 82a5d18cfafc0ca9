"""Where trailguard answers, and how far it may go: the one place scope and mode ceilings are
decided, for the Lambda, replay, the sweep and the playbooks' tests alike.

Two halves, in this order:

- what the settings say about the event (`Controls`): the global scope (accounts, OUs,
  regions, principals), each playbook's scope, and the ceilings of the stage, the OU, the
  account, the playbook, the dry-run week and break-glass roles. Pure: `decide` runs it,
  so a playbook test, a replay and the Lambda agree;
- what only a running stage knows (`Live`): the kill switch and the global dry-run switch
  (SSM, read at run time), an exception people made for this resource, the resource's tags
  (the opt-out tag, a playbook's tag scope), read through the action's own client. The
  responder runs it before it records the incident.

A ceiling only lowers a mode (auto > approve > notify > dry-run), never raises it; a playbook
without steps (notify) has nothing to lower. The incident records the rule that set the
mode it runs in (`Incident.mode_note`), and so do replay and the decision's log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from chalicelib.events.event import Event
from chalicelib.organization.model import (
    EXEMPT_REASON_TAG,
    EXEMPT_TAG,
    MODE_RANK,
    NO_ORGANIZATION,
    Caller,
    Ceiling,
    Organization,
)
from chalicelib.playbooks.plan import PlannedStep
from chalicelib.playbooks.playbook import Plan, Playbook

log = logging.getLogger("trailguard")


def caller_of(organization: Organization, event: Event) -> Caller:
    actor = event.actor
    return organization.caller(event.account, event.region, (actor.role_arn, actor.arn), event.time)


def lowered(mode: str, ceilings: list[Ceiling]) -> tuple[str, Ceiling | None]:
    """`mode` under `ceilings`, and the ceiling that set it (None: not lowered)."""
    by: Ceiling | None = None
    for ceiling in ceilings:
        if MODE_RANK[ceiling.mode] < MODE_RANK[mode]:
            mode, by = ceiling.mode, ceiling
    return mode, by


class Controls:
    """What the organization settings say about an event (see the module's docstring)."""

    def __init__(self, organization: Organization = NO_ORGANIZATION) -> None:
        self.organization = organization

    def outside(self, event: Event) -> str | None:
        """Why the event is outside the stage's scope (no playbook answers it), or None."""
        return self.organization.scope.outside(caller_of(self.organization, event))

    def playbook_outside(self, playbook: Playbook, event: Event) -> str | None:
        """Why the event is outside the playbook's own scope (its tags are read later), or None."""
        return self.organization.playbook_scope(playbook.id).outside(caller_of(self.organization, event))

    def ceiling(self, plan: Plan) -> Plan:
        """The plan with the mode the settings allow it, and the rule that lowered it."""
        if not plan.steps:
            return plan
        caller = caller_of(self.organization, plan.event)
        ceilings = self.organization.modes.ceilings(plan.playbook.id, caller, self.organization.break_glass(caller))
        return lower(plan, ceilings)


def lower(plan: Plan, ceilings: list[Ceiling]) -> Plan:
    mode, by = lowered(plan.mode, ceilings)
    if by is None:
        return plan
    return replace(plan, mode=mode, lowered_by=f"{plan.mode} -> {mode}: {by.rule}")


# -- what only a running stage knows ---------------------------------------------------------


class SwitchReader(Protocol):
    def ceiling(self) -> Ceiling | None:
        """The kill switch's or the dry-run switch's ceiling, when either is on (or unreadable)."""


class ExceptionLookup(Protocol):
    def active(self, playbook_id: str, event: Event) -> Any:
        """The exception people made for this playbook and the event's resource, if one is in force."""


TagReader = Callable[[PlannedStep, str | None, str], Mapping[str, str] | None]
"""The tags of the resource a step acts on, read through its action's client in the event's
account and region; None where the action cannot tell."""


@dataclass(frozen=True)
class Checked:
    """A plan after the running stage's checks: its mode, or why no incident is opened."""

    plan: Plan
    outside: str | None = None
    """Set when the resource's tags put it outside the playbook's scope."""
    notes: tuple[str, ...] = ()
    """What the checks could not establish (a tag unreadable, an opt-out tag without a reason)."""


class Live:
    """The kill switch, exceptions and tags, for a stage that runs (not replay, not tests)."""

    def __init__(
        self,
        organization: Organization,
        *,
        switch: SwitchReader | None = None,
        exceptions: ExceptionLookup | None = None,
        tags: TagReader | None = None,
    ) -> None:
        self.organization = organization
        self.switch = switch
        self.exceptions = exceptions
        self.tags = tags

    def check(self, plan: Plan) -> Checked:
        if not plan.steps:
            return Checked(plan)
        ceilings: list[Ceiling] = []
        if self.switch is not None:
            switched = self.switch.ceiling()
            if switched is not None:
                ceilings.append(switched)
        if self.exceptions is not None and plan.playbook.id not in self.organization.exceptions_never:
            found = self.exceptions.active(plan.playbook.id, plan.event)
            if found is not None:
                ceilings.append(Ceiling("notify", f"exception {found.describe()}"))
        notes: list[str] = []
        scope = self.organization.playbook_scope(plan.playbook.id)
        opt_out = self.organization.opt_out_by_tag and plan.playbook.id not in self.organization.opt_out_never
        acts = MODE_RANK[lowered(plan.mode, ceilings)[0]] >= MODE_RANK["approve"]
        if self.tags is not None and (scope.reads_tags or (opt_out and acts)):
            for step in plan.steps:
                try:
                    tags = self.tags(step, plan.event.account, plan.event.region)
                except Exception as error:
                    notes.append(f"the tags of {step.action}'s resource could not be read ({_brief(error)})")
                    continue
                if tags is None:
                    continue
                outside = scope.outside_by_tags(tags)
                if outside is not None:
                    return Checked(plan, outside=outside)
                if opt_out and EXEMPT_TAG in tags:
                    reason = tags.get(EXEMPT_REASON_TAG, "").strip()
                    if reason:
                        ceilings.append(Ceiling("notify", f"the resource's tag {EXEMPT_TAG} ({reason})"))
                    else:
                        notes.append(f"the resource's tag {EXEMPT_TAG} is ignored: it has no {EXEMPT_REASON_TAG}")
        return Checked(lower(plan, ceilings), notes=tuple(notes))


def _brief(error: Exception) -> str:
    from chalicelib.aws.errors import describe_error

    return describe_error(error)
