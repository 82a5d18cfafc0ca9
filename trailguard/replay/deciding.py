"""Deciding where the records are read: what a worker process sends back, and how it
rebuilds the playbooks it decides with.

A replay's worker processes read and select the candidates of their files (DuckDB or the
Python reader) and run each through the decision path themselves (`ReplayDecider`, or
`CompareDecider` with both sets of playbooks for `--compare`); they send back only what the
output needs: a compact row per event worth reporting (`Decided`, `Compared`), and for the
others how many were read (an int). The parent writes rows as they come and keeps counters:
neither records, events nor incidents cross a process boundary or stay in memory.

One thing cannot be decided in a worker: whether an event is a duplicate (the same eventID
answered by the same playbook before, anywhere in the replay). A worker decides each event
with incidents of its own, forgotten after the event, and names each answer by its incident
id; the parent, which sees every row in file order, keeps the ids answered so far and tells
duplicates exactly as one decision loop did (`Answered`): about 160 bytes per answered
incident, where the incidents themselves were about 2.9 KB.

A worker gets the replay process's catalog pickled, once, when it starts (`CatalogFiles`):
its playbooks, with each condition's tree. A condition already evaluated holds closures, which
do not pickle; the replay process pickles before it decides anything, and failing that a
worker reads the same playbook files again.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.events.event import Event
from chalicelib.events.record import EventError
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.notify import NullNotifier
from chalicelib.incidents.store import MemoryStore
from chalicelib.named_lists import NO_LISTS, NamedLists
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.controls import Controls
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import NO_CONTROLS, Outcome, Responder


@dataclass(frozen=True, slots=True)
class Call:
    """What the output says about an event: which call, when, where, by whom."""

    event_id: str
    name: str
    source: str
    time: str
    account: str | None
    region: str
    actor: str

    @classmethod
    def of(cls, event: Event) -> Call:
        return cls(
            event.event_id,
            event.name,
            event.source,
            event.summary().time,
            event.account,
            event.region,
            event.actor.label,
        )

    def example(self) -> str:
        """The summary table's example line."""
        return f"{self.time} {self.name} in {self.account}/{self.region} by {self.actor} ({self.event_id})"


@dataclass(frozen=True, slots=True)
class Answer:
    """One playbook's answer to an event: its incident's id (what tells a duplicate) and the
    match as the output shows it."""

    incident: str
    playbook: str
    match: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decided:
    """An event some playbook answered or a guard skipped, decided as if nothing came before it."""

    call: Call
    answers: tuple[Answer, ...]
    opened: bool
    """Whether any incident was opened or found (answers may still all be duplicates)."""
    skip: tuple[str, str] | None = None
    """(code, reason) when a guard skipped it."""


@dataclass(frozen=True, slots=True)
class Compared:
    """An event either side of a comparison answered: each side's answers by playbook, as
    (incident id, match); `after` is None when both sides answer its call with the same
    playbook files (decided once, for both)."""

    event: dict[str, str]
    before: tuple[tuple[str, Any], ...]
    after: tuple[tuple[str, Any], ...] | None


class Unanswered(int):
    """That many events decided that no playbook answered and no guard skipped (a comparison
    counts them; a replay counts them as read, as any int)."""


Row = Decided | Compared
Item = Row | EventError | int
"""What the parent gets: a row, a malformed record, that many events decided with nothing to
report (`Unanswered`), or that many records read and not checked (an int)."""


