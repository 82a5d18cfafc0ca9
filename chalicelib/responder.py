"""The one decision path: guards -> match -> plan -> act by mode -> record -> notify.

`decide` (guards, playbooks, plans) has no side effects; the playbooks' inline tests
call it directly. `Responder.respond` records and acts on what `decide` found; the
Lambda handler, `replay` and the demo call it, and differ only in the store, the
executor and the notifier they give it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import AbstractSet

from chalicelib.catalog import Catalog
from chalicelib.events import CloudTrailEvent
from chalicelib.expressions import ExpressionError
from chalicelib.executor import Executor, SimulatedExecutor
from chalicelib.guards import Skip, skip_reason
from chalicelib.incidents import Incident, State, StepResult, StepStatus, incident_id
from chalicelib.notify import Notifier
from chalicelib.plan import Plan, PlanError
from chalicelib.playbook import Playbook
from chalicelib.store import IncidentStore

log = logging.getLogger("trailguard")


@dataclass(frozen=True)
class Decision:
    """What the playbooks make of one event, before anything is done about it."""

    event: CloudTrailEvent
    skip: Skip | None = None
    plans: tuple[Plan, ...] = ()
    failures: tuple[tuple[Playbook, str], ...] = ()
    """Playbooks that matched but could not be planned, with the reason."""
    rejections: tuple[tuple[Playbook, str], ...] = ()
    """Candidate playbooks whose `if`/`unless` left the event alone, with the condition."""


@dataclass(frozen=True)
class Outcome:
    """What became of one matched playbook: a new incident, or a duplicate of one."""

    playbook: Playbook
    incident: Incident
    duplicate: bool = False


def decide(catalog: Catalog, event: CloudTrailEvent, own_role_names: AbstractSet[str]) -> Decision:
    """Guards, then the playbooks that name the event, their conditions, and their plans."""
    candidates = catalog.candidates(event.source, event.name)
    if not candidates:
        return Decision(event)
    skip = skip_reason(event, own_role_names)
    if skip is not None:
        return Decision(event, skip=skip)
    plans: list[Plan] = []
    failures: list[tuple[Playbook, str]] = []
    rejections: list[tuple[Playbook, str]] = []
    for playbook in candidates:
        try:
            rejection = playbook.rejection(event)
            if rejection is not None:
                rejections.append((playbook, rejection))
                continue
            plans.append(playbook.plan(event))
        except (PlanError, ExpressionError) as error:
            # Matched, but not understood: a person must hear of it, so it is not dropped.
            failures.append((playbook, f"{playbook.id}: {error}"))
    return Decision(event, None, tuple(plans), tuple(failures), tuple(rejections))


class Responder:
    def __init__(
        self,
        catalog: Catalog,
        *,
        own_role_names: AbstractSet[str],
        store: IncidentStore,
        executor: Executor,
        notifier: Notifier,
    ) -> None:
        self.catalog = catalog
        self.own_role_names = frozenset(own_role_names)
        self.store = store
        self.executor = executor
        self.notifier = notifier

    def respond(self, event: CloudTrailEvent) -> tuple[Decision, list[Outcome]]:
        decision = decide(self.catalog, event, self.own_role_names)
        outcomes = [self._open(event, plan.playbook, plan, None) for plan in decision.plans]
        outcomes += [self._open(event, playbook, None, error) for playbook, error in decision.failures]
        return decision, outcomes

    def _open(self, event: CloudTrailEvent, playbook: Playbook, plan: Plan | None, error: str | None) -> Outcome:
        incident = Incident(
            id=incident_id(event.event_id, playbook.id),
            playbook_id=playbook.id,
            playbook_version=playbook.version,
            title=playbook.title,
            severity=playbook.severity,
            mode=playbook.mode,
            event=event.summary(),
            state=_initial_state(playbook.mode),
            plan=[step.to_dict() for step in plan.steps] if plan else [],
        )
        if not self.store.create(incident):
            existing = self.store.get(incident.id) or incident
            return Outcome(playbook, existing, duplicate=True)
        if plan is None:
            incident.state = State.FAILED
            incident.error = error
        elif playbook.mode == "auto":
            incident.steps = self.executor.run(plan)
            incident.state = _state_after(incident.steps)
        elif playbook.mode == "dry-run":
            incident.steps = SimulatedExecutor().run(plan)
        self.store.save(incident)
        try:
            self.notifier.notify(incident)
        except Exception:  # noqa: BLE001 - the incident is recorded; telling people can be retried
            log.exception("could not notify about incident %s", incident.id)
        return Outcome(playbook, incident)


def _initial_state(mode: str) -> State:
    return {
        "auto": State.REMEDIATING,
        "approve": State.PROPOSED,
        "notify": State.NOTIFIED,
        "dry-run": State.SIMULATED,
    }[mode]


def _state_after(results: list[StepResult]) -> State:
    statuses = {result.status for result in results}
    if StepStatus.FAILED in statuses:
        return State.FAILED
    if statuses == {StepStatus.SIMULATED}:
        return State.SIMULATED
    return State.REMEDIATED
