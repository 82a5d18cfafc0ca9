"""Replay: what would the playbooks have done about these logs?

The package: `selection` (what is selected), `engines` (DuckDB or the Python reader, file
by file), `workers` (the processes that read and decide), `deciding` (the decision path per
event, and the compact rows workers send back), `duckdb_engine` and `athena` (one candidate
query, two engines), `s3layout` and `s3fetch` (CloudTrail's S3 layout, listed and fetched),
`table` (the CloudTrail table), `compare` (what a playbook change would do), `run` (what the
command does); this module, the loop that counts, tells duplicates and writes the output.

Events from files go through the Lambda's own decision path (the same `Responder`, with
a store in memory, steps that are simulated and no notifications), so a replay answers
for production; the worker processes that read the files run it, and this process keeps
counters and the ids of the incidents answered (a duplicate delivery is told here).
Output formats are a public interface, documented in docs/replay.md:

- `jsonl`: one object per event that matched at least one playbook, and with `--all`
  one per event a guard skipped;
- `table`: the same, readably, then the number of matches per playbook.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from chalicelib.events.event import Event
from chalicelib.events.record import EventError
from chalicelib.named_lists import NO_LISTS, NamedLists
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.controls import Controls
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import NO_CONTROLS
from trailguard.replay.deciding import Answered, Call, Decided, ReplayDecider

EXAMPLES = 3


@dataclass
class ReplayCounts:
    read: int = 0
    matched: int = 0
    skipped: int = 0
    malformed: int = 0
    per_playbook: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    """Up to EXAMPLES matches per playbook, one line each: when, what, where, who."""
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"replay: {self.read} events read, {self.matched} matched, {self.skipped} skipped by guards, "
            f"{self.malformed} malformed, {self.seconds:.2f} s"
        )


@dataclass(frozen=True)
class ReplayLine:
    """One event worth reporting: it matched, or (with --all) a guard skipped it."""

    call: Call
    matches: list[dict[str, Any]]
    """Each fresh answer, as `deciding.Answer.match`."""
    skipped: tuple[str, str] | None = None  # (code, reason)

    def to_dict(self) -> dict[str, Any]:
        call = self.call
        line: dict[str, Any] = {
            "eventID": call.event_id,
            "eventName": call.name,
            "eventSource": call.source,
            "eventTime": call.time,
            "account": call.account,
            "region": call.region,
        }
        if self.skipped:
            line["skipped"], line["reason"] = self.skipped
            return line
        line["matches"] = self.matches
        return line


DUPLICATE = ("duplicate", "this eventID was already answered by the same playbooks")


def replay(
    items: Iterable[Event | EventError | int | Decided | None],
    catalog: Catalog,
    own: OwnIdentities,
    *,
    include_skipped: bool = False,
    on_malformed: Callable[[EventError], None] = lambda error: None,
    lists: NamedLists = NO_LISTS,
    controls: Controls = NO_CONTROLS,
) -> Iterator[ReplayLine | ReplayCounts]:
    """Yield a ReplayLine per reportable event, then the counts (last item); `lists` are the
    organization's named lists, and `controls` its scope and mode ceilings, as the Lambda
    reads them from the stage's settings file.

    `items` are events (decided here), rows the workers decided (`deciding.Decided`),
    `EventError`s, and for the records no playbook answers (or that fall outside the
    selection) None, or an int for that many: read, counted, not checked. Nothing is kept
    per event but the ids of the incidents answered (to tell a duplicate delivery)."""
    decide = ReplayDecider(catalog, own, lists, controls)
    answered = Answered()
    counts = ReplayCounts(per_playbook=Counter({playbook.id: 0 for playbook in catalog.playbooks}))
    started = time.perf_counter()
    for item in items:
        if item is None:  # a call no playbook names (see eventfiles): read, not checked
            counts.read += 1
            continue
        if isinstance(item, int):  # that many of them (see replay.engines)
            counts.read += item
            continue
        if isinstance(item, EventError):
            counts.malformed += 1
            on_malformed(item)
            continue
        counts.read += 1
        row = item if isinstance(item, Decided) else decide(item)
        if row is None:
            continue
        fresh = answered.fresh((answer.incident, answer) for answer in row.answers)
        if fresh:
            counts.matched += 1
            counts.per_playbook.update(answer.playbook for answer in fresh)
            for answer in fresh:
                kept = counts.examples.setdefault(answer.playbook, [])
                if len(kept) < EXAMPLES:
                    kept.append(row.call.example())
            yield ReplayLine(row.call, [answer.match for answer in fresh])
        elif row.skip or row.opened:
            counts.skipped += 1
            if include_skipped:
                yield ReplayLine(row.call, [], row.skip or DUPLICATE)
    counts.read += counts.malformed
    counts.seconds = time.perf_counter() - started
    yield counts


def write_jsonl(line: ReplayLine, out: TextIO) -> None:
    out.write(json.dumps(line.to_dict(), separators=(",", ":"), default=str) + "\n")


def _columns(time: str, event: str, place: str, actor: str) -> str:
    return f"{time:<20}  {event:<26}  {place:<30}  {actor[:36]:<36}"


def write_table_row(line: ReplayLine, out: TextIO) -> None:
    call = line.call
    head = _columns(call.time, call.name, f"{call.account}/{call.region}", call.actor)
    if line.skipped:
        out.write(f"{head} skipped: {line.skipped[0]} ({line.skipped[1]})\n")
        return
    for match in line.matches:
        if "error" in match:
            out.write(f"{head} {match['playbook']} ({match['mode']}): cannot plan: {match['error']}\n")
            continue
        steps = "; ".join(
            f"{step['action']}({', '.join(f'{k}={v}' for k, v in step['params'].items())})" for step in match["steps"]
        )
        out.write(f"{head} {match['playbook']} ({match['mode']}): {steps or 'notify only'}\n")


def write_table_footer(counts: ReplayCounts, out: TextIO) -> None:
    out.write("\nmatches per playbook:\n")
    width = max((len(name) for name in counts.per_playbook), default=10)
    for playbook_id, count in sorted(counts.per_playbook.items()):
        out.write(f"  {playbook_id:<{width}}  {count}\n")
        for example in counts.examples.get(playbook_id, []):
            out.write(f"  {'':<{width}}    e.g. {example}\n")


def write_table_header(out: TextIO) -> None:
    out.write(_columns("TIME", "EVENT", "ACCOUNT/REGION", "ACTOR") + "  PLAYBOOK (MODE): STEPS\n")
