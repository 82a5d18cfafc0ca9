"""The one decision path: guards -> scope -> match -> plan -> ceilings -> act by mode ->
record -> notify.

`decide` (guards, the organization's scope, playbooks, plans, mode ceilings) has no side
effects; the playbooks' inline tests call it directly. `Responder.respond` records and acts
on what `decide` found, through the incidents' one door (`incidents.lifecycle`), after what
only a running stage knows (`controls.Live`: the kill switch, exceptions, tags) has had
its say; the Lambda handler, `replay`, the sweep and the demo call it, and differ only in
the incidents they give it (store and actions: real or simulated; who is told).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chalicelib.aws.seals import ChangedOutsideTrailguard
from chalicelib.events.event import Event
from chalicelib.events.finding import INSIGHTS, Finding
from chalicelib.incidents.lifecycle import Incidents, IncidentTooLarge, StaleIncident
from chalicelib.incidents.model import TRAILGUARD, Incident, State, StepResult, StepStatus, incident_id
from chalicelib.named_lists import NO_LISTS, NamedLists
from chalicelib.playbooks.catalog import Catalog, Sifted
from chalicelib.playbooks.expressions import ExpressionError
from chalicelib.playbooks.plan import PlanError, PlannedStep
from chalicelib.playbooks.playbook import Plan, Playbook
from chalicelib.respond.controls import Controls, Live
from chalicelib.respond.guards import OwnIdentities, Skip, skip_reason

log = logging.getLogger("trailguard")


@dataclass(frozen=True)
class Decision:
    """What the playbooks make of one event, before anything is done about it."""

    event: Event
    skip: Skip | None = None
    plans: tuple[Plan, ...] = ()
    failures: tuple[tuple[Playbook, str], ...] = ()
    """Playbooks that matched but could not be planned, with the reason."""
    sifted: Sifted | None = None
    """The candidates, and those the index of tested fields ruled out."""
    evaluated_rejections: tuple[tuple[Playbook, str], ...] = ()
    """Candidates left to evaluate whose `if`/`unless` (or scope) left the event alone."""

    @property
    def rejections(self) -> tuple[tuple[Playbook, str], ...]:
        """Candidate playbooks whose `if`/`unless` left the event alone, with the condition, in
        the order of the candidates (put together when asked: replay never asks)."""
        return self.sifted.rejections(self.evaluated_rejections) if self.sifted is not None else ()


@dataclass(frozen=True)
class Outcome:
    """What became of one matched playbook: a new incident, or a duplicate of one."""

    playbook: Playbook
    incident: Incident
    duplicate: bool = False
    refused: str | None = None
    """Why the stored incident this event maps to was left alone (changed outside trailguard);
    `incident` is then the one the event would have opened, not the stored one."""


NO_CONTROLS = Controls()
"""No organization settings: every account and region, the playbooks' own modes."""


def decide(
    catalog: Catalog,
    event: Event,
    own: OwnIdentities,
    lists: NamedLists = NO_LISTS,
    controls: Controls = NO_CONTROLS,
) -> Decision:
    """Guards, the organization's scope, then the playbooks that name the event, their
    conditions and scopes, and their plans under the mode ceilings (`lists`: the
    organization's named lists, for `named_list()`; `controls`: its scope and ceilings)."""
    candidates = catalog.candidates(event.source, event.name)
    if not candidates:
        return Decision(event)
    skip = skip_reason(event, own)
    if skip is not None:
        return Decision(event, skip=skip)
    outside = controls.outside(event)
    if outside is not None:
        return Decision(event, skip=Skip("out-of-scope", f"outside the organization's scope: {outside}"))
    plans: list[Plan] = []
    failures: list[tuple[Playbook, str]] = []
    rejections: list[tuple[Playbook, str]] = []
    sifted = catalog.sift(event.source, event.name, event.record)  # the `if`s its tested fields rule out
    for playbook in sifted.remaining:
        try:
            rejection = playbook.rejection(event, lists) or controls.playbook_outside(playbook, event)
            if rejection is not None:
                rejections.append((playbook, rejection))
                continue
            plans.append(controls.ceiling(playbook.plan(event, lists)))
        except (PlanError, ExpressionError) as error:
            # Matched, but not understood: a person must hear of it, so it is not dropped.
            failures.append((playbook, f"{playbook.id}: {error}"))
    return Decision(event, None, tuple(plans), tuple(failures), sifted, tuple(rejections))


