"""Running an incident's steps, and their undo, so that nothing runs twice and nothing is lost.

Before a step changes anything, its snapshot (what undo needs) is written, once: if the
Lambda dies mid-plan, the incident stays `remediating` with a lease, and whoever comes next
after the lease (a redelivery of the event, the sweep), or a person's Retry after a
failure, goes on with the snapshots already taken and reads the resource's state anew.
After a change, the resource is read back, and the step fails unless it is in the safe
state: a step is never reported done on the word of the call that made it. A snapshot too
large to keep in the incident fails its step before the change: nothing is changed that
could not be undone.

The runner moves the incident when its steps end (finish, fail, refuse an undo) and writes
it through the lifecycle's `save`, the one writer of incidents (see `lifecycle`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from chalicelib.actions import registered_actions
from chalicelib.actions.base import Action, UndoRefused
from chalicelib.aws.errors import ActionError, describe_error
from chalicelib.aws.retrying import eventually
from chalicelib.aws.seals import ChangedOutsideTrailguard
from chalicelib.incidents.model import TRAILGUARD, Incident, StepResult, StepStatus
from chalicelib.incidents.store import IncidentTooLarge, StaleIncident
from chalicelib.playbooks.plan import PlannedStep
from chalicelib.text import cut

log = logging.getLogger("trailguard")

_DONE = (StepStatus.APPLIED, StepStatus.ALREADY_SAFE)


class Binder(Protocol):
    def bind(
        self,
        action: str,
        params: Mapping[str, Any],
        *,
        account: str | None,
        region: str,
        remembered: dict[str, Any] | None = None,
        incident_id: str | None = None,
    ) -> Action:
        """The action, ready to act in `account` and `region` (`actions.binding.ActionBinder`)."""


class Simulated:
    """What a lifecycle without actions binds a step to (replay, the Slack endpoint): nothing."""

    def bind(
        self,
        action: str,
        params: Mapping[str, Any],
        *,
        account: str | None,
        region: str,
        remembered: dict[str, Any] | None = None,
        incident_id: str | None = None,
    ) -> Action:
        raise RuntimeError("a simulated lifecycle cannot remediate")


class StepRunner:
    def __init__(
        self,
        actions: Binder,
        *,
        save: Callable[[Incident], None],
        clock: Callable[[], dt.datetime],
        undone: Callable[[Incident], None],
    ) -> None:
        """`save(incident)` writes it (conditionally, with its lease); `undone(incident)` is
        told of every undo that put all its steps back, before the incident is moved."""
        self.actions = actions
        self.save = save
        self.clock = clock
        self.undone = undone

    def look(
        self, steps: Sequence[PlannedStep], mode: str, *, account: str | None, region: str
    ) -> tuple[str, str | None] | None:
        """Read what a plan would act on before its incident opens, and say in which mode
        to open it (with the reason when it changed), or None when nothing is to be opened.

        Automatic steps whose resource carries a workload the fix would break (`workload`)
        make the plan a proposal: a person decides. A proposal whose every step's action
        says a safe resource means there is nothing to propose (`propose_only_if_unsafe`:
        the call took nothing away, or the resource is not one the playbook guards), and
        finds it safe, is not made. A resource that cannot be read is not taken for safe:
        an automatic step is then proposed, a proposal is made."""
        if mode == "auto":
            reasons = [reason for step in steps if (reason := self._workload(step, account, region))]
            return ("approve", "; ".join(reasons)) if reasons else (mode, None)
        classes = [registered_actions().get(step.action) for step in steps]
        if mode == "approve" and steps and all(c is not None and c.propose_only_if_unsafe for c in classes):
            try:
                actions = [self.actions.bind(s.action, s.params, account=account, region=region) for s in steps]
                if all(action.check(action.snapshot()) for action in actions):
                    return None
            except Exception as error:
                log.info("proposing: the resource could not be compared", extra={"reason": describe_error(error)})
        return mode, None

    def _workload(self, step: PlannedStep, account: str | None, region: str) -> str | None:
        action_class = registered_actions().get(step.action)
        if action_class is None or action_class.workload is Action.workload:
            return None
        try:
            return self.actions.bind(step.action, step.params, account=account, region=region).workload()
        except Exception as error:
            return f"{step.action} could not read what its fix might break ({describe_error(error)})"

    def remediate(self, incident: Incident) -> Incident:
        """Run (or go on running) the steps of an incident in `remediating`."""
        account, region = incident.event.account, incident.event.region
        for index, planned in enumerate(incident.plan):
            if planned.contain and not incident.containment_approved:
                break  # the second response: containing the actor waits for a person
            result = incident.steps[index] if index < len(incident.steps) else None
            if result is not None and result.status in _DONE:
                continue
            try:
                action = self._bind(planned, account, region, incident.id)
                current = action.snapshot()
                if result is None or result.before is None:
                    before = current
                    result = StepResult(planned.action, planned.params, StepStatus.APPLYING, before=before)
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
            self.save(incident)
        except IncidentTooLarge:
            # What the steps left does not fit beside the rest: the changes are made, so they
            # are recorded, without those states (undo then refuses, saying why).
            for step in incident.steps:
                if step.status is StepStatus.APPLIED and step.after is not None:
                    step.after = None
                    step.note = "the state it left was too large to keep, so it cannot be undone"
            self.save(incident)
        return incident

    def undo(self, incident: Incident) -> Incident:
        """Put back, last first, what the applied steps of an incident in `undoing` changed
        (a Release: what its `contain:` steps changed, and nothing else)."""
        account, region = incident.event.account, incident.event.region
        releasing = incident.releasing
        restored = 0
        for index in reversed(range(len(incident.steps))):
            result = incident.steps[index]
            if result.status is not StepStatus.APPLIED:
                continue
            if releasing and not (index < len(incident.plan) and incident.plan[index].contain):
                continue
            try:
                if result.before is None or result.after is None:
                    raise UndoRefused(
                        "the state it left was not kept (too large), so whether the resource changed since "
                        "cannot be told"
                    )
                remembered = incident.plan[index].remembered if index < len(incident.plan) else None
                step = PlannedStep(result.action, result.params, remembered)
                action = self._bind(step, account, region, incident.id)
                action.undo(result.before, result.after)
                if action.note:  # what undo left on purpose (evidence kept)
                    result.note = cut(action.note)
            except Exception as error:
                detail = f"undo of step {index + 1} ({result.action}): {describe_error(error)}"
                if restored:
                    incident.error = f"{detail}; {restored} later step(s) were already put back"
                    incident.move("fail", TRAILGUARD, incident.error, self.clock())
                else:
                    incident.move("refuse_undo", TRAILGUARD, f"{detail}; nothing was changed", self.clock())
                self.save(incident)
                return incident
            result.status = StepStatus.UNDONE
            restored += 1
            self.save(incident)  # so that a resumed undo does not try to put it back twice
        if releasing:  # the repair stands: nothing for the sweep to honour
            incident.move("finish_release", TRAILGUARD, now=self.clock())
            self.save(incident)
            return incident
        self.undone(incident)  # a resume records it too
        incident.move("finish_undo", TRAILGUARD, now=self.clock())
        self.save(incident)
        return incident

    def _bind(self, step: PlannedStep, account: str | None, region: str, incident_id: str) -> Action:
        return self.actions.bind(
            step.action,
            step.params,
            account=account,
            region=region,
            remembered=step.remembered,
            incident_id=incident_id,
        )

    def _keep_snapshot(self, incident: Incident, result: StepResult) -> None:
        """Write the step's snapshot; one too large to keep fails the step here, before the
        change, rather than make a change that could not be undone."""
        try:
            self.save(incident)
        except IncidentTooLarge as error:
            result.before = None
            raise ActionError(
                f"the resource's state is too large to keep for undo ({error}): nothing was changed"
            ) from None

    def _fail_step(
        self, incident: Incident, index: int, planned: PlannedStep, result: StepResult | None, error: Exception
    ) -> Incident:
        if not hasattr(error, "response") and not isinstance(error, (ActionError, ChangedOutsideTrailguard)):
            log.exception("unexpected error in %s for incident %s", planned.action, incident.id)
        result = result or StepResult(planned.action, planned.params, StepStatus.FAILED)
        result.status = StepStatus.FAILED
        result.error = describe_error(error)
        _put_step(incident, index, result)
        for later, rest in enumerate(incident.plan[index + 1 :], index + 1):
            if later >= len(incident.steps) or incident.steps[later].status not in _DONE:
                _put_step(incident, later, StepResult(rest.action, rest.params, StepStatus.NOT_RUN))
        incident.error = f"step {index + 1} ({planned.action}): {result.error}"
        incident.move("fail", TRAILGUARD, incident.error, self.clock())
        self.save(incident)
        return incident


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
        incident.steps.append(StepResult(planned.action, planned.params, StepStatus.NOT_RUN))
    incident.steps[index] = result
