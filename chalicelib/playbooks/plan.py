"""The steps of a plan, as data: what one step of a playbook does about one event, with its
parameters resolved. Incidents keep them; this module needs nothing else (`playbook`
builds them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class PlanError(ValueError):
    """A playbook matched an event but its parameters cannot be resolved from it."""


@dataclass(frozen=True)
class PlannedStep:
    """One step of a plan: the action's name and its parameters as resolved from the event."""

    action: str
    params: dict[str, Any]
    remembered: dict[str, Any] | None = None
    """The configuration the step will put back, as remembered when its incident opened
    (an approval hours later restores what was known at the time of the event)."""
    contain: bool = False
    """A step of the playbook's `contain:` group: it contains the actor, and runs only once a
    person approved the containment (the incident's second response)."""

    def to_dict(self) -> dict[str, Any]:
        step: dict[str, Any] = {"action": self.action, "params": self.params}
        if self.remembered is not None:
            step["remembered"] = self.remembered
        if self.contain:  # only when set: incidents sealed before it existed keep their seal
            step["contain"] = True
        return step

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlannedStep:
        return cls(data["action"], dict(data["params"]), data.get("remembered"), bool(data.get("contain")))