class Responder:
    def __init__(
        self,
        catalog: Catalog,
        *,
        own: OwnIdentities,
        incidents: Incidents,
        lists: NamedLists = NO_LISTS,
        controls: Controls = NO_CONTROLS,
        live: Live | None = None,
    ) -> None:
        """`controls`: the organization's scope and ceilings; `live`: what only a running
        stage knows (the kill switch, exceptions, tags), None for replay."""
        self.catalog = catalog
        self.own = own
        self.lists = lists
        self.controls = controls
        self.live = live
        self.incidents = incidents

    def respond(self, event: Event) -> tuple[Decision, list[Outcome]]:
        decision = decide(self.catalog, event, self.own, self.lists, self.controls)
        outcomes: list[Outcome] = []
        for plan in decision.plans:
            notes: tuple[str, ...] = ()
            if self.live is not None:
                checked = self.live.check(plan)
                if checked.outside is not None:
                    log.info(
                        "playbook left the event alone: out of its scope",
                        extra={"eventID": event.event_id, "playbook": plan.playbook.id, "reason": checked.outside},
                    )
                    continue
                plan, notes = checked.plan, checked.notes
            assessed = self.incidents.assess(plan)  # the resource read before acting on it
            if assessed is None:
                log.info("no proposal: the call took nothing away", extra=_where(event, plan.playbook))
                continue
            outcomes.append(self._open(event, plan.playbook, assessed, None, notes))
        outcomes += [self._open(event, playbook, None, error) for playbook, error in decision.failures]
        return decision, outcomes

    def reopen(self, event: Event, playbook: Playbook, steps: tuple[PlannedStep, ...], why: str) -> Outcome | None:
        """Open an incident of `playbook` with a plan already made (an exception expired and the
        sweep found its resource still unsafe; `why` says so in its history): the
        organization's scope, ceilings and what only a running stage knows decide its mode as
        for any event. None when out of scope."""
        if self.controls.outside(event) or self.controls.playbook_outside(playbook, event):
            return None
        plan = self.controls.ceiling(Plan(playbook, event, steps, playbook.mode))
        notes: tuple[str, ...] = ()
        if self.live is not None:
            checked = self.live.check(plan)
            if checked.outside is not None:
                return None
            plan, notes = checked.plan, checked.notes
        assessed = self.incidents.assess(plan)
        if assessed is None:
            return None
        return self._open(event, playbook, assessed, None, (why, *notes))

    def _open(
        self,
        event: Event,
        playbook: Playbook,
        plan: Plan | None,
        error: str | None,
        notes: tuple[str, ...] = (),
    ) -> Outcome:
        mode = plan.mode if plan is not None else playbook.mode
        simulate = plan is not None and (mode == "dry-run" or (self.incidents.simulated and mode == "auto"))
        incident = Incident(
            id=incident_id(event.event_id, playbook.id),
            playbook_id=playbook.id,
            playbook_version=playbook.version,
            title=playbook.title,
            severity=playbook.severity,
            mode=mode,
            event=event.summary(),
            state=State.FAILED if plan is None else State.SIMULATED if simulate else _INITIAL_STATES[mode],
            plan=list(plan.steps) if plan else [],
            error=error,
            mode_note=plan.lowered_by if plan is not None else None,
        )
        incident.notification = self.incidents.notifier.address(incident)
        if simulate and plan is not None:
            incident.steps = [StepResult(s.action, s.params, StepStatus.SIMULATED) for s in plan.steps]
        opening = "; ".join(
            [f"{event.name} by {event.actor.label}", *_instead(playbook, plan), *_mode_notes(incident, notes)]
        )
        try:
            opened = self.incidents.open(incident, TRAILGUARD, opening)
        except IncidentTooLarge as error:
            # The plan cannot be kept, so it cannot be carried out, approved or undone: record
            # that, without the plan, as a failure people are told about.
            incident.plan, incident.steps, incident.history, incident.lease_until = [], [], [], None
            incident.state = State.FAILED
            incident.error = f"nothing was done: the plan is too large to keep ({error})"
            opened = self.incidents.open(incident, TRAILGUARD, opening)
        if not opened:
            return self._duplicate(playbook, incident)
        if isinstance(event, Finding) and event.kind == INSIGHTS:
            self._attach_insight(event, incident)
        if incident.state is State.REMEDIATING:
            try:
                incident = self.incidents.remediate(incident)
            except StaleIncident:
                # Someone else changed the incident between two of our writes (a second
                # delivery of the event, a click): they carry it on, and if they die, the
                # sweep resumes it when the lease runs out. Nothing is run twice.
                log.info("another worker moved the incident; leaving it to them", extra={"incident": incident.id})
                return self._duplicate(playbook, incident)
        self.incidents.tell(incident)
        return Outcome(playbook, incident)

    def _attach_insight(self, insight: Finding, opened: Incident) -> None:
        """Tell the open incidents of the principal behind an insight about it, in their
        history (and so their message's thread): an unusual rate of calls beside a change
        trailguard answered is context people need. Nothing is decided; a failure is logged."""
        principal = _principal(insight.actor.arn or insight.actor.role_arn)
        if principal is None or self.incidents.simulated:
            return
        detail = f"{opened.title}: {insight.name} ({insight.resource}) by this principal; incident {opened.id}"
        try:
            for incident in self.incidents.open_incidents():
                if incident.id != opened.id and _principal(incident.event.actor_arn) == principal:
                    self.incidents.tell(self.incidents.note(incident.id, TRAILGUARD, "insight", detail))
        except Exception:
            log.exception("could not attach insight incident %s to the principal's open incidents", opened.id)

    def _duplicate(self, playbook: Playbook, ours: Incident) -> Outcome:
        """The event was delivered before: finish what a dead worker left, else do nothing.

        A stored incident that fails its seal check is left alone (the store logged it)."""
        try:
            existing = self.incidents.get(ours.id)
        except ChangedOutsideTrailguard as error:
            return Outcome(playbook, ours, duplicate=True, refused=error.reason)
        if existing is None:  # created and expired between two reads: nothing to add
            raise StaleIncident(ours.id)
        version = existing.version
        resumed = self.incidents.resume(existing, TRAILGUARD)
        if resumed.version != version:
            self.incidents.tell(resumed)
        return Outcome(playbook, resumed, duplicate=True)


