"""Moving an incident through its states, and running its steps, so that nothing runs twice
and nothing is lost.

Every move is `Incident.move` (the legal-transition table) followed by a conditional
write: of two clicks, two Lambdas or a retry, one wins and the other is refused. Before a
step changes anything, its snapshot (what undo needs) is written, once: if the Lambda dies
mid-plan, the incident stays `remediating` with a lease, and whoever comes next after the
lease (a redelivery of the event, the sweep), or a person's Retry after a failure, goes on
with the snapshots already taken and reads the resource's state anew. After a change, the
resource is read back, and the step fails unless it is in the safe state: a step is never
reported done on the word of the call that made it.
A snapshot too large to keep in the incident fails its step before the change: nothing is
changed that could not be undone.

Without an action binder, steps are simulated (replay): nothing calls AWS.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from chalicelib.actions import Action, ActionError, registered_actions
from chalicelib.actions.base import ActionContext, UndoRefused
from chalicelib.aws.errors import describe_error
from chalicelib.aws.retrying import eventually
from chalicelib.aws.seals import ChangedOutsideTrailguard
from chalicelib.clock import timestamp, utc_now
from chalicelib.incidents import BUSY_STATES, IllegalTransition, Incident, State, StepResult, StepStatus, cut
from chalicelib.memory import decisions, rules
from chalicelib.memory.rules import Memory
from chalicelib.store import IncidentStore, IncidentTooLarge, StaleIncident

log = logging.getLogger("trailguard")

TRAILGUARD = "trailguard"
"""Who the history names for what trailguard does on its own."""

DEFAULT_LEASE_SECONDS = 120
"""How long a worker owns a busy incident; longer than the Lambda timeout (60 s)."""

_DONE = (StepStatus.APPLIED, StepStatus.ALREADY_SAFE)


class ActionBinder(Protocol):
    def bind(self, step: Mapping[str, Any], account: str | None, region: str, incident_id: str | None = None) -> Action:
        """The action of a planned step ({action, params, remembered}), ready to act in
        `account` and `region`."""


class UnknownIncident(LookupError):
    """No incident has this id (or it has expired)."""


class Lifecycle:
    def __init__(
        self,
        store: IncidentStore,
        actions: ActionBinder | None,
        *,
        memory: Memory | None = None,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.store = store
        self.memory = memory
        self.actions = actions
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.clock = clock

    @property
    def simulated(self) -> bool:
        return self.actions is None

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

    def claim(
        self, incident_id: str, transition: str, who: str, detail: str | None = None, *, read: Incident | None = None
    ) -> Incident:
        """Make a decision on the stored incident: move it by `transition`, written only if
        nobody moved it first (else it is judged again on what they left, once).

        A click does this while Slack waits; the AWS work it leads to is `carry_out`, which
        may run elsewhere (the async worker). `read` is the incident as its caller just read
        it from the store, saving a second read; the write is conditional on it all the same.
        """
        for attempt in range(2):
            incident = read if attempt == 0 and read is not None else self._load(incident_id)
            if transition == "retry" and not incident.plan:
                raise IllegalTransition(
                    f"cannot retry incident {incident_id}: it has no plan ({incident.error}); fix the playbook, "
                    "then acknowledge"
                )
            incident.move(transition, who, detail, self.clock())
            try:
                self._save(incident)
                return incident
            except StaleIncident:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def carry_out(self, incident: Incident) -> Incident:
        """The work a claimed incident waits for: its steps (remediating), their undo, or,
        after a denial, recording for the sweep that people left the resource as it is."""
        if incident.state is State.REMEDIATING:
            return self.remediate(incident)
        if incident.state is State.UNDOING:
            return self._undo(incident)
        if incident.state is State.DENIED:
            self._accept(incident)
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
            pass  # moved on meanwhile, by someone who writes it in turn
        return incident

    def resume(self, incident: Incident, who: str) -> Incident:
        """Finish a busy incident whose worker died (its lease ran out); else leave it."""
        if incident.state not in BUSY_STATES or not incident.lease_expired(self.clock()):
            return incident
        incident.record(who, "resume", f"the worker's lease ran out at {incident.lease_until}", self.clock())
        self._save(incident)
        return self.carry_out(incident)

    # -- used by the responder for a new auto-mode incident ----------------------------------

    def open(self, incident: Incident, who: str, detail: str | None = None) -> bool:
        """Record a new incident (False if one with its id exists: a duplicate delivery)."""
        incident.created_at = timestamp(self.clock())  # approval timeouts are measured on this clock
        incident.record(who, "open", detail, self.clock())
        self._recall(incident)
        if incident.state in BUSY_STATES:
            incident.lease_until = timestamp(self.clock() + self.lease)
        return self.store.create(incident)

    def _recall(self, incident: Incident) -> None:
        """Keep in the plan the configurations its steps will restore, as known now, and
        hold them (`rules.hold`): until people decide, nothing is remembered over them,
        not the change this incident is about, nor one made meanwhile."""
        if self.memory is None:
            return
        context = ActionContext(incident.event.get("account"), incident.event.get("region"), self.memory)
        for step in incident.plan:
            action_class = registered_actions().get(step["action"])
            if action_class is None:
                continue
            try:
                for key in action_class.memory_keys(step["params"], context):
                    rules.hold(self.memory, key, incident.id)
                remembered = action_class.recall(step["params"], context)
            except ChangedOutsideTrailguard:
                continue  # logged; the step recalls it again when it runs, and fails saying why
            if remembered is not None:
                step["remembered"] = remembered

    # -- the work ---------------------------------------------------------------------------

    def remediate(self, incident: Incident) -> Incident:
        """Run (or go on running) the steps of an incident in `remediating`."""
        account, region = incident.event.get("account"), incident.event["region"]
        for index, planned in enumerate(incident.plan):
            result = incident.steps[index] if index < len(incident.steps) else None
            if result is not None and result.status in _DONE:
                continue
            try:
                if self.actions is None:
                    raise RuntimeError("a simulated lifecycle cannot remediate")
                action = self.actions.bind(planned, account, region, incident.id)
                current = action.snapshot()
                if result is None or result.before is None:
                    before = current
                    result = StepResult(planned["action"], planned["params"], StepStatus.APPLYING, before=before)
                    _put_step(incident, index, result)
                    self._keep_snapshot(incident, result)  # before any change: undo needs it if we die now
                else:
                    # A resume or a retry: an earlier attempt may have changed the resource
                    # half-way; what undo must restore is still the snapshot it took first.
                    before = result.before
                    result.status, result.error = StepStatus.APPLYING, None
                if action.check(current):
                    # Safe now; if it was not at the snapshot, an earlier attempt made it so.
                    result.status = StepStatus.ALREADY_SAFE if action.check(before) else StepStatus.APPLIED
                    result.after = current
                else:
                    action.apply(current)
                    result.after = _read_back(action)
                    result.status = StepStatus.APPLIED
                result.error, result.note = None, cut(action.note) if action.note else None
            except StaleIncident:
                raise
            except Exception as error:
                return self._fail_step(incident, index, planned, result, error)
        incident.error = None
        incident.move("finish", TRAILGUARD, now=self.clock())
        try:
            self._save(incident)
        except IncidentTooLarge:
            # What the steps left does not fit beside the rest: the changes are made, so they
            # are recorded, without those states (undo then refuses, saying why).
            for step in incident.steps:
                if step.status is StepStatus.APPLIED and step.after is not None:
                    step.after = None
                    step.note = "the state it left was too large to keep, so it cannot be undone"
            self._save(incident)
        return incident

    def _keep_snapshot(self, incident: Incident, result: StepResult) -> None:
        """Write the step's snapshot; one too large to keep fails the step here, before the
        change, rather than make a change that could not be undone."""
        try:
            self._save(incident)
        except IncidentTooLarge as error:
            result.before = None
            raise ActionError(
                f"the resource's state is too large to keep for undo ({error}): nothing was changed"
            ) from None

    def _fail_step(
        self, incident: Incident, index: int, planned: Mapping[str, Any], result: StepResult | None, error: Exception
    ) -> Incident:
        if not hasattr(error, "response") and not isinstance(error, (ActionError, ChangedOutsideTrailguard)):
            log.exception("unexpected error in %s for incident %s", planned["action"], incident.id)
        result = result or StepResult(planned["action"], planned["params"], StepStatus.FAILED)
        result.status = StepStatus.FAILED
        result.error = describe_error(error)
        _put_step(incident, index, result)
        for later, rest in enumerate(incident.plan[index + 1 :], index + 1):
            if later >= len(incident.steps) or incident.steps[later].status not in _DONE:
                _put_step(incident, later, StepResult(rest["action"], rest["params"], StepStatus.NOT_RUN))
        incident.error = f"step {index + 1} ({planned['action']}): {result.error}"
        incident.move("fail", TRAILGUARD, incident.error, self.clock())
        self._save(incident)
        return incident

    def _undo(self, incident: Incident) -> Incident:
        account, region = incident.event.get("account"), incident.event["region"]
        restored = 0
        for index in reversed(range(len(incident.steps))):
            result = incident.steps[index]
            if result.status is not StepStatus.APPLIED:
                continue
            try:
                if result.before is None or result.after is None:
                    raise UndoRefused(
                        "the state it left was not kept (too large), so whether the resource changed since "
                        "cannot be told"
                    )
                if self.actions is None:
                    raise RuntimeError("a simulated lifecycle cannot undo")
                planned = incident.plan[index] if index < len(incident.plan) else {}
                step = {**planned, "action": result.action, "params": result.params}
                action = self.actions.bind(step, account, region, incident.id)
                action.undo(result.before, result.after)
            except Exception as error:
                detail = f"undo of step {index + 1} ({result.action}): {describe_error(error)}"
                if restored:
                    incident.error = f"{detail}; {restored} later step(s) were already put back"
                    incident.move("fail", TRAILGUARD, incident.error, self.clock())
                else:
                    incident.move("refuse_undo", TRAILGUARD, f"{detail}; nothing was changed", self.clock())
                self._save(incident)
                return incident
            result.status = StepStatus.UNDONE
            restored += 1
            self._save(incident)  # so that a resumed undo does not try to put it back twice
        self._record_decision(incident, "undo")  # a resume records it
        incident.move("finish_undo", TRAILGUARD, now=self.clock())
        self._save(incident)
        return incident

    def _accept(self, incident: Incident) -> None:
        """After a denial: record that people left the resource as it is, for the sweep. The
        denial stands if this fails (logged): the sweep would only propose again."""
        try:
            self._record_decision(incident, "deny")
        except Exception:
            log.exception("could not record the denial of incident %s for the sweep", incident.id)

    def _record_decision(self, incident: Incident, transition: str) -> None:
        """Record, for the sweep, that people left the incident's resource as it is."""
        if self.memory is not None:
            decisions.record(self.memory, incident.id, incident.event, _decided_by(incident, transition), self.clock())

    # -- the store --------------------------------------------------------------------------

    def _load(self, incident_id: str) -> Incident:
        incident = self.store.get(incident_id)
        if incident is None:
            raise UnknownIncident(f"no incident {incident_id} (it may have expired)")
        return incident

    def _save(self, incident: Incident) -> None:
        incident.lease_until = timestamp(self.clock() + self.lease) if incident.state in BUSY_STATES else None
        self.store.save(incident)


def _decided_by(incident: Incident, transition: str) -> str:
    return next((entry.who for entry in reversed(incident.history) if entry.what == transition), TRAILGUARD)


def _read_back(action: Action) -> dict[str, Any]:
    """The resource as AWS shows it after `apply`, which must be safe. An action whose
    changes AWS documents as showing late is read again a few times first."""
    if action.eventually_consistent:
        after = eventually(action.snapshot, until=action.check)
    else:
        after = action.snapshot()
    if not action.check(after):
        raise ActionError(
            f"{action.name} was applied, but the resource read back is still not safe: {_brief(after)}; "
            "nothing is reported done"
        )
    return after


def _brief(state: Mapping[str, Any], limit: int = 300) -> str:
    text = json.dumps(state, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _put_step(incident: Incident, index: int, result: StepResult) -> None:
    while len(incident.steps) <= index:
        planned = incident.plan[len(incident.steps)]
        incident.steps.append(StepResult(planned["action"], planned["params"], StepStatus.NOT_RUN))
    incident.steps[index] = result
