"""Telling people what happened. The incidents know only the `Notifier` interface.

A notifier notes on the incident where its message is and what it shows
(`incident.notification`: `channel`, `ts`, `shown`, the last delivery `error`); the
incidents' door writes those notes (`Incidents.notify`). The text form here is what the
CLI, the demo and the Lambda logs show; Slack messages (`slack.delivery`) are built from
the same incident.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chalicelib.incidents.model import Incident, State

log = logging.getLogger("trailguard")

_HEADLINES = {
    State.REMEDIATING: "remediating",
    State.REMEDIATED: "remediated",
    State.FAILED: "remediation FAILED",
    State.PROPOSED: "waiting for approval",
    State.NOTIFIED: "for your attention",
    State.SIMULATED: "dry run: nothing was changed",
    State.DENIED: "denied: nothing was changed",
    State.EXPIRED: "expired: nobody answered, nothing was changed",
    State.UNDOING: "undoing",
    State.UNDONE: "undone: put back as it was",
    State.ACKNOWLEDGED: "acknowledged",
}


class Notifier:
    def address(self, incident: Incident) -> dict[str, Any] | None:
        """Where a new incident's message will go, recorded with the incident when it opens,
        so that a message not yet delivered is known to be due (None: nothing to deliver)."""
        return None

    def notify(self, incident: Incident) -> None:
        """Tell people about the incident as it is now, noting on `incident.notification` what
        its message shows; may raise (the caller logs it)."""
        raise NotImplementedError

    def notify_all(self, incidents: list[Incident]) -> None:
        """`notify` each (the sweep's delivery); a notifier may group them (Slack's digest of
        a burst). One that fails is logged, and the others are told."""
        for incident in incidents:
            try:
                self.notify(incident)
            except Exception:
                log.exception("%s could not notify about incident %s", type(self).__name__, incident.id)


class Fanout(Notifier):
    """Several notifiers, each told in turn; one failing does not silence the others."""

    def __init__(self, *notifiers: Notifier) -> None:
        self.notifiers = notifiers

    def address(self, incident: Incident) -> dict[str, Any] | None:
        return next((a for a in (n.address(incident) for n in self.notifiers) if a is not None), None)

    def notify(self, incident: Incident) -> None:
        for notifier in self.notifiers:
            try:
                notifier.notify(incident)
            except Exception:
                log.exception("%s could not notify about incident %s", type(notifier).__name__, incident.id)

    def notify_all(self, incidents: list[Incident]) -> None:
        for notifier in self.notifiers:
            try:
                notifier.notify_all(incidents)
            except Exception:
                log.exception("%s could not notify about %d incidents", type(notifier).__name__, len(incidents))


def describe(incident: Incident) -> str:
    """A few lines that say what happened, who did it, and what trailguard did about it."""
    event = incident.event
    lines = [
        f"[{incident.severity.upper()}] {incident.title}: {_HEADLINES[incident.state]}",
        f"  {event.actor} called {event.name} in {event.account}/{event.region} at {event.time} from {event.source_ip}"
        if not event.from_finding
        else f"  {event.source} reported {event.name} about {event.actor} in {event.account}/{event.region} "
        f"at {event.time}",
    ]
    verb = "would run" if incident.state is State.SIMULATED else "ran"
    for step in incident.steps:
        params = ", ".join(f"{k}={v}" for k, v in step.params.items())
        error = f": {step.error}" if step.error else ""
        note = f" ({step.note})" if step.note else ""
        lines.append(f"  {verb} {step.action}({params}) -> {step.status.value}{error}{note}")
    if not incident.steps:
        for planned in incident.plan:
            params = ", ".join(f"{k}={v}" for k, v in planned.params.items())
            lines.append(f"  proposes {planned.action}({params})")
    if incident.error:
        lines.append(f"  error: {incident.error}")
    lines.append(f"  incident {incident.id}, event {event.event_id}")
    return "\n".join(lines)


class TextNotifier(Notifier):
    def __init__(self, write: Callable[[str], None] = print) -> None:
        self.write = write

    def notify(self, incident: Incident) -> None:
        self.write(describe(incident))


class LogNotifier(Notifier):
    """One JSON line per incident, for CloudWatch Logs Insights."""

    def notify(self, incident: Incident) -> None:
        log.info("incident", extra={**incident.to_dict()})


class NullNotifier(Notifier):
    def notify(self, incident: Incident) -> None:
        return None