def _principal(arn: str | None) -> str | None:
    """Who an ARN names, whatever the session: a role session's ARN without its session name."""
    if not arn:
        return None
    if ":assumed-role/" in arn:
        head, _, rest = arn.partition(":assumed-role/")
        return f"{head}:assumed-role/{rest.split('/', 1)[0]}"
    return arn


def _where(event: Event, playbook: Playbook) -> dict[str, str | None]:
    return {"eventID": event.event_id, "eventName": event.name, "account": event.account, "playbook": playbook.id}


def _mode_notes(incident: Incident, notes: tuple[str, ...]) -> list[str]:
    """What the opening's history entry adds: who lowered the mode, what could not be checked."""
    return [*([f"mode {incident.mode_note}"] if incident.mode_note else []), *notes]


def _instead(playbook: Playbook, plan: Plan | None) -> list[str]:
    """Why the playbook itself gave a lower mode (`instead:`, or the resource read first), in
    the words Slack shows: the mode it gave, before any of the organization's ceilings."""
    if plan is None or not plan.because:
        return []
    given = plan.lowered_by.split(" -> ", 1)[0] if plan.lowered_by else plan.mode
    return [f"{given} instead of {playbook.mode}: {plan.because}"]


_INITIAL_STATES = {
    "auto": State.REMEDIATING,
    "approve": State.PROPOSED,
    "notify": State.NOTIFIED,
}
