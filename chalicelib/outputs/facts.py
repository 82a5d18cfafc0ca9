"""What the outputs read from an incident, so that metrics, findings and events tell the same
story: the state before the latest change, when it changed, the time from the CloudTrail
call to the remediation, the steps that failed or applied."""

from __future__ import annotations

import datetime as dt

from chalicelib.incidents.model import BUSY_STATES, HistoryEntry, Incident, State, StepResult, StepStatus

APPLIED = frozenset({StepStatus.APPLIED, StepStatus.ALREADY_SAFE})


def parse_time(value: str | None) -> dt.datetime | None:
    """A time as CloudTrail (`2026-11-26T17:13:12Z`) or trailguard writes it; None if it is not one."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def iso_z(moment: dt.datetime) -> str:
    """The form Security Hub and EventBridge document: UTC, milliseconds, `Z`."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def latest(incident: Incident) -> HistoryEntry | None:
    """The latest decision: who did what, when, and the state it left."""
    return incident.history[-1] if incident.history else None


def previous_state(incident: Incident) -> State | None:
    """The state before the latest change of state; None for a new incident. Each history entry
    records the state it left; one that did not move it (a resume) repeats the state."""
    for entry in reversed(incident.history[:-1]):
        if entry.state is not incident.state:
            return entry.state
    return None


def changed_at(incident: Incident) -> dt.datetime:
    entry = latest(incident)
    return parse_time(entry.at if entry else None) or parse_time(incident.created_at) or dt.datetime.now(dt.UTC)


def just_remediated(incident: Incident) -> bool:
    """Whether its steps have just all been applied: remediated by `finish` (not by an undo
    that was refused, which leaves it remediated as it was)."""
    entry = latest(incident)
    return incident.state is State.REMEDIATED and entry is not None and entry.what == "finish"


def seconds_to_remediate(incident: Incident) -> float | None:
    """From CloudTrail's eventTime to the latest `finish` (both to the second); None until
    remediated. Never negative: a clock ahead of CloudTrail's counts as 0."""
    finished = next((e for e in reversed(incident.history) if e.what == "finish"), None)
    happened = parse_time(incident.event.time)
    applied = parse_time(finished.at) if finished else None
    if applied is None or happened is None:
        return None
    return max(0.0, (applied - happened).total_seconds())


def failed_steps(incident: Incident) -> list[StepResult]:
    return [step for step in incident.steps if step.status is StepStatus.FAILED]


def anything_applied(incident: Incident) -> bool:
    """Whether a step put the resource in its safe state (or found it so), and it stays so."""
    return any(step.status in APPLIED for step in incident.steps)


def resting(incident: Incident) -> bool:
    return incident.state not in BUSY_STATES
