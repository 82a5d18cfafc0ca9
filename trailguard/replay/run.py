"""What `trailguard replay` does with its inputs: local files, an S3 location or Athena.

Each input gives the same items to the same loop (`trailguard.replay.replay`, or
`compare.compare`): files and S3 objects decided where they are read (`deciding.Item`),
Athena's rows as events decided in that loop; so the output does not depend on where the
records came from.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from chalicelib.events.record import CloudTrailEvent, EventError
from trailguard.replay import deciding, engines
from trailguard.replay.ahead import ahead
from trailguard.replay.deciding import Decider
from trailguard.replay.progress import Progress, TerminalLine
from trailguard.replay.selection import Selection

PROGRESS_EVERY = 0.25
"""Seconds between two redraws of the progress line."""


@dataclass
class Shown:
    """The progress line on a terminal (or nothing), fed as files end and items come."""

    out: TextIO | None
    progress: Progress = field(default_factory=lambda: Progress(0, 0))
    _line: TerminalLine | None = None
    _drawn: float = 0.0

    def start(self, files: int | None, size: int | None, folders: int | None = None) -> None:
        self.progress = Progress(files, size, folders)
        if self.out is not None:
            self._line = TerminalLine(self.out)

    def done(self, files: int, size: int) -> None:
        self.progress.add(files, 0, size)
        self._draw()

    def count[T](self, items: Iterable[T]) -> Iterator[T]:
        for item in items:
            self.progress.records += item if isinstance(item, int) else 1
            yield item

    def _draw(self) -> None:
        if self._line is not None and time.perf_counter() - self._drawn >= PROGRESS_EVERY:
            self._drawn = time.perf_counter()
            self._line.show(self.progress.line())

    def close(self) -> None:
        if self._line is not None:
            self._line.close()


def local(
    paths: Iterable[str], selection: Selection, engine: str, workers: int, shown: Shown, decide: Decider
) -> Iterator[deciding.Item]:
    """The decided items of local files and folders: in `workers` processes, unless the
    input is small (their start would cost more than they save)."""
    sources = engines.local_sources(paths, selection)
    size = sum(source.size for source in sources)
    shown.start(len(sources), size)
    chosen = engines.choose(engine, size)
    processes = workers if size >= engines.IN_PROCESS_BYTES else 1
    items = engines.read(
        sources, selection, engine=chosen, decide=decide, workers=processes, total_bytes=size, on_done=shown.done
    )
    yield from shown.count(items)


@dataclass
class S3Summary:
    """What an S3 replay listed, for its summary line."""

    objects: int = 0
    bytes: int = 0
    list_calls: int = 0
    unrecognised: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = (
            f"s3: {self.objects} objects listed ({self.bytes / 2**20:.1f} MiB) in {self.list_calls} LIST calls, "
            f"{len(self.errors)} not read"
        )
        return text + (f", {self.unrecognised} keys that are not CloudTrail log files" if self.unrecognised else "")


def s3(
    url: str,
    selection: Selection,
    engine: str,
    workers: int,
    shown: Shown,
    client: Any,
    summary: S3Summary,
    on_error: Callable[[EventError], None],
    decide: Decider,
    processes: int = 1,
) -> Iterator[deciding.Item]:
    """The decided items of the CloudTrail logs at `url` in the selection: only the (account,
    region, day) prefixes it asks for are listed, objects are fetched `workers` at a time
    into a scratch folder, read and decided in batches by `processes` processes and deleted."""
    from trailguard.replay import s3fetch, s3layout

    location = s3layout.Location.from_url(url)
    report = s3layout.ListingReport()
    prefixes = s3layout.plan(client, location, selection, report)
    shown.start(None, None, len(prefixes))

    def folder_done(folder: s3layout.DayPrefix) -> None:
        shown.progress.folders_done += 1

    listed = s3layout.list_objects(
        client, location.bucket, prefixes, selection, report, workers=2 * workers, on_folder=folder_done
    )
    chosen = engines.choose(engine, engines.SMALL_INPUT_BYTES)  # an S3 replay is a large one: DuckDB if it is there
    scratch = Path(tempfile.mkdtemp(prefix="trailguard-replay-"))

    def fetched() -> Iterator[engines.Source]:
        objects = ahead(
            lambda: s3fetch.fetch(client, location.bucket, listed, scratch, workers),
            engines.BATCH_FILES,
            "s3-ahead",
            join_seconds=5,
        )  # the next batch is fetched while DuckDB reads this one
        for item in objects:
            label = f"s3://{location.bucket}/{item.object.key}"
            if item.error:
                summary.errors.append(label)
                on_error(EventError(item.error, label))
                shown.done(1, item.object.size)
                continue
            yield engines.Source(item.path, item.object.size, label)

    def delete(sources: list[engines.Source]) -> None:
        for source in sources:
            source.path.unlink(missing_ok=True)

    try:
        items = engines.read(
            fetched(), selection, engine=chosen, decide=decide, workers=processes, on_done=shown.done, on_read=delete
        )
        yield from shown.count(items)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        summary.objects, summary.bytes = report.objects, report.bytes
        summary.list_calls, summary.unrecognised = report.list_calls, len(report.unrecognised or [])


@dataclass
class AthenaOptions:
    database: str
    table: str
    workgroup: str
    output_location: str | None
    timeout: float = 1800.0


def athena(selection: Selection, options: AthenaOptions, client: Any, notes: list[str]) -> Iterator[engines.Item]:
    """The candidates Athena selects with the candidate query, rebuilt from its rows (what
    the table cannot hold is lost: docs/replay.md), in eventTime order."""
    from trailguard.replay.athena import AthenaRunner, candidate_query
    from trailguard.replay.table import rebuild

    runner = AthenaRunner(
        client,
        workgroup=options.workgroup,
        database=options.database,
        output_location=options.output_location,
        timeout=options.timeout,
    )
    sql = candidate_query(selection, table=options.table, database=options.database)
    for number, row in enumerate(runner.run(sql), start=1):
        candidate = rebuild(row)
        where = f"{candidate.path or 'athena'} (result row {number})"
        try:
            yield CloudTrailEvent.from_record(candidate.record, where)
        except EventError as error:
            yield error
    statistics = runner.statistics
    notes.append(
        f"athena: query {statistics.execution_id} scanned {statistics.data_scanned_bytes / 2**30:.2f} GiB "
        f"(about ${statistics.data_scanned_bytes / 10**12 * 5:.2f} at $5/TB) in {statistics.engine_ms / 1000:.1f} s"
    )


def stderr_terminal() -> TextIO | None:
    return sys.stderr if sys.stderr.isatty() else None


@contextlib.contextmanager
def shown_on(out: TextIO | None) -> Iterator[Shown]:
    shown = Shown(out)
    try:
        yield shown
    finally:
        shown.close()
