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

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import threading
from collections.abc import Iterable
from typing import Any, Protocol

from chalicelib.incidents import OPEN_STATES, Incident, State, one_click_away
from chalicelib.store import Change, IncidentStore, UnreadableIncident

log = logging.getLogger("trailguard")

MAC_ALGORITHM = "HMAC_SHA_256"
KEY_SPEC = "HMAC_256"
KEY_USAGE = "GENERATE_VERIFY_MAC"
SEAL_VERSION = "trailguard-seal-v1"
UNSEALED = frozenset({"state", "history", "notification", "leaseUntil", "version", "seal", "sealedState"})
"""The fields of an incident (`Incident.to_dict`) a seal does not cover: what a click (state,
history, lease, version) and the notifier (where the message is) write."""
DOCUMENT_SEAL = "seal"
"""Where a remembered document keeps its seal."""
_REFUSALS_KEPT = 100


class ChangedOutsideTrailguard(Exception):
    """A stored incident or remembered configuration is not as trailguard's acting roles
    wrote it: nothing is done with it."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what} changed outside trailguard: {reason}; nothing was done with it")
        self.what = what
        self.reason = reason


class Sealer(Protocol):
    def seal(self, message: bytes) -> str:
        """A tag over `message` that only the holder of the key can make."""

    def verify(self, message: bytes, tag: Any) -> bool:
        """Whether `tag` was made over `message` with the key. A wrong tag is False; not
        being able to check (KMS unreachable, access denied) raises."""


class LocalSealer:
    """HMAC-SHA256 with a key made for this process: for incidents kept in its memory only."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def seal(self, message: bytes) -> str:
        return base64.b64encode(hmac.digest(self._key, message, "sha256")).decode()

    def verify(self, message: bytes, tag: Any) -> bool:
        return isinstance(tag, str) and hmac.compare_digest(self.seal(message).encode(), tag.encode())


class KmsSealer:
    """HMAC in KMS (`GenerateMac`/`VerifyMac`): the key never leaves KMS, and IAM says who may seal.

    Tags this container made or KMS confirmed are remembered (a bounded set of exact
    message/tag pairs), so that reading back what was just written costs no KMS call.
    """

    def __init__(self, client: Any, key_id: str) -> None:
        self.client = client
        self.key_id = key_id
        self._known: set[tuple[bytes, str]] = set()
        self._lock = threading.Lock()

    def seal(self, message: bytes) -> str:
        mac = self.client.generate_mac(KeyId=self.key_id, Message=message, MacAlgorithm=MAC_ALGORITHM)["Mac"]
        tag = base64.b64encode(mac).decode()
        self._remember(message, tag)
        return tag

    def verify(self, message: bytes, tag: Any) -> bool:
        if not isinstance(tag, str):
            return False
        with self._lock:
            if (message, tag) in self._known:
                return True
        try:
            mac = base64.b64decode(tag, validate=True)
        except (binascii.Error, ValueError):
            return False
        if not 1 <= len(mac) <= 6144:  # what VerifyMac accepts
            return False
        try:
            valid = self.client.verify_mac(KeyId=self.key_id, Message=message, Mac=mac, MacAlgorithm=MAC_ALGORITHM)
        except self.client.exceptions.KMSInvalidMacException:
            return False
        if not valid.get("MacValid"):
            return False
        self._remember(message, tag)
        return True

    def _remember(self, message: bytes, tag: str) -> None:
        with self._lock:
            if len(self._known) >= 4096:
                self._known.clear()
            self._known.add((message, tag))


def message(kind: str, key: str, content: Any) -> bytes:
    """What a seal covers: the kind of record, the key it is stored under, and its content.

    The content is hashed in a canonical JSON form (what the store writes, read back, with
    sorted keys), so that the tag made before a write matches what a later read finds; the
    digest keeps the message within KMS's 4,096 bytes whatever the content's size.
    """
    canonical = json.dumps(json.loads(json.dumps(content, default=str)), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(json.dumps([kind, key, canonical]).encode()).hexdigest()
    return f"{SEAL_VERSION}:{digest}".encode()


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
