"""The state-change hook of a stage: its incident metrics, then each output it turns on.

An output that fails (Security Hub refused the finding, EventBridge the event, a member
role that cannot be assumed) is logged and counted (`OutputsFailed`, which an alarm
watches), and the next one is still told: the incident is written already, and Slack is
told regardless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from chalicelib.aws.errors import describe_error
from chalicelib.incidents.changes import StateChanges
from chalicelib.incidents.model import Incident
from chalicelib.metrics import Metrics
from chalicelib.outputs.metrics import IncidentMetrics

log = logging.getLogger("trailguard")


class Outputs(StateChanges):
    def __init__(self, metrics: Metrics, outputs: Mapping[str, StateChanges] | None = None) -> None:
        """`outputs`: by the name the `Output` dimension gives them (`securityhub`, `eventbridge`)."""
        self.metrics = metrics
        self.incident_metrics = IncidentMetrics(metrics)
        self.outputs = dict(outputs or {})

    def opened(self, incident: Incident) -> None:
        self.incident_metrics.opened(incident)
        for name, output in self.outputs.items():
            self._tell(name, incident, output.opened)

    def rested(self, incident: Incident) -> None:
        self.incident_metrics.rested(incident)
        for name, output in self.outputs.items():
            self._tell(name, incident, output.rested)

    def _tell(self, name: str, incident: Incident, tell: Callable[[Incident], None]) -> None:
        try:
            tell(incident)
        except Exception as error:
            reason = describe_error(error)
            log.warning("output failed", extra={"output": name, "incident": incident.id, "reason": reason})
            self.metrics.output_failed(name, incident.id, reason)
