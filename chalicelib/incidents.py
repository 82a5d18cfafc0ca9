"""Incidents: what trailguard decided about one event for one playbook, and what came of it.

An incident's id is derived from the CloudTrail eventID and the playbook id, so the same
event delivered twice maps to the same incident and the store can refuse the second.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class State(str, Enum):
    PROPOSED = "proposed"  # approve mode: waiting for a person
    REMEDIATING = "remediating"  # auto mode: recorded, steps running
    REMEDIATED = "remediated"  # auto mode: every step applied or already safe
    FAILED = "failed"  # a step or the plan failed; the error is recorded
    NOTIFIED = "notified"  # notify mode: nothing to do but tell
    SIMULATED = "simulated"  # dry-run mode (and replay): what would have run


class StepStatus(str, Enum):
    APPLIED = "applied"
    ALREADY_SAFE = "already-safe"
    FAILED = "failed"
    NOT_RUN = "not-run"  # an earlier step failed
    SIMULATED = "simulated"


@dataclass
class StepResult:
    action: str
    params: dict[str, Any]
    status: StepStatus
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "params": self.params,
            "status": self.status.value,
            "before": self.before,
            "after": self.after,
            "error": self.error,
        }


def incident_id(event_id: str, playbook_id: str) -> str:
    digest = hashlib.sha256(f"{event_id}\n{playbook_id}".encode()).hexdigest()
    return f"inc-{digest[:20]}"


@dataclass
class Incident:
    id: str
    playbook_id: str
    playbook_version: int
    title: str
    severity: str
    mode: str
    event: dict[str, Any]
    state: State
    plan: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "playbook": self.playbook_id,
            "playbookVersion": self.playbook_version,
            "title": self.title,
            "severity": self.severity,
            "mode": self.mode,
            "state": self.state.value,
            "event": self.event,
            "plan": self.plan,
            "steps": [step.to_dict() for step in self.steps],
            "error": self.error,
            "createdAt": self.created_at,
        }
