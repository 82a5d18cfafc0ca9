"""The one door to the incidents: every read and write of an incident, and every move of
its state, goes through `Incidents`, so that nothing runs twice and nothing is lost.

Every move is `Incident.move` (the legal-transition table) followed by a conditional write:
of two clicks, two Lambdas or a retry, one wins and the other is refused. A write that loses
its race is tried again on the incident as the other writer left it, at most
`WRITE_ATTEMPTS` times in all: a decision is judged again on that state, and the record of
what an incident's message shows is merged into it. Running the steps is `steps`; telling
people is the notifier's (`notify`), whose bookkeeping (where the message is, what it shows)
is written here.

Without actions (replay, the Slack endpoint, which records decisions and runs nothing),
steps cannot run: a remediation would fail saying so.

Other tools hear of an incident through `changes` (`incidents.changes`), told after the
write that opened it or brought it to rest succeeded, and never by a write the store refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from chalicelib.actions import registered_actions
from chalicelib.actions.base import ActionContext
from chalicelib.aws.seals import ChangedOutsideTrailguard
from chalicelib.clock import timestamp, utc_now
from chalicelib.incidents.changes import NO_CHANGES, StateChanges, tell_opened, tell_rested
from chalicelib.incidents.exceptions import Exceptions
from chalicelib.incidents.model import (
    BUSY_STATES,
    OPEN_STATES,
    TRAILGUARD,
    IllegalTransition,
    Incident,
    State,
    stance,
)
from chalicelib.incidents.notify import Notifier, NullNotifier
from chalicelib.incidents.store import IncidentStore, IncidentTooLarge, StaleIncident, UnreadableIncident
from chalicelib.memory import rules
from chalicelib.memory.rules import Memory, Stance

if TYPE_CHECKING:
    from chalicelib.incidents.steps import Binder, StepRunner
    from chalicelib.playbooks.playbook import Plan

log = logging.getLogger("trailguard")

__all__ = ["IncidentTooLarge", "Incidents", "StaleIncident", "UnknownIncident", "UnreadableIncident"]
"""The door, and the errors its callers meet (the store's, for whoever writes through it)."""

DEFAULT_LEASE_SECONDS = 120
"""How long a worker owns a busy incident; longer than the Lambda timeout (60 s)."""
WRITE_ATTEMPTS = 3
"""How many times a write is tried when someone else wrote the incident first, each time on
what they left: a decision judged again, a message's bookkeeping merged. Then it gives up."""


class UnknownIncident(LookupError):
    """No incident has this id (or it has expired)."""


class Incidents:
    def __init__(
        self,
        store: IncidentStore,
        actions: Binder | None = None,
        *,
        memory: Memory | None = None,
        notifier: Notifier | None = None,
        changes: StateChanges = NO_CHANGES,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], dt.datetime] = utc_now,
        gate: Callable[[], str | None] | None = None,
        exceptions: Exceptions | None = None,
    ) -> None:
        """`store`: where they are kept (sealed for the acting functions); `actions` binds a
        planned step to AWS (None: simulated); `memory`: the configurations an incident's
        steps restore, and the decisions the sweep honours; `notifier` tells people;
        `changes` tells other tools (metrics, findings, events) what opened and where it rests;
        `gate()` says why no step may run now (the stage is paused), None when they may;
        `exceptions`: the exceptions kept beside the incidents (None: none are kept)."""
        self.gate = gate
        self.exceptions = exceptions
        self.store = store
        self.memory = memory
        self.notifier = notifier or NullNotifier()
        self.changes = changes
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.clock = clock
        self.simulated = actions is None
        self._actions = actions

    @functools.cached_property
    def steps(self) -> StepRunner:
        """What runs the steps and their undo; built (and imported) when some incident first
        has steps to run: the Slack endpoint, which only decides, never pays for it."""
        from chalicelib.incidents.steps import Simulated, StepRunner

        return StepRunner(
            self._actions or Simulated(),
            save=self._save,
            clock=lambda: self.clock(),
            undone=lambda incident: self._record_decision(incident, "undo"),
        )

    # -- reads -------------------------------------------------------------------------------

    def get(self, incident_id: str) -> Incident | None:
        """The incident as stored, None if there is none (sealed store: ChangedOutsideTrailguard
        if it is not as trailguard left it)."""
        return self.store.get(incident_id)

    def load(self, incident_id: str) -> Incident:
        incident = self.store.get(incident_id)
        if incident is None:
            raise UnknownIncident(f"no incident {incident_id} (it may have expired)")
        return incident

    def open_incidents(
        self, states: Iterable[State] = OPEN_STATES, *, unreadable: list[UnreadableIncident] | None = None
    ) -> list[Incident]:
        """Incidents in `states`, oldest first; a damaged one is added to `unreadable` (raised without it)."""
        return self.store.open_incidents(states, unreadable=unreadable)

    def unannounced(self, *, unreadable: list[UnreadableIncident] | None = None) -> list[Incident]:
        """Incidents whose message does not show their latest change."""
        return self.store.unannounced(unreadable=unreadable)

    def proposed_containments(self, *, unreadable: list[UnreadableIncident] | None = None) -> list[Incident]:
        """Remediated incidents whose containment waits for a person (the sweep expires them)."""
        return self.store.proposed_containments(unreadable=unreadable)

    def stance(self, incident_id: str) -> Stance:
        """Where the incident stands on the change it was opened on (what memory asks)."""
        return stance(self.store.get(incident_id))

    # -- opening -----------------------------------------------------------------------------

    def open(self, incident: Incident, who: str, detail: str | None = None) -> bool:
        """Record a new incident (False if one with its id exists: a duplicate delivery)."""
        incident.created_at = timestamp(self.clock())  # approval timeouts are measured on this clock
        incident.record(who, "open", detail, self.clock())
        self._recall(incident)
        if incident.state in BUSY_STATES:
            incident.lease_until = timestamp(self.clock() + self.lease)
        if not self.store.create(incident):
            return False
        tell_opened(self.changes, incident)
        if incident.state not in BUSY_STATES:
            tell_rested(self.changes, incident)
        return True

    def _recall(self, incident: Incident) -> None:
        """Keep in the plan the configurations its steps will restore, as known now, and
        hold them (`rules.hold`): until people decide, nothing is remembered over them,
        not the change this incident is about, nor one made meanwhile."""
        if self.memory is None:
            return
        context = ActionContext(incident.event.account, incident.event.region, self.memory)
        for index, step in enumerate(incident.plan):
            action_class = registered_actions().get(step.action)
            if action_class is None:
                continue
            try:
                for key in action_class.memory_keys(step.params, context):
                    rules.hold(self.memory, key, incident.id)
                remembered = action_class.recall(step.params, context)
            except ChangedOutsideTrailguard:
                continue  # logged; the step recalls it again when it runs, and fails saying why
            if remembered is not None:
                incident.plan[index] = dataclasses.replace(step, remembered=remembered)

    def assess(self, plan: Plan) -> Plan | None:
        """The plan as the resources it acts on allow, read before its incident opens
        (`StepRunner.look`): an automatic fix that would break a workload becomes a
        proposal, saying why; a proposal for a change that took nothing away is not made
        (None). Without actions (replay) nothing can be read: the plan as decided."""
        if self.simulated or plan.mode not in ("auto", "approve"):
            return plan
        looked = self.steps.look(plan.steps, plan.mode, account=plan.event.account, region=plan.event.region)
        if looked is None:
            return None
        mode, because = looked
        return plan if mode == plan.mode else dataclasses.replace(plan, mode=mode, because=because)

    # -- decisions by people (Slack) and by the sweep ---------------------------------------

    def approve(self, incident_id: str, who: str) -> Incident:
        return self.carry_out(self.claim(incident_id, "approve", who))

    def retry(self, incident_id: str, who: str) -> Incident:
        return self.carry_out(self.claim(incident_id, "retry", who))

    def undo(self, incident_id: str, who: str) -> Incident:
        return self.carry_out(self.claim(incident_id, "undo", who))

    def deny(self, incident_id: str, who: str, detail: str | None = None) -> Incident:
        return self.carry_out(self.claim(incident_id, "deny", who, detail))

    def acknowledge(self, incident_id: str, who: str, detail: str | None = None) -> Incident:
        return self.claim(incident_id, "acknowledge", who, detail)

    def expire(self, incident_id: str, who: str, detail: str | None = None) -> Incident:
        return self.claim(incident_id, "expire", who, detail)

    def expire_containment(self, incident_id: str, who: str, detail: str | None = None) -> Incident:
        """Nobody answered the proposal to contain the actor: the repair stands alone."""
        return self.claim(incident_id, "expire_containment", who, detail)

    def note(self, incident_id: str, who: str, what: str, detail: str | None = None) -> Incident:
        """Add a decision to the incident's history without moving it (an exception asked for,
        made or refused), written only if nobody wrote it first (else added to theirs)."""

        def write(attempt: int) -> Incident:
            incident = self.load(incident_id)
            incident.record(who, what, detail, self.clock())
            self._save(incident)
            return incident

        return _raced(write)

    def claim(
        self, incident_id: str, transition: str, who: str, detail: str | None = None, *, read: Incident | None = None
    ) -> Incident:
        """Make a decision on the stored incident: move it by `transition`, written only if
        nobody moved it first (else it is judged again on what they left).

        A click does this while Slack waits; the AWS work it leads to is `carry_out`, which
        may run elsewhere (the async worker). `read` is the incident as its caller just read
        it from the store, saving a second read; the write is conditional on it all the same.
        """

        def decide(attempt: int) -> Incident:
            incident = read if attempt == 0 and read is not None else self.load(incident_id)
            if transition == "retry" and not incident.plan:
                raise IllegalTransition(
                    f"cannot retry incident {incident_id}: it has no plan ({incident.error}); fix the playbook, "
                    "then acknowledge"
                )
            incident.move(transition, who, detail, self.clock())
            self._save(incident)
            return incident

        return _raced(decide)

    def carry_out(self, incident: Incident) -> Incident:
        """The work a claimed incident waits for: its steps (remediating), their undo, or,
        after a denial, recording for the sweep that people left the resource as it is."""
        if incident.state is State.REMEDIATING:
            return self.remediate(incident)
        if incident.state is State.UNDOING:
            halted = self._halted(incident)
            return halted if halted is not None else self.steps.undo(incident)
        if incident.state is State.DENIED:
            self._accept(incident)
        return incident

    def remediate(self, incident: Incident) -> Incident:
        """Run (or go on running) the steps of an incident in `remediating`."""
        halted = self._halted(incident)
        return halted if halted is not None else self.steps.remediate(incident)

    def _halted(self, incident: Incident) -> Incident | None:
        """While the stage is paused, a busy incident runs nothing: its remediation fails and
        its undo is refused, each saying why and what to press after `trailguard resume`."""
        reason = self.gate() if self.gate is not None else None
        if reason is None:
            return None
        if incident.state is State.UNDOING:
            incident.move("refuse_undo", TRAILGUARD, f"{reason}: nothing was put back; press Undo again after resume")
        else:
            incident.error = f"{reason}: the steps that had not run were not run; Retry after resume"
            incident.move("fail", TRAILGUARD, incident.error)
        self._save(incident)
        log.warning("paused: nothing run", extra={"incident": incident.id, "reason": reason})
        return incident

    def settle(self, incident: Incident) -> Incident:
        """Write again, under trailguard's own seal, an incident a click moved to a state
        with no work to do (denied, acknowledged): whoever can write the table can then not
        put it back to the state before the click. The work of a busy one seals it anyway."""
        if incident.sealed_state is None or incident.state is incident.sealed_state or incident.state in BUSY_STATES:
            return incident
        try:
            self._save(incident)
        except StaleIncident:
            return incident  # moved on meanwhile, by someone who writes it in turn (and tells)
        tell_rested(self.changes, incident)  # the click's state, first written by an acting function
        return incident

    def resume(self, incident: Incident, who: str) -> Incident:
        """Finish a busy incident whose worker died (its lease ran out); else leave it."""
        if incident.state not in BUSY_STATES or not incident.lease_expired(self.clock()):
            return incident
        incident.record(who, "resume", f"the worker's lease ran out at {incident.lease_until}", self.clock())
        self._save(incident)
        return self.carry_out(incident)

    def _accept(self, incident: Incident) -> None:
        """After a denial: record that people left the resource as it is, for the sweep. The
        denial stands if this fails (logged): the sweep would only propose again."""
        try:
            self._record_decision(incident, "deny")
        except Exception:
            log.exception("could not record the denial of incident %s for the sweep", incident.id)

    def _record_decision(self, incident: Incident, transition: str) -> None:
        """Record, for the sweep, that people left the incident's resource as it is."""
        from chalicelib.memory import decisions  # imported by the functions that record one only

        if self.memory is not None:
            decisions.record(self.memory, incident.id, incident.event, _decided_by(incident, transition), self.clock())

    # -- telling people ---------------------------------------------------------------------

    def notify(self, incident: Incident) -> None:
        """Tell people about the incident as it is now (may raise), and record what its
        message shows: where it is, how much of the history, the last delivery error.

        When someone else wrote the incident meanwhile, the record is merged into what they
        left and the message brought up to date again; a busy incident is left to its
        worker, which tells people when it is done (a write now would fail its next one).
        """
        shown = dict(incident.notification) if incident.notification is not None else None
        self.notifier.notify(incident)
        self._record_notification(incident, shown)

    def tell_all(self, incidents: list[Incident]) -> None:
        """`tell` several at once (the sweep), so that the notifier may group a burst."""
        shown = {i.id: dict(i.notification) if i.notification is not None else None for i in incidents}
        try:
            self.notifier.notify_all(incidents)
        except Exception:
            log.exception("could not notify about %d incidents", len(incidents))
        for incident in incidents:
            try:
                self._record_notification(incident, shown[incident.id])
            except Exception:
                log.exception("could not record the message of incident %s", incident.id)

    def _record_notification(self, incident: Incident, shown: dict[str, Any] | None) -> None:
        """Write what the incident's message shows now, unless nothing changed."""
        if incident.notification == shown:
            return  # nothing to record: no message, or it was up to date

        def record(attempt: int) -> Incident | None:
            nonlocal incident
            if attempt:
                fresh = self._merged(incident)
                if fresh is None:
                    return None
                incident = fresh
                if incident.notification_due:
                    self.notifier.notify(incident)
            self.store.save(incident)
            return incident

        try:
            _raced(record)
        except StaleIncident:
            pass  # others kept writing it: the sweep delivers what is still due

    def tell(self, incident: Incident) -> None:
        """`notify`, for callers that go on whatever happens: a failure is logged, never
        raised (the incident is already recorded; the sweep delivers what is still due)."""
        try:
            self.notify(incident)
        except Exception:
            log.exception("could not notify about incident %s", incident.id)

    def _merged(self, incident: Incident) -> Incident | None:
        """The stored incident, moved on by someone else meanwhile, with where our message is."""
        fresh = self.store.get(incident.id)
        if fresh is None or fresh.state in BUSY_STATES:
            return None
        ours, theirs = incident.notification or {}, dict(fresh.notification or {})
        if ours.get("ts") and not theirs.get("ts"):
            theirs.update(channel=ours["channel"], ts=ours["ts"])
        if ours.get("ts") == theirs.get("ts") and ours.get("shown") == fresh.history_count:
            theirs["shown"] = ours["shown"]
        fresh.notification = theirs
        return fresh

    # -- the store --------------------------------------------------------------------------

    def _save(self, incident: Incident) -> None:
        """Write the incident (conditionally) with its lease; once the write of a new resting
        state succeeded, tell `changes`."""
        before = incident.stored_state
        incident.lease_until = timestamp(self.clock() + self.lease) if incident.state in BUSY_STATES else None
        self.store.save(incident)
        if incident.state is not before and incident.state not in BUSY_STATES:
            tell_rested(self.changes, incident)


def _raced[T](write: Callable[[int], T]) -> T:
    """`write(attempt)`, again while someone else wrote the incident first (StaleIncident),
    at most WRITE_ATTEMPTS times; the last StaleIncident is raised."""
    for attempt in range(WRITE_ATTEMPTS):
        try:
            return write(attempt)
        except StaleIncident:
            if attempt == WRITE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _decided_by(incident: Incident, transition: str) -> str:
    return next((entry.who for entry in reversed(incident.history) if entry.what == transition), TRAILGUARD)
