"""Upkeep of the incidents, on the sweep's schedule: proposals nobody answered in time are
expired, incidents whose worker died are resumed, and messages Slack did not take (or a
worker died before sending) are delivered.

A click whose hand-over to the worker failed is finished here as the worker would have: a
denial recorded for the sweep, the incident sealed in the state the click chose and told
(`Incidents.settle`). What is still due after delivery is counted (`pending`, and how long
the oldest change has waited) for the Slack backlog metric.

Each incident is handled on its own: one that cannot be read or written is reported with
its id, and the others go on. A busy incident is left to its worker until its lease runs
out; its worker sends its message when done.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chalicelib.aws.errors import describe_error
from chalicelib.aws.seals import ChangedOutsideTrailguard
from chalicelib.events.synthetic import SWEEPER
from chalicelib.incidents.lifecycle import Incidents, StaleIncident, UnreadableIncident
from chalicelib.incidents.model import BUSY_STATES, IllegalTransition, Incident, State
from chalicelib.playbooks.catalog import Catalog

log = logging.getLogger("trailguard")

DEFAULT_APPROVAL_TIMEOUT = dt.timedelta(hours=24)


@dataclass
class UpkeepReport:
    expired: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pending: int = 0
    """Incidents whose message still does not show their latest change."""
    oldest_pending_seconds: float = 0.0
    """How long the oldest change not shown in Slack has waited."""

    def error(self, text: str) -> None:
        """Report a problem once, however many parts of the sweep meet it."""
        if text not in self.errors:
            self.errors.append(text)


class Upkeep:
    def __init__(self, incidents: Incidents, catalog: Catalog) -> None:
        """`catalog`: the playbooks, whose approval timeouts decide what has expired."""
        self.incidents = incidents
        self.catalog = catalog

    def run(self, report: UpkeepReport) -> None:
        for tidy in (self._expire_proposals, self._expire_containments, self._resume_busy, self._deliver_messages):
            try:
                tidy(report)
            except Exception as error:
                log.exception("the sweep could not %s", tidy.__name__.strip("_").replace("_", " "))
                report.error(f"{tidy.__name__.strip('_').replace('_', ' ')}: {describe_error(error)}")

    def _expire_proposals(self, report: UpkeepReport) -> None:
        now = self.incidents.clock()

        def expire(incident: Incident) -> None:
            playbook = self.catalog.get(incident.playbook_id)
            timeout = playbook.approval_timeout if playbook else DEFAULT_APPROVAL_TIMEOUT
            if dt.datetime.fromisoformat(incident.created_at) + timeout > now:
                return
            try:
                expired = self.incidents.expire(incident.id, SWEEPER, f"nobody answered within {_hours(timeout)}")
            except (IllegalTransition, StaleIncident, ChangedOutsideTrailguard):
                return  # answered meanwhile, or changed outside trailguard (logged, reported)
            report.expired.append(expired.id)
            self.incidents.tell(expired)

        _each(self._listed([State.PROPOSED], report), "expire", expire, report)

    def _expire_containments(self, report: UpkeepReport) -> None:
        """Proposals to contain the actor nobody answered within the playbook's approval
        timeout, counted from when the repair was done: the repair stands, the buttons go."""
        now = self.incidents.clock()

        def expire(incident: Incident) -> None:
            playbook = self.catalog.get(incident.playbook_id)
            timeout = playbook.approval_timeout if playbook else DEFAULT_APPROVAL_TIMEOUT
            since = incident.containment_proposed_at
            if since is None or dt.datetime.fromisoformat(since) + timeout > now:
                return
            detail = f"nobody answered the proposal to contain who did it within {_hours(timeout)}"
            try:
                expired = self.incidents.expire_containment(incident.id, SWEEPER, detail)
            except (IllegalTransition, StaleIncident, ChangedOutsideTrailguard):
                return  # answered meanwhile, or changed outside trailguard (logged, reported)
            report.expired.append(expired.id)
            self.incidents.tell(expired)

        unreadable: list[UnreadableIncident] = []
        waiting = self.incidents.proposed_containments(unreadable=unreadable)
        for problem in unreadable:
            report.error(str(problem))
        _each(waiting, "expire", expire, report)

    def _resume_busy(self, report: UpkeepReport) -> None:
        now = self.incidents.clock()

        def resume(incident: Incident) -> None:
            if not incident.lease_expired(now):
                return
            try:
                resumed = self.incidents.resume(incident, SWEEPER)
            except StaleIncident:
                return  # another worker took it
            report.resumed.append(resumed.id)
            self.incidents.tell(resumed)

        _each(self._listed(BUSY_STATES, report), "resume", resume, report)

    def _deliver_messages(self, report: UpkeepReport) -> None:
        """Messages Slack did not take (or a worker died before sending): send them now."""
        unreadable: list[UnreadableIncident] = []
        due = self.incidents.unannounced(unreadable=unreadable)
        for problem in unreadable:
            report.error(str(problem))

        now = self.incidents.clock()
        waiting: list[dt.datetime] = []

        ready: list[Incident] = []

        def finish(incident: Incident) -> None:
            ready.append(incident if incident.state in BUSY_STATES else self._finish_click(incident))

        _each(due, "deliver", finish, report)
        # told together, so that a burst Slack could not take one by one goes as a digest
        self.incidents.tell_all([incident for incident in ready if incident.state not in BUSY_STATES])

        def count(incident: Incident) -> None:
            if not incident.notification_due:
                report.delivered.append(incident.id)
            else:
                waiting.append(_waiting_since(incident))

        _each(ready, "deliver", count, report)
        report.pending = len(waiting)
        report.oldest_pending_seconds = max((max(0.0, (now - since).total_seconds()) for since in waiting), default=0.0)

    def _finish_click(self, incident: Incident) -> Incident:
        """A click the worker never got (its hand-over failed): what the worker does with it."""
        if incident.sealed_state is None or incident.state is incident.sealed_state:
            return incident
        if incident.state is State.DENIED:
            incident = self.incidents.carry_out(incident)
        return self.incidents.settle(incident)

    def _listed(self, states: Iterable[State], report: UpkeepReport) -> list[Incident]:
        """The open incidents in `states`; the damaged ones are reported, not raised."""
        unreadable: list[UnreadableIncident] = []
        found = self.incidents.open_incidents(states, unreadable=unreadable)
        for problem in unreadable:
            report.error(str(problem))
        return found


def _each(incidents: list[Incident], what: str, handle: Callable[[Incident], None], report: UpkeepReport) -> None:
    """`handle` each incident; one that fails is reported with its id, and the rest go on."""
    for incident in incidents:
        try:
            handle(incident)
        except Exception as error:
            log.exception("the sweep could not %s incident %s", what, incident.id)
            report.error(f"incident {incident.id}: {what}: {describe_error(error)}")


def _waiting_since(incident: Incident) -> dt.datetime:
    """When the first change its message does not show was made."""
    shown = (incident.notification or {}).get("shown") or 0
    unseen = incident.history_since(int(shown))
    return dt.datetime.fromisoformat(unseen[0].at if unseen else incident.created_at)


def _hours(timeout: dt.timedelta) -> str:
    hours = timeout.total_seconds() / 3600
    return f"{hours:g} hours" if hours >= 1 else f"{timeout.total_seconds() / 60:g} minutes"
