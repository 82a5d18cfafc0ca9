"""Seals: what trailguard's acting roles wrote to the table, and only that, is acted on.

The table is shared with the public Slack endpoint, whose role must write it (a click is a
conditional write of the incident's state) and may invoke the click worker. Whoever holds
that role could otherwise write an incident of their own (a plan that re-creates a trail
delivering to their bucket, a `before` snapshot that undo would "restore", another
account) and have the worker carry it out. So the acting roles (the rules' handler, the
sweep, the click worker) seal what only they may write, and check the seal of everything
they read before they act on it or write it again:

- the seal is an HMAC (KMS `GenerateMac`, HMAC_SHA_256) with a key only the acting roles
  may use (`TRAILGUARD_INTEGRITY_KEY`); the endpoint's role holds no KMS permission;
- it covers all of an incident but what others legitimately write (`UNSEALED`): its
  identity (id, playbook and version, mode, severity, title, the event with its account
  and region), its plan with the configurations recalled for it, its steps (parameters,
  snapshots, results), its error and creation time, and the state it was sealed in
  (`sealedState`). The history, the message's address, the lease and the version are not
  sealed: a click appends to the history and moves the lease, the notifier records where
  the message is;
- a click moves the state without resealing, so a stored incident is trusted when its seal
  matches and its state is the sealed one or one button press away from it;
- what fails the check is left alone, never resealed (that would launder a forgery), and a
  log line says so: "incident changed outside trailguard".

Remembered configurations (`trail#…`, flow logs, Config channels) are sealed the same way,
although the endpoint's role cannot write them at all (its table permission is limited to
`inc-*` keys): a forged one would make a later restore re-create a trail that delivers to
someone else's bucket.

`LocalSealer` (a random key per process) serves runs whose incidents live in this
process's memory only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from chalicelib.aws.seals import ChangedOutsideTrailguard, Sealer, message
from chalicelib.incidents import OPEN_STATES, Incident, State, one_click_away
from chalicelib.store import Change, IncidentStore, UnreadableIncident

log = logging.getLogger("trailguard")

UNSEALED = frozenset({"state", "history", "notification", "leaseUntil", "version", "seal", "sealedState"})
"""The fields of an incident (`Incident.to_dict`) a seal does not cover: what a click (state,
history, lease, version) and the notifier (where the message is) write."""
DOCUMENT_SEAL = "seal"
"""Where a remembered document keeps its seal."""
_REFUSALS_KEPT = 100


def _incident_message(incident: Incident) -> bytes:
    content = {name: value for name, value in incident.to_dict().items() if name not in UNSEALED}
    content["sealedState"] = incident.sealed_state.value if incident.sealed_state is not None else None
    return message("incident", incident.id, content)


def seal_incident(sealer: Sealer, incident: Incident) -> None:
    """Seal the incident as it is now, in its current state."""
    incident.sealed_state = incident.state
    incident.seal = sealer.seal(_incident_message(incident))


def incident_problem(sealer: Sealer, incident: Incident, key: str | None = None) -> str | None:
    """Why the stored incident cannot be trusted, or None when it can."""
    if key is not None and incident.id != key:
        return f"it is stored under {key} but names itself {incident.id}"
    if incident.seal is None or incident.sealed_state is None:
        return "it carries no seal"
    if not sealer.verify(_incident_message(incident), incident.seal):
        return "its seal does not match what it holds (its identity, event, plan or steps were changed)"
    if incident.state is not incident.sealed_state and not one_click_away(incident.sealed_state, incident.state):
        return (
            f"it is {incident.state.value} but trailguard left it {incident.sealed_state.value}, "
            "and no button leads from one to the other"
        )
    return None


def seal_document(sealer: Sealer, key: str, value: dict[str, Any]) -> dict[str, Any]:
    content = {name: item for name, item in value.items() if name != DOCUMENT_SEAL}
    return {**content, DOCUMENT_SEAL: sealer.seal(message("memory", key, content))}


def document_problem(sealer: Sealer, key: str, document: dict[str, Any]) -> str | None:
    content = {name: item for name, item in document.items() if name != DOCUMENT_SEAL}
    if DOCUMENT_SEAL not in document:
        return "it carries no seal"
    if not sealer.verify(message("memory", key, content), document[DOCUMENT_SEAL]):
        return "its seal does not match what it holds"
    return None


class SealedStore:
    """The store as the acting roles use it: every write sealed, every read checked.

    `get` and `recall` raise `ChangedOutsideTrailguard` for what fails the check; the
    listings (`open_incidents`, `unannounced`) leave it out, so that one forged item stops
    nothing else. Either way the refusal is logged and kept in `refused` (the last hundred),
    for the caller's report.
    """

    def __init__(self, inner: IncidentStore, sealer: Sealer) -> None:
        self.inner = inner
        self.sealer = sealer
        self.refused: list[str] = []

    def create(self, incident: Incident) -> bool:
        seal_incident(self.sealer, incident)
        return self.inner.create(incident)

    def save(self, incident: Incident) -> None:
        # Every incident an acting role holds was made by it or passed the check when read.
        seal_incident(self.sealer, incident)
        self.inner.save(incident)

    def get(self, incident_id: str) -> Incident | None:
        incident = self.inner.get(incident_id)
        if incident is None:
            return None
        problem = incident_problem(self.sealer, incident, incident_id)
        if problem is not None:
            raise self._refuse("incident", incident_id, problem)
        return incident

    def open_incidents(
        self, states: Iterable[State] = OPEN_STATES, *, unreadable: list[UnreadableIncident] | None = None
    ) -> list[Incident]:
        return self._trusted(self.inner.open_incidents(states, unreadable=unreadable))

    def unannounced(self, *, unreadable: list[UnreadableIncident] | None = None) -> list[Incident]:
        return self._trusted(self.inner.unannounced(unreadable=unreadable))

    def remember(self, key: str, value: dict[str, Any]) -> None:
        self.inner.remember(key, seal_document(self.sealer, key, value))

    def recall(self, key: str) -> dict[str, Any] | None:
        return self._checked(key, self.inner.recall(key))

    def amend(self, key: str, change: Change) -> dict[str, Any] | None:
        """The inner store's conditional amend, on the document as trailguard sealed it: a
        stored document that fails its check is refused (never resealed), and what the
        change writes is sealed."""

        def sealed_change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
            new = change(self._checked(key, stored))
            return seal_document(self.sealer, key, new) if new is not None else None

        return self._checked(key, self.inner.amend(key, sealed_change))

    def _checked(self, key: str, document: dict[str, Any] | None) -> dict[str, Any] | None:
        if document is None:
            return None
        problem = document_problem(self.sealer, key, document)
        if problem is not None:
            raise self._refuse("remembered configuration", key, problem)
        return {name: item for name, item in document.items() if name != DOCUMENT_SEAL}

    def _trusted(self, incidents: list[Incident]) -> list[Incident]:
        trusted = []
        for incident in incidents:
            problem = incident_problem(self.sealer, incident)
            if problem is None:
                trusted.append(incident)
            else:
                self._refuse("incident", incident.id, problem)
        return trusted

    def _refuse(self, kind: str, key: str, reason: str) -> ChangedOutsideTrailguard:
        log.error(json.dumps({"message": f"{kind} changed outside trailguard", "key": key, "reason": reason}))
        self.refused.append(f"{key}: {reason}")
        del self.refused[:-_REFUSALS_KEPT]
        return ChangedOutsideTrailguard(f"{kind} {key}", reason)
