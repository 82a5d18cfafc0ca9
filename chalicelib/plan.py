"""A plan: what one playbook would do about one event, with every parameter resolved.

Plans are plain data: the responder acts on them, replay prints them, incidents keep them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.events.record import CloudTrailEvent
    from chalicelib.playbook import Playbook


class PlanError(ValueError):
    """A playbook matched an event but its parameters cannot be resolved from it."""


@dataclass(frozen=True)
class PlannedStep:
    action: str
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "params": self.params}


@dataclass(frozen=True)
class Plan:
    playbook: Playbook
    event: CloudTrailEvent
    steps: tuple[PlannedStep, ...]

    @property
    def mode(self) -> str:
        return self.playbook.mode

    def to_dict(self) -> dict[str, Any]:
        """The public shape of a plan (replay's JSON Lines output, incidents)."""
        return {
            "playbook": self.playbook.id,
            "mode": self.mode,
            "steps": [step.to_dict() for step in self.steps],
        }
