"""The rules' handler: one EventBridge delivery in, its answer out, and the log lines that say
what became of it.

The handler draws one line between bad input and failure: an event that is not a usable
CloudTrail event is answered with "rejected" and a log line (Lambda must not retry it); an
action that fails is recorded in its incident. Only an error in trailguard itself (or in
its store) escapes, so that Lambda's bounded retries and failure destination keep the
event; a retried event finds its incident and opens no second one. An incident too large
to record in any form is answered "failed" with the reason and an error line: delivering
the event again could not make it fit.

After a configuration call no playbook answered, memory is offered what the call changed
(`memory.refresh`): a change a playbook answered is not offered, as its incident holds the
configuration from before it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chalicelib import logs
from chalicelib.aws.clients import AwsClients
from chalicelib.events import event as events
from chalicelib.events.record import CloudTrailEvent, EventError
from chalicelib.incidents.lifecycle import IncidentTooLarge
from chalicelib.memory import heartbeats, refresh
from chalicelib.memory.rules import Memory
from chalicelib.metrics import HANDLER, Metrics
from chalicelib.playbooks.catalog import Catalog, EventRule
from chalicelib.respond.guards import skip_reason
from chalicelib.respond.responder import Outcome, Responder

log = logging.getLogger("trailguard")


def eventbridge_rules(catalog: Catalog) -> list[EventRule]:
    """The rules that deliver to the handler: the playbooks' events, and the changes that
    keep remembered configurations fresh, and the heartbeat's canary tag writes."""
    return catalog.eventbridge_rules(
        also={**refresh.watched_events(), heartbeats.EVENT_SOURCE: [heartbeats.EVENT_NAME]}
    )


class EventHandler:
    def __init__(
        self,
        responder: Responder,
        memory: Memory,
        clients: AwsClients,
        *,
        metrics: Metrics | None = None,
        canary: str | None = None,
    ) -> None:
        """`metrics`: where a rejected event and a failure it caught are counted; `canary`:
        the heartbeat's canary parameter, whose tag writes by trailguard are heartbeats."""
        self.canary = canary
        self.responder = responder
        self.memory = memory
        self.clients = clients
        self.metrics = metrics

    def handle(self, raw: Any) -> dict[str, Any]:
        """Answer one EventBridge delivery; the result is also what the logs show: one line
        per decision (an incident opened or found again), or one saying why none was made."""
        started = time.perf_counter()
        try:
            event = events.from_eventbridge(raw)
        except EventError as error:
            log.warning(
                "event rejected",
                extra={"reason": str(error), "duration_ms": logs.milliseconds(time.perf_counter() - started)},
            )
            if self.metrics is not None:
                self.metrics.event_rejected(str(error))
            return {"status": "rejected", "reason": str(error)}
        where = {
            "eventID": event.event_id,
            "eventSource": event.source,
            "eventName": event.name,
            "account": event.account,
            "region": event.region,
            "actor": event.actor.label,
        }
        if (
            isinstance(event, CloudTrailEvent)
            and self.canary is not None
            and heartbeats.is_beat(event.record, self.canary)
        ):
            beat = self._heartbeat(event, where, started)
            if beat is not None:
                return beat
        try:
            decision, outcomes = self.responder.respond(event)
        except IncidentTooLarge as error:
            elapsed = logs.milliseconds(time.perf_counter() - started)
            log.error("incident too large", extra={**where, "error": str(error), "duration_ms": elapsed})
            if self.metrics is not None:
                self.metrics.handler_error(HANDLER, "incident too large", eventID=event.event_id)
            return {"status": "failed", "eventID": event.event_id, "eventName": event.name, "reason": str(error)}
        if not outcomes and isinstance(event, CloudTrailEvent):
            # Judged: a playbook names the call and no guard skipped it (see `memory.rules`).
            judged = decision.skip is None and bool(self.responder.catalog.candidates(event.source, event.name))
            refresh.after_call(self.memory, self.clients, event, judged, self.clients.home_account)
        elapsed = logs.milliseconds(time.perf_counter() - started)
        result: dict[str, Any] = {"status": "handled", "eventID": event.event_id, "eventName": event.name}
        if decision.skip is not None:
            result.update(status="skipped", skipped=decision.skip.code, reason=decision.skip.reason)
            log.info(
                "event skipped",
                extra={**where, "skipped": decision.skip.code, "reason": decision.skip.reason, "duration_ms": elapsed},
            )
        result["incidents"] = [_summary(outcome) for outcome in outcomes]
        if log.isEnabledFor(logging.INFO):
            for outcome in outcomes:
                log.info("decision", extra=_decision_fields(outcome, where, elapsed))
        if decision.skip is None and not outcomes:
            log.debug("no playbook answered", extra={**where, "duration_ms": elapsed})
        return result

    def _heartbeat(self, event: CloudTrailEvent, where: dict[str, Any], started: float) -> dict[str, Any] | None:
        """A heartbeat made by trailguard: noted as seen, answered by nothing (None: the tag was
        written by someone else, and goes the way of any event)."""
        skip = skip_reason(event, self.responder.own)
        if skip is None or skip.code != "own-identity":
            log.warning("the heartbeat's canary was tagged by someone else", extra=where)
            return None
        account = event.account or self.clients.home_account()
        heartbeats.seen(self.memory, account, event.region, event.time)
        elapsed = logs.milliseconds(time.perf_counter() - started)
        log.info("heartbeat", extra={**where, "duration_ms": elapsed})
        return {"status": "heartbeat", "eventID": event.event_id, "account": account, "region": event.region}


def _summary(outcome: Outcome) -> dict[str, Any]:
    """An incident in the handler's result; one changed outside trailguard has no state to tell."""
    summary: dict[str, Any] = {
        "id": outcome.incident.id,
        "playbook": outcome.playbook.id,
        "state": outcome.incident.state.value if outcome.refused is None else None,
        "duplicate": outcome.duplicate,
    }
    if outcome.refused is not None:
        summary["refused"] = outcome.refused
    return summary


def _decision_fields(outcome: Outcome, where: dict[str, Any], elapsed_ms: float) -> dict[str, Any]:
    """The fields of one decision's log line: which incident, for which event, by which playbook, how it ended."""
    incident = outcome.incident
    line = {
        "incident": incident.id,
        **where,
        "playbook": outcome.playbook.id,
        "mode": incident.mode,
        "severity": incident.severity,
        "state": incident.state.value,
        "duplicate": outcome.duplicate,
        "duration_ms": elapsed_ms,
    }
    if incident.mode_note:
        line["loweredBy"] = incident.mode_note
    if outcome.refused is not None:
        line.update(state=None, refused=outcome.refused)
    elif incident.error:
        line["error"] = incident.error
    return line
