"""The slow half of a click, run after Slack has had its answer.

A job either carries out a decision already recorded by `interactions` (the AWS calls of
an approve, an undo or a retry; for a denial, the record the posture sweep honours; then
the message update), brings a message someone pressed while it was out of date up to date
(`refresh`), or tells one user, through the
interaction's `response_url`, why their click did nothing. A job names the incident
version its decision wrote: if the incident has moved on since (another worker took it,
the event was delivered again), the work is not run a second time; the message is still
brought up to date.

The worker acts only on an incident whose seal holds (the store checks it on reading,
see `incidents.seals`): whoever can write the table and invoke the worker (the public
endpoint's role) cannot have it carry out a plan, a snapshot or a state of their own.
Once a click's work is done (or there was none: deny, acknowledge), the incident is
written again under trailguard's seal.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib import logs
from chalicelib.aws.seals import ChangedOutsideTrailguard
from chalicelib.incidents.lifecycle import Incidents, StaleIncident
from chalicelib.incidents.model import BUSY_STATES, State
from chalicelib.metrics import WORKER, Metrics

log = logging.getLogger("trailguard")


class ClickWorker:
    def __init__(
        self, incidents: Incidents, respond: Callable[[str, str], None], *, metrics: Metrics | None = None
    ) -> None:
        """`respond(response_url, text)` sends an ephemeral answer to the user who clicked;
        `metrics` counts a job it could not read."""
        self.incidents = incidents
        self.respond = respond
        self.metrics = metrics

    def handle(self, job: Any) -> dict[str, Any]:
        """The worker Lambda: the job's result, which its log line also shows."""
        started = time.perf_counter()
        result = self.run(job)
        log.info("click job", extra={**result, "duration_ms": logs.milliseconds(time.perf_counter() - started)})
        return result

    def run(self, job: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(job, Mapping) or not ({"tell", "incident", "refresh"} & set(job)):
            log.warning("worker job rejected", extra={"job": repr(job)[:200]})
            if self.metrics is not None:
                self.metrics.handler_error(WORKER, "job rejected")
            return {"status": "rejected", "reason": "expected {incident, version}, {refresh} or {tell, response_url}"}
        if "tell" in job:
            try:
                self.respond(str(job["response_url"]), str(job["tell"]))
            except Exception as error:
                log.warning("could not answer the user", extra={"error": f"{type(error).__name__}"})
            return {"status": "told"}
        incident_id = str(job.get("incident") or job.get("refresh"))
        try:
            incident = self.incidents.get(incident_id)
        except ChangedOutsideTrailguard as error:
            return {"status": "refused", "incident": incident_id, "reason": error.reason}
        if incident is None:
            return {"status": "gone", "incident": incident_id}
        if "refresh" in job:
            if incident.state not in BUSY_STATES:  # a busy one's worker updates the message when done
                self.incidents.notify(incident)
            return {"status": "refreshed", "incident": incident.id, "state": incident.state.value}
        if incident.state in BUSY_STATES:
            if incident.version != job.get("version"):
                log.info("another worker has the incident", extra={"incident": incident.id})
                return {"status": "taken", "incident": incident.id, "state": incident.state.value}
            try:
                incident = self.incidents.carry_out(incident)
            except StaleIncident:
                return {"status": "taken", "incident": incident.id}
        else:
            if incident.state is State.DENIED:
                incident = self.incidents.carry_out(incident)  # records the decision the sweep honours
            incident = self.incidents.settle(incident)
        self.incidents.notify(incident)
        return {
            "status": "done",
            "incident": incident.id,
            "playbook": incident.playbook_id,
            "state": incident.state.value,
        }


def lambda_dispatch(lambda_client: Any, function_name: str) -> Callable[[dict[str, Any]], None]:
    """Hand jobs to the worker Lambda, invoked asynchronously (Lambda queues them)."""

    def dispatch(job: dict[str, Any]) -> None:
        lambda_client.invoke(FunctionName=function_name, InvocationType="Event", Payload=json.dumps(job).encode())

    return dispatch


def send_ephemeral(response_url: str, text: str) -> None:
    from chalicelib.slack.client import response_client

    response_client(response_url).send(text=text, response_type="ephemeral", replace_original=False)
