"""Where incidents are kept. The responder only knows the `IncidentStore` interface.

`create` is the duplicate guard: it succeeds once per incident id, atomically, so the
same event delivered twice (or to two Lambdas at once) opens one incident. The memory
store serves replay, the CLI's tests and the demo; a DynamoDB store with conditional
writes serves deployed stages.
"""

from __future__ import annotations

import threading
from typing import Protocol

from chalicelib.incidents import Incident


class IncidentStore(Protocol):
    def create(self, incident: Incident) -> bool:
        """Record a new incident; False (and nothing written) if its id already exists."""

    def save(self, incident: Incident) -> None:
        """Record the incident's new state."""

    def get(self, incident_id: str) -> Incident | None: ...


class MemoryStore:
    """Incidents in a dict, for one process; safe to use from several threads."""

    def __init__(self) -> None:
        self._incidents: dict[str, Incident] = {}
        self._lock = threading.Lock()

    def create(self, incident: Incident) -> bool:
        with self._lock:
            if incident.id in self._incidents:
                return False
            self._incidents[incident.id] = incident
            return True

    def save(self, incident: Incident) -> None:
        with self._lock:
            self._incidents[incident.id] = incident

    def get(self, incident_id: str) -> Incident | None:
        with self._lock:
            return self._incidents.get(incident_id)

    def all(self) -> list[Incident]:
        with self._lock:
            return list(self._incidents.values())
