"""What would this change do? Two sets of playbooks over the same events, and only the
differences: events newly matched, no longer matched, or answered with other steps or mode.

Each side is the decision path a replay runs (a `Responder` with incidents in memory and
simulated steps), so a difference is one production would make. The events are read once,
selected for the union of both sides' (eventSource, eventName) pairs, and each goes through
both sides: one read of the logs, two decisions. An event whose call is answered by the same
playbook files on both sides (byte for byte) is decided once, for both: a change to one
playbook costs about one replay, not two.

Everything shown comes from CloudTrail records, which callers shape (a user agent, a
session name, a bucket name): the Markdown escapes it, so a record cannot format the
comment, inject links or HTML, or mention (`@`) anyone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from chalicelib.events.event import Event
from chalicelib.events.record import EventError
from chalicelib.named_lists import NO_LISTS, NamedLists
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.controls import Controls
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import NO_CONTROLS
from trailguard.replay.deciding import Answered, Compared, CompareDecider, ReplayDecider, Unanswered

NEWLY_MATCHED = "newly matched"
NO_LONGER_MATCHED = "no longer matched"
CHANGED = "changed"
KINDS = (NEWLY_MATCHED, NO_LONGER_MATCHED, CHANGED)


@dataclass(frozen=True)
class Match:
    """One playbook's answer to one event."""

    playbook: str
    mode: str
    steps: tuple[str, ...] = ()
    """Each planned step as `action(param=value, ...)`."""
    error: str | None = None

    def answer(self) -> str:
        if self.error is not None:
            return f"{self.mode}: cannot plan ({self.error})"
        return f"{self.mode}: {'; '.join(self.steps) or 'notify only'}"


