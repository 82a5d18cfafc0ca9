"""What trailguard may remember, and when.

A remembered configuration (a trail, a flow log, Config's delivery channels) is what
trailguard puts back after a deletion, so it must never become the attacker's: a
configuration a playbook objected to, or that nobody judged, is not the one to restore.
Every source of a configuration offers it here (`offer`), and these rules decide:

- Held: an incident whose steps restore a remembered configuration holds it (`hold`, when
  the incident is opened) while it is undecided (proposed, remediating, failed, undoing,
  notified) or expired with nobody deciding: nothing that differs from it is written. Once
  the resource is as remembered again, only the incidents that may still act (proposed,
  remediating, failed, undoing) keep holding it.
- Accepted: once people decided to leave the change (denied the proposal, undid the
  remediation, acknowledged a failure or a notice without a remediation), the
  configuration as it is now is remembered.
- Judged: after an event the playbooks judged without objecting, the settings that event
  changed are remembered as they are now.
- Otherwise (the posture sweep, an event no playbook judges, such as CreateTrail), a
  setting that differs from the remembered one is a difference nobody explained: the
  remembered value stays, and the difference is reported (`Offer.drift`).

What is not a setting a restore puts back (tags, when it was seen) is refreshed unless
the configuration is held. The first configuration seen of a resource is remembered as
it is: there is nothing to compare it with.

Writes are `amend`s of the store: a read and a write conditional on nothing having
changed between them, so a hold and an offer made at the same moment cannot lose each
other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from chalicelib.clock import timestamp, utc_now

if TYPE_CHECKING:
    from chalicelib.memory.documents import Change, Documents

HELD_BY = "HeldBy"
"""The document's list of the incidents opened on it (their ids)."""
REMEMBERED_AT = "RememberedAt"
MAX_HOLDERS = 100
"""Holders kept per document, the newest: bounded whatever an attacker repeats."""

REMEMBERED = "remembered"
HELD = "held"
DRIFT = "drift"


class Stance(StrEnum):
    """Where an incident that holds a remembered configuration stands on the change it was
    opened on: all memory needs to know of it (the incidents say which states are which)."""

    ACTING = "acting"
    """Undecided, and may still restore what it holds (proposed, remediating, failed, undoing)."""
    OBJECTING = "objecting"
    """Objected to a change nobody has accepted, and will not act (notified, expired)."""
    ACCEPTED = "accepted"
    """People decided to leave the change (denied, undone, acknowledged without a remediation)."""
    NONE = "none"
    """None of these (remediated, acknowledged after remediating, simulated), or gone from the table."""


HOLDING = frozenset({Stance.ACTING, Stance.OBJECTING})
"""An incident that objects to a change nobody has accepted yet: nothing differing is remembered."""


class Memory:
    """What trailguard remembers (`documents`), and where each incident that holds a document
    stands (`stance`: the incidents answer, by id)."""

    def __init__(self, documents: Documents, stance: Callable[[str], Stance] | None = None) -> None:
        self.documents = documents
        self._stance = stance

    def recall(self, key: str) -> dict[str, Any] | None:
        """The document as remembered, memory's own bookkeeping included (see `configuration`)."""
        return self.documents.recall(key)

    def amend(self, key: str, change: Change) -> dict[str, Any] | None:
        return self.documents.amend(key, change)

    def stance(self, incident_id: str) -> Stance:
        return self._stance(incident_id) if self._stance is not None else Stance.NONE


@dataclass(frozen=True)
class Offer:
    """What became of a configuration offered to memory."""

    key: str
    outcome: str
    """`remembered`; `held` (nothing written: an undecided incident holds it); or `drift`
    (written, except the settings that differ without a judgement, which are kept)."""
    drift: str = ""
    """For `drift`: each setting kept, with the remembered and the present value."""


def log_line(offer: Offer, **where: Any) -> tuple[str, dict[str, Any]] | None:
    """The log line (message, fields) of an offer that was not simply remembered (None for one that was)."""
    if offer.outcome == DRIFT:
        return "remembered configuration kept: nobody judged the change", {
            **where,
            "key": offer.key,
            "drift": offer.drift,
        }
    if offer.outcome == HELD:
        return "remembered configuration held by an undecided incident", {**where, "key": offer.key}
    return None


def configuration(document: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A remembered document without memory's own bookkeeping: what a restore uses."""
    if document is None:
        return None
    return {key: value for key, value in document.items() if key != HELD_BY}


def hold(memory: Memory, key: str, incident_id: str) -> dict[str, Any] | None:
    """Mark the configuration under `key` as held by the incident; returns it as remembered
    (None if nothing is: then there is nothing to hold)."""

    def change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
        if stored is None or incident_id in stored.get(HELD_BY, []):
            return None
        return {**stored, HELD_BY: [*stored.get(HELD_BY, []), incident_id][-MAX_HOLDERS:]}

    return configuration(memory.amend(key, change))


def offer(
    memory: Memory,
    key: str,
    config: Mapping[str, Any],
    *,
    settings: Iterable[str],
    judged: Iterable[str] | None = (),
) -> Offer:
    """Remember `config` under `key` as far as the rules above allow.

    `settings` are the fields a restore puts back; `judged` those of them that an event
    the playbooks judged without objecting changed (None: all of them; empty: none, as
    for the sweep)."""
    settings = tuple(settings)
    explained_by_event = set(settings) if judged is None else set(judged)
    outcome: list[Offer] = []

    def change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
        outcome.clear()
        now = {**config, REMEMBERED_AT: timestamp(utc_now())}
        if stored is None:
            outcome.append(Offer(key, REMEMBERED))
            return now
        holders = {incident_id: memory.stance(incident_id) for incident_id in stored.get(HELD_BY, [])}
        differing = [field for field in settings if stored.get(field) != config.get(field)]
        if differing and any(stance in HOLDING for stance in holders.values()):
            outcome.append(Offer(key, HELD))
            return None
        acting = [incident_id for incident_id, stance in holders.items() if stance is Stance.ACTING]
        if acting:
            now[HELD_BY] = acting
        accepted = any(stance is Stance.ACCEPTED for stance in holders.values())
        explained = set(settings) if accepted else explained_by_event
        kept = [field for field in differing if field not in explained]
        for field in kept:
            if field in stored:
                now[field] = stored[field]
            else:
                now.pop(field, None)
        if kept:
            outcome.append(Offer(key, DRIFT, _differences(kept, stored, config)))
        else:
            outcome.append(Offer(key, REMEMBERED))
        return now

    memory.amend(key, change)
    return outcome[0]


def _differences(fields: Iterable[str], remembered: Mapping[str, Any], present: Mapping[str, Any]) -> str:
    return "; ".join(
        f"{field} remembered {remembered.get(field)!r:.120} now {present.get(field)!r:.120}" for field in fields
    )
