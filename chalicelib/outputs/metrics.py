"""The incidents' metric lines: one when an incident opens, one each time it comes to rest
(with the steps that failed, and the time from the CloudTrail call to the remediation when
it has just been remediated). Written by the state-change hook, after the write that made
the change succeeded: a retry or a double click is never counted twice."""

from __future__ import annotations

from typing import Any

from chalicelib.incidents.changes import StateChanges
from chalicelib.incidents.model import Incident, State
from chalicelib.metrics import MODE, PLAYBOOK, STATE, Metrics
from chalicelib.outputs import facts


def _where(incident: Incident) -> dict[str, Any]:
    """The line's fields that are not dimensions: they grow with the organization."""
    event = incident.event
    return {"incident": incident.id, "eventID": event.event_id, "account": event.account, "region": event.region}


class IncidentMetrics(StateChanges):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def opened(self, incident: Incident) -> None:
        self.metrics.write(
            "incident opened",
            {"IncidentsOpened": 1},
            {PLAYBOOK: incident.playbook_id, MODE: incident.mode},
            _where(incident),
        )

    def rested(self, incident: Incident) -> None:
        values: dict[str, float] = {"IncidentsSettled": 1}
        if incident.state is State.FAILED:
            values["RemediationStepsFailed"] = len(facts.failed_steps(incident))
        if facts.just_remediated(incident):
            seconds = facts.seconds_to_remediate(incident)
            if seconds is not None:
                values["TimeToRemediate"] = seconds
        self.metrics.write(
            "incident settled",
            values,
            {PLAYBOOK: incident.playbook_id, MODE: incident.mode, STATE: incident.state.value},
            _where(incident),
        )
