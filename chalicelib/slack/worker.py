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

Exceptions are made here, never by the endpoint (whose role cannot write them): a job
`{except: INCIDENT}` finds the request recorded on the incident (`except-requested`, by a
Slack user through the modal or an AWS principal through the command line), checks that
whoever asked may decide about the playbook (`may_decide`), and makes the exception, or
records why not; `{revoke: EXCEPTION, by: WHO}` revokes one (which only gives trailguard
back its say).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib import logs
from chalicelib.aws.seals import ChangedOutsideTrailguard
from chalicelib.incidents.exceptions import MADE, REFUSED, REQUESTED, REVOKED, ExceptionRefused
from chalicelib.incidents.lifecycle import Incidents, StaleIncident
from chalicelib.incidents.model import BUSY_STATES, HistoryEntry, Incident, State
from chalicelib.metrics import WORKER, Metrics

log = logging.getLogger("trailguard")


_REQUEST = re.compile(r"for (?P<days>[0-9]{1,4}) days?(?:, owner (?P<owner>[^:]{1,200}))?: (?P<reason>.+)", re.S)
"""An exception request as the endpoint and the command line record it."""


def request_detail(days: int, reason: str, owner: str | None = None) -> str:
    """How an exception request is written on the incident (`except-requested`)."""
    return f"for {days} days{f', owner {owner}' if owner else ''}: {reason.strip()}"


class ClickWorker:
    def __init__(
        self,
        incidents: Incidents,
        respond: Callable[[str, str], None],
        may_decide: Callable[[str, str], bool] | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        """`respond(response_url, text)` sends an ephemeral answer to the user who clicked;
        `may_decide(who, playbook_id)` says whether whoever asked for an exception may;
        `metrics` counts a job it could not read."""
        self.incidents = incidents
        self.respond = respond
        self.may_decide = may_decide or (lambda who, playbook_id: False)
        self.metrics = metrics

    def handle(self, job: Any) -> dict[str, Any]:
        """The worker Lambda: the job's result, which its log line also shows."""
        started = time.perf_counter()
        result = self.run(job)
        log.info("click job", extra={**result, "duration_ms": logs.milliseconds(time.perf_counter() - started)})
        return result

    def run(self, job: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(job, Mapping) or not ({"tell", "incident", "refresh", "except", "revoke"} & set(job)):
            log.warning("worker job rejected", extra={"job": repr(job)[:200]})
            if self.metrics is not None:
                self.metrics.handler_error(WORKER, "job rejected")
            return {
                "status": "rejected",
                "reason": "expected {incident, version}, {refresh}, {tell, response_url}, {except} or {revoke, by}",
            }
        if "revoke" in job:
            return self._revoke(str(job["revoke"]), str(job.get("by") or "unknown"))
        if "tell" in job:
            try:
                self.respond(str(job["response_url"]), str(job["tell"]))
            except Exception as error:
                log.warning("could not answer the user", extra={"error": f"{type(error).__name__}"})
            return {"status": "told"}
        incident_id = str(job.get("incident") or job.get("refresh") or job.get("except"))
        try:
            incident = self.incidents.get(incident_id)
        except ChangedOutsideTrailguard as error:
            return {"status": "refused", "incident": incident_id, "reason": error.reason}
        if incident is None:
            return {"status": "gone", "incident": incident_id}
        if "except" in job:
            return self._make_exception(incident)
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

    # -- exceptions ---------------------------------------------------------------------------

    def _make_exception(self, incident: Incident) -> dict[str, Any]:
        """Make the exception the incident's latest request asks for, or record why not."""
        request = pending_request(incident)
        if request is None:
            return {"status": "nothing asked", "incident": incident.id}
        exceptions = self.incidents.exceptions
        matched = _REQUEST.fullmatch(request.detail or "")
        problem: str | None = None
        if exceptions is None:
            problem = "this stage keeps no exceptions"
        elif matched is None:
            problem = f"the request is not understood ({(request.detail or '')[:80]!r})"
        elif incident.state in BUSY_STATES:
            problem = f"the incident is {incident.state.value}: ask again once it is done"
        elif not self.may_decide(request.who, incident.playbook_id):
            problem = f"{request.who} may not decide about {incident.playbook_id}"
        if problem is None and exceptions is not None and matched is not None:
            try:
                change = exceptions.make(
                    incident,
                    who=request.who,
                    owner=matched.group("owner"),
                    reason=matched.group("reason"),
                    days=int(matched.group("days")),
                )
            except ExceptionRefused as refused:
                problem = str(refused)
            else:
                noted = self.incidents.note(incident.id, request.who, MADE, change.describe())
                self.incidents.notify(noted)
                log.info("exception made", extra={"incident": incident.id, "exception": change.id, "by": request.who})
                return {"status": "excepted", "incident": incident.id, "exception": change.id}
        log.warning("exception refused", extra={"incident": incident.id, "by": request.who, "reason": problem})
        noted = self.incidents.note(incident.id, request.who, REFUSED, problem)
        self.incidents.notify(noted)
        return {"status": "refused", "incident": incident.id, "reason": problem}

    def _revoke(self, change_id: str, who: str) -> dict[str, Any]:
        exceptions = self.incidents.exceptions
        if exceptions is None:
            return {"status": "refused", "reason": "this stage keeps no exceptions"}
        try:
            change = exceptions.revoke(change_id, who)
        except LookupError as error:
            return {"status": "gone", "exception": change_id, "reason": str(error)}
        if change.incident_id:
            try:
                incident = self.incidents.get(change.incident_id)
                if incident is not None and incident.state not in BUSY_STATES:
                    self.incidents.notify(self.incidents.note(incident.id, who, REVOKED, change.id))
            except (ChangedOutsideTrailguard, StaleIncident):
                pass  # the exception is revoked; only the incident's history misses it
        log.info("exception revoked", extra={"exception": change.id, "by": who})
        return {"status": "revoked", "exception": change.id}


def pending_request(incident: Incident) -> HistoryEntry | None:
    """The latest exception request on the incident that nothing answered yet."""
    for entry in reversed(incident.history):
        if entry.what in (MADE, REFUSED):
            return None
        if entry.what == REQUESTED:
            return entry
    return None


def lambda_dispatch(lambda_client: Any, function_name: str) -> Callable[[dict[str, Any]], None]:
    """Hand jobs to the worker Lambda, invoked asynchronously (Lambda queues them)."""

    def dispatch(job: dict[str, Any]) -> None:
        lambda_client.invoke(FunctionName=function_name, InvocationType="Event", Payload=json.dumps(job).encode())

    return dispatch


def send_ephemeral(response_url: str, text: str) -> None:
    from chalicelib.slack.client import response_client

    response_client(response_url).send(text=text, response_type="ephemeral", replace_original=False)
