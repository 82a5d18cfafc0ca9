"""What the outputs' tests share: an incident as trailguard's own code makes one."""

from __future__ import annotations

from chalicelib.events.record import CloudTrailEvent
from chalicelib.incidents.model import HistoryEntry, Incident, State, StepResult, StepStatus
from tests.conftest import envelope, record

TRAIL = "main"


def sample(state: State, applied: bool = True) -> Incident:
    """An incident the repository's own code made (StopLogging, auto mode), moved to `state`."""
    event = CloudTrailEvent.from_eventbridge(
        envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL}, sourceIPAddress="203.0.113.7"))
    )
    status = StepStatus.APPLIED if applied else StepStatus.FAILED
    return Incident(
        id="inc-0123456789abcdef0123",
        playbook_id="cloudtrail-stop-logging",
        playbook_version=1,
        title="CloudTrail logging stopped",
        severity="critical",
        mode="auto",
        event=event.summary(),
        state=state,
        steps=[StepResult("cloudtrail.start_logging", {"trail": TRAIL}, status, error=None if applied else "boom")],
        created_at="2026-11-26T03:12:47+00:00",
        history=[
            HistoryEntry("2026-11-26T03:12:47+00:00", "trailguard", "open", State.REMEDIATING),
            HistoryEntry("2026-11-26T03:12:48+00:00", "slack:U0APPROVER", "x", state),
        ],
    )