class Answered:
    """The incident ids answered so far: an answer whose id is here is a duplicate delivery,
    as the incident store said when one loop decided every event."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def fresh[T](self, answers: Iterable[tuple[str, T]]) -> list[T]:
        """The answers not given before (in order), now remembered."""
        new = [(incident, answer) for incident, answer in answers if incident not in self.ids]
        self.ids.update(incident for incident, _ in new)
        return [answer for _, answer in new]


def _match(outcome: Outcome) -> dict[str, Any]:
    match: dict[str, Any] = {"playbook": outcome.playbook.id, "mode": outcome.incident.mode}
    if outcome.incident.mode_note:
        match["loweredBy"] = outcome.incident.mode_note
    if outcome.incident.error:
        match["error"] = outcome.incident.error
    else:
        match["steps"] = [step.to_dict() for step in outcome.incident.plan]
    return match


class ReplayDecider:
    """The decision path a replay runs, for one event at a time: a `Responder` with
    incidents in memory (forgotten after each event), simulated steps and no notifications."""

    def __init__(
        self, catalog: Catalog, own: OwnIdentities, lists: NamedLists = NO_LISTS, controls: Controls = NO_CONTROLS
    ) -> None:
        self.catalog, self.own, self.lists, self.controls = catalog, own, lists, controls

    def responder(self) -> Responder:
        incidents = Incidents(MemoryStore(), None, notifier=NullNotifier())
        return Responder(self.catalog, own=self.own, incidents=incidents, lists=self.lists, controls=self.controls)

    def __call__(self, event: Event) -> Decided | None:
        decision, outcomes = self.responder().respond(event)
        if not outcomes and decision.skip is None:
            return None
        answers = tuple(
            Answer(outcome.incident.id, outcome.playbook.id, _match(outcome))
            for outcome in outcomes
            if not outcome.duplicate
        )
        skip = (decision.skip.code, decision.skip.reason) if decision.skip else None
        return Decided(Call.of(event), answers, bool(outcomes), skip)


class CompareDecider:
    """Both sides of `--compare` on one event (`compare.Side`)."""

    def __init__(self, old: Any, new: Any) -> None:
        self.old, self.new = old, new
        self.unchanged: dict[tuple[str, str], bool] = {}

    def __call__(self, event: Event) -> Compared | None:
        from trailguard.replay.compare import summary

        call = (event.source, event.name)
        if call not in self.unchanged:
            self.unchanged[call] = self.old.same_playbooks(self.new, *call)
        before = self.old.answers(event)
        after = None if self.unchanged[call] else self.new.answers(event)
        if not before and not after:
            return None
        return Compared(summary(event), before, after)


Decider = ReplayDecider | CompareDecider


def decided(items: Iterable[Event | EventError | int | None], decide: Decider) -> Iterator[Item]:
    """`items` with each event decided: a row when it is worth reporting, else counted; a run
    of records not checked comes out as one int, and of events with nothing to report as one
    `Unanswered`."""
    unchecked = unanswered = 0
    for item in items:
        if item is None or isinstance(item, int):
            unchecked += 1 if item is None else item
            continue
        row = item if isinstance(item, EventError) else decide(item)
        if row is None:
            unanswered += 1
            continue
        if unchecked:
            yield unchecked
            unchecked = 0
        if unanswered:
            yield Unanswered(unanswered)
            unanswered = 0
        yield row
    if unchecked:
        yield unchecked
    if unanswered:
        yield Unanswered(unanswered)


# -- how a worker gets the same playbooks ------------------------------------------------


@dataclass(frozen=True)
class CatalogFiles:
    """A catalog as the files its playbooks were loaded from, in its order (one playbook per file),
    and, when it pickles, the parent's catalog itself: unpickling it costs a tenth of reading
    the files again (1,078 playbooks: about 20 ms against 200 ms of CPU), once per worker."""

    paths: tuple[Path, ...]
    ids: tuple[str, ...]
    pickled: bytes | None = None

    @classmethod
    def of(cls, catalog: Catalog) -> CatalogFiles | None:
        """None when a playbook has no file (built in memory): it is decided where it is."""
        paths = tuple(playbook.path for playbook in catalog.playbooks)
        if any(path is None for path in paths):
            return None
        try:
            pickled: bytes | None = pickle.dumps(catalog, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            pickled = None  # something in it does not pickle (a compiled condition): read the files
        return cls(tuple(path for path in paths if path is not None), tuple(p.id for p in catalog.playbooks), pickled)

    def load(self) -> Catalog:
        """The catalog in a worker (after the organization's action modules are imported)."""
        from chalicelib.playbooks.loader import load_playbook

        if self.pickled is not None:
            unpickled: Catalog = pickle.loads(self.pickled)  # made by this replay's own parent
            return unpickled
        catalog = Catalog([load_playbook(path, with_tests=False) for path in self.paths])
        loaded = tuple(playbook.id for playbook in catalog.playbooks)
        if loaded != self.ids:  # a file changed since the replay started
            raise RuntimeError(f"the playbook files changed during the replay: {loaded} != {self.ids}")
        return catalog


@dataclass(frozen=True)
class Recipe:
    """What a worker needs to decide as the parent would: the playbooks (one set, or two for
    `--compare`) and the organization's identities, lists and controls (they pickle)."""

    catalogs: tuple[CatalogFiles, ...]
    own: OwnIdentities
    lists: NamedLists
    controls: Controls

    @classmethod
    def of(cls, decider: Decider) -> Recipe | None:
        """The recipe of `decider`, or None when it cannot be rebuilt elsewhere."""
        if isinstance(decider, ReplayDecider):
            sides = [(decider.catalog, decider.own, decider.lists, decider.controls)]
        else:
            sides = [(side.catalog, side.own, side.lists, side.controls) for side in (decider.old, decider.new)]
        files = tuple(CatalogFiles.of(catalog) for catalog, *_ in sides)
        if any(found is None for found in files):
            return None
        if isinstance(decider, CompareDecider) and not all(
            mine is theirs for mine, theirs in zip(decider.old.context(), decider.new.context(), strict=True)
        ):
            return None  # both sides share these in a replay; otherwise, decided here
        _, own, lists, controls = sides[0]
        return cls(tuple(found for found in files if found is not None), own, lists, controls)

    def build(self) -> Decider:
        """The decider, in a worker: the organization's action modules imported, as the parent did."""
        from chalicelib.organization.extensions import import_actions

        import_actions(self.controls.organization)
        if len(self.catalogs) == 1:
            return ReplayDecider(self.catalogs[0].load(), self.own, self.lists, self.controls)
        from trailguard.replay.compare import Side

        old, new = (Side(files.load(), self.own, self.lists, self.controls) for files in self.catalogs)
        return CompareDecider(old, new)