@dataclass(frozen=True)
class Difference:
    kind: str
    playbook: str
    event: dict[str, str]
    """The record's summary: eventID, eventTime, eventName, account/region, actor."""
    old: Match | None
    new: Match | None

    def what_changed(self) -> str:
        if self.old is None or self.new is None:
            only = self.new or self.old
            return only.answer() if only else ""
        parts = []
        if self.old.mode != self.new.mode:
            parts.append(f"mode {self.old.mode} → {self.new.mode}")
        if self.old.error != self.new.error:
            parts.append(f"error {self.old.error or 'none'} → {self.new.error or 'none'}")
        if self.old.steps != self.new.steps:
            parts.append(f"steps {'; '.join(self.old.steps) or 'none'} → {'; '.join(self.new.steps) or 'none'}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        def side(match: Match | None) -> dict[str, Any] | None:
            if match is None:
                return None
            return {"mode": match.mode, "steps": list(match.steps), **({"error": match.error} if match.error else {})}

        return {
            "kind": self.kind,
            "playbook": self.playbook,
            **self.event,
            "old": side(self.old),
            "new": side(self.new),
        }


@dataclass
class Comparison:
    read: int = 0
    events: int = 0
    malformed: int = 0
    matched_old: int = 0
    matched_new: int = 0
    differences: list[Difference] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counted = dict.fromkeys(KINDS, 0)
        for difference in self.differences:
            counted[difference.kind] += 1
        return counted

    def summary(self) -> str:
        counts = self.counts()
        return (
            f"compare: {self.read} events read, {self.events} compared ({self.matched_old} matched before, "
            f"{self.matched_new} after), {self.malformed} malformed: "
            + ", ".join(f"{counts[kind]} {kind}" for kind in KINDS)
        )


class Side:
    """One set of playbooks, deciding as a replay does (duplicates are told by `compare`)."""

    def __init__(
        self, catalog: Catalog, own: OwnIdentities, lists: NamedLists = NO_LISTS, controls: Controls = NO_CONTROLS
    ) -> None:
        self.catalog, self.own, self.lists, self.controls = catalog, own, lists, controls
        self.decider = ReplayDecider(catalog, own, lists, controls)

    def context(self) -> tuple[OwnIdentities, NamedLists, Controls]:
        return self.own, self.lists, self.controls

    def same_playbooks(self, other: Side, source: str, name: str) -> bool:
        """Whether both sides answer this call with the same playbook files, byte for byte."""
        mine = self.catalog.candidates(source, name)
        theirs = other.catalog.candidates(source, name)
        prints = [_fingerprint(playbook) for playbook in mine]
        return None not in prints and prints == [_fingerprint(playbook) for playbook in theirs]

    def answers(self, event: Event) -> tuple[tuple[str, Match], ...]:
        """Each playbook's answer, with its incident's id, as if nothing came before the event."""
        _, outcomes = self.decider.responder().respond(event)
        found = []
        for outcome in outcomes:
            if outcome.duplicate:
                continue
            incident = outcome.incident
            steps = tuple(
                f"{step.action}({', '.join(f'{key}={value}' for key, value in step.params.items())})"
                for step in incident.plan
            )
            found.append((incident.id, Match(outcome.playbook.id, outcome.playbook.mode, steps, incident.error)))
        return tuple(found)


def _fingerprint(playbook: Any) -> str | None:
    """The playbook's file, hashed (None when it has none: then it is decided on each side)."""
    if playbook.path is None:
        return None
    try:
        return f"{playbook.id}:{hashlib.sha256(playbook.path.read_bytes()).hexdigest()}"
    except OSError:
        return None


def compare(items: Iterable[Event | EventError | int | Compared | None], old: Side, new: Side) -> Comparison:
    """The differences between `old` and `new` over `items` (events, or rows the workers
    decided), in event order, then playbook id order within an event. An answer a side gave
    before (the same incident id) is a duplicate delivery, left out as one loop would."""
    result = Comparison()
    decide = CompareDecider(old, new)
    answered_old, answered_new = Answered(), Answered()
    for item in items:
        if item is None:
            result.read += 1
            continue
        if isinstance(item, int):
            result.read += item
            result.events += item if isinstance(item, Unanswered) else 0
            continue
        result.read += 1
        if isinstance(item, EventError):
            result.malformed += 1
            continue
        result.events += 1
        row = item if isinstance(item, Compared) else decide(item)
        if row is None:
            continue
        before = dict(answered_old.fresh((incident, (match.playbook, match)) for incident, match in row.before))
        if row.after is None:  # the same files decide the same way: once
            after = before
        else:
            after = dict(answered_new.fresh((incident, (match.playbook, match)) for incident, match in row.after))
        result.matched_old += bool(before)
        result.matched_new += bool(after)
        if before == after:
            continue
        for playbook in sorted(before.keys() | after.keys()):
            was, now = before.get(playbook), after.get(playbook)
            if was == now:
                continue
            kind = NEWLY_MATCHED if was is None else NO_LONGER_MATCHED if now is None else CHANGED
            result.differences.append(Difference(kind, playbook, row.event, was, now))
    return result


def summary(event: Event) -> dict[str, str]:
    """The few fields a reviewer needs to find the event."""
    return {
        "eventID": event.event_id,
        "eventTime": event.summary().time,
        "eventName": event.name,
        "where": f"{event.account or '?'}/{event.region}",
        "actor": event.actor.label,
    }


def exit_code(comparison: Comparison, fail_on: Iterable[str] = KINDS) -> int:
    """0 when no difference of the kinds in `fail_on` was found, 1 otherwise (for CI: a
    pipeline can fail on any change, or only on events no longer answered)."""
    kinds = set(fail_on)
    unknown = kinds - set(KINDS)
    if unknown:
        raise ValueError(f"unknown difference kind(s): {', '.join(sorted(unknown))}; use {', '.join(KINDS)}")
    return int(any(difference.kind in kinds for difference in comparison.differences))


def write_table(comparison: Comparison, out: TextIO) -> None:
    out.write(f"{'DIFFERENCE':<18}  {'PLAYBOOK':<40}  {'TIME':<20}  {'EVENT':<26}  {'ACCOUNT/REGION':<28}  WHAT\n")
    for difference in comparison.differences:
        event = difference.event
        out.write(
            f"{difference.kind:<18}  {difference.playbook:<40}  {event['eventTime']:<20}  {event['eventName']:<26}  "
            f"{event['where']:<28}  {difference.what_changed()}  (by {event['actor']}, {event['eventID']})\n"
        )


def write_jsonl(comparison: Comparison, out: TextIO) -> None:
    for difference in comparison.differences:
        out.write(json.dumps(difference.to_dict(), separators=(",", ":"), default=str) + "\n")


def to_markdown(comparison: Comparison, *, title: str, limit: int = 50) -> str:
    """A pull-request comment: the counts, then a table per kind of difference (at most
    `limit` rows each, then how many more)."""
    counts = comparison.counts()
    lines = [
        f"### {_cell(title)}",
        "",
        f"Replayed {comparison.read:,} events: {comparison.events:,} candidates, {comparison.matched_old:,} "
        f"matched before the change, {comparison.matched_new:,} after.",
        "",
    ]
    if not comparison.differences:
        lines.append("No difference: every event is answered as before.")
        return "\n".join(lines) + "\n"
    lines.append(", ".join(f"**{counts[kind]}** {kind}" for kind in KINDS))
    for kind in KINDS:
        rows = [difference for difference in comparison.differences if difference.kind == kind]
        if not rows:
            continue
        header = {NEWLY_MATCHED: "new answer", NO_LONGER_MATCHED: "old answer", CHANGED: "what changed"}[kind]
        lines += ["", f"#### {kind.capitalize()} ({len(rows)})", ""]
        lines.append(f"| playbook | event | time | account/region | actor | {header} |")
        lines.append("|---|---|---|---|---|---|")
        for difference in rows[:limit]:
            event = difference.event
            cells = [
                difference.playbook,
                event["eventName"],
                event["eventTime"],
                event["where"],
                event["actor"],
                difference.what_changed(),
            ]
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        if len(rows) > limit:
            lines.append(f"\n...and {len(rows) - limit} more.")
    return "\n".join(lines) + "\n"


_ESCAPED = {
    "\\": "\\\\",
    "|": "\\|",
    "`": "\\`",
    "*": "\\*",
    "_": "\\_",
    "[": "\\[",
    "]": "\\]",
    "<": "&lt;",
    ">": "&gt;",
    "&": "&amp;",
    "@": "@\u200b",  # no mention: a zero-width space after the at sign
    "#": "#\u200b",  # no issue or pull-request reference
    "\r": " ",
    "\n": " ",
}


def _cell(text: str, width: int = 200) -> str:
    """Record text made inert in a Markdown table cell, and cut to `width` characters."""
    text = text if len(text) <= width else text[: width - 1] + "…"
    return "".join(_ESCAPED.get(character, character) for character in text)
