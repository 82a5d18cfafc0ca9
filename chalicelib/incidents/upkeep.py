"""Upkeep of the incidents, on the sweep's schedule: proposals nobody answered in time are
expired, incidents whose worker died are resumed, and messages Slack did not take (or a
worker died before sending) are delivered.

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
        for tidy in (self._expire_proposals, self._resume_busy, self._deliver_messages):
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

        def deliver(incident: Incident) -> None:
            if incident.state in BUSY_STATES:
                return
            self.incidents.tell(incident)
            if not incident.notification_due:
                report.delivered.append(incident.id)

        _each(due, "deliver", deliver, report)

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


def _hours(timeout: dt.timedelta) -> str:
    hours = timeout.total_seconds() / 3600
    return f"{hours:g} hours" if hours >= 1 else f"{timeout.total_seconds() / 60:g} minutes"
