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

Remembered configurations (`trail#…`, flow logs, Config channels) are sealed the same way
(`memory.documents`). `aws.seals` makes and checks the tags.
"""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.aws.seals import Refusals, Sealer, message
from chalicelib.incidents.model import OPEN_STATES, Incident, State, one_click_away
from chalicelib.incidents.store import IncidentStore, UnreadableIncident

UNSEALED = frozenset({"state", "history", "notification", "leaseUntil", "version", "seal", "sealedState"})
"""The fields of an incident (`Incident.to_dict`) a seal does not cover: what a click (state,
history, lease, version) and the notifier (where the message is) write."""


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
    contains = any(step.contain for step in incident.plan)  # the plan is sealed
    if incident.state is not incident.sealed_state and not one_click_away(
        incident.sealed_state, incident.state, contains
    ):
        return (
            f"it is {incident.state.value} but trailguard left it {incident.sealed_state.value}, "
            "and no button leads from one to the other"
        )
    return None


class SealedStore:
    """The store as the acting roles use it: every write sealed, every read checked.

    `get` and `recall` raise `ChangedOutsideTrailguard` for what fails the check; the
    listings (`open_incidents`, `unannounced`) leave it out, so that one forged item stops
    nothing else. Either way the refusal is logged and kept in `refusals` (the last hundred),
    for the caller's report.
    """

    def __init__(self, inner: IncidentStore, sealer: Sealer, refusals: Refusals | None = None) -> None:
        self.inner = inner
        self.sealer = sealer
        self.refusals = refusals or Refusals()

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
            raise self.refusals.refuse("incident", incident_id, problem)
        return incident

    def open_incidents(
        self, states: Iterable[State] = OPEN_STATES, *, unreadable: list[UnreadableIncident] | None = None
    ) -> list[Incident]:
        return self._trusted(self.inner.open_incidents(states, unreadable=unreadable))

    def unannounced(self, *, unreadable: list[UnreadableIncident] | None = None) -> list[Incident]:
        return self._trusted(self.inner.unannounced(unreadable=unreadable))

    def proposed_containments(self, *, unreadable: list[UnreadableIncident] | None = None) -> list[Incident]:
        return self._trusted(self.inner.proposed_containments(unreadable=unreadable))

    def _trusted(self, incidents: list[Incident]) -> list[Incident]:
        trusted = []
        for incident in incidents:
            problem = incident_problem(self.sealer, incident)
            if problem is None:
                trusted.append(incident)
            else:
                self.refusals.refuse("incident", incident.id, problem)
        return trusted
