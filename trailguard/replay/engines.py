"""Which engine reads which file, in which process, and the items the parent gets from them.

CloudTrail's delivery files (`{"Records": [...]}`, what S3 holds and what an organization
has by the terabyte) are read by DuckDB, in batches: one scan per batch selects the
candidates (`Selection`) and counts the records, and only the candidates become events. The
pure-Python reader (`trailguard.eventfiles`) reads everything else (JSON Lines of records or
EventBridge events, JSON arrays), the files DuckDB refuses (it then says what is wrong
with them), and small inputs, where DuckDB's start costs more than it saves; and all of it
when DuckDB is not installed. Both give the same items in the same order: an event or an
`EventError` for each candidate, in file order, and the number of the other records read
(an `int`: counted, not checked), so the output of a replay does not depend on the engine
(tests/trailguard/replay/test_engines.py).

The files are cut into segments (a batch for DuckDB, a run for the Python reader), each read
and decided by a worker process (`workers`), which sends back only compact rows and counts
(`deciding`); a small input is read and decided here. Memory is bounded by the segments in
flight (`SEGMENT_BYTES` of compressed input each, and their candidates), whatever the size of
the replay.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.events.event import Event
from chalicelib.events.record import CloudTrailEvent, EventError
from trailguard import eventfiles
from trailguard.replay import deciding
from trailguard.replay.deciding import Decider
from trailguard.replay.selection import RecordFilter, Selection, layout_partition

ENGINES = ("auto", "duckdb", "python")

SMALL_INPUT_BYTES = 4 * 2**20
"""Below this much input in all, `auto` reads with Python: starting DuckDB (about 0.1 s)
costs more than it saves on a few MB."""

IN_PROCESS_BYTES = SMALL_INPUT_BYTES
"""Below this much local input, files are read and decided in this process: starting worker
processes (about 0.3 s of CPU each, to import and load the playbooks) costs more than they save."""

BATCH_BYTES = int(os.environ.get("TRAILGUARD_REPLAY_BATCH_MB", "16")) * 2**20
BATCH_FILES = 256
"""A segment holds at most BATCH_FILES files, and a quarter of BATCH_BYTES of them
(`SEGMENT_BYTES`, below); the first ones of an S3 replay an eighth (`FIRST_BATCH_BYTES`)."""

Item = Event | EventError | None | int
"""What the decision path gets: an event (or why a record is not one) for a candidate, and
an int for that many records read and not checked (`trailguard.replay.replay` counts them)."""


@dataclass(frozen=True)
class Source:
    """A file to read, and how messages name it (its path, or the S3 object it came from)."""

    path: Path
    size: int
    label: str


def duckdb_available() -> bool:
    """Whether DuckDB is installed: found, not imported (the workers import it; this process
    need not pay for it)."""
    import importlib.util

    return importlib.util.find_spec("duckdb") is not None


class EngineError(ValueError):
    """An engine that cannot be used here; the message says why and what to do."""


def choose(engine: str, total_bytes: int) -> str:
    """The engine `auto` means for an input of this size: 'duckdb' or 'python'."""
    if engine not in ENGINES:
        raise EngineError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "auto":
        return "duckdb" if total_bytes >= SMALL_INPUT_BYTES and duckdb_available() else "python"
    if engine == "duckdb" and not duckdb_available():
        raise EngineError("--engine duckdb: DuckDB is not installed (pip install duckdb, or --engine python)")
    return engine


class FileFilters:
    """What the Python reader keeps of each file: the pairs (a set: one lookup per record)
    when the selection says nothing else, else `Selection.takes` with the file's partition."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection

    def __call__(self, path: Path) -> eventfiles.Wanted | RecordFilter:
        if not self.selection.filters:
            return self.selection.pairs
        return RecordFilter(self.selection, layout_partition(str(path)))


def read(
    sources: Iterable[Source],
    selection: Selection,
    *,
    engine: str,
    decide: Decider,
    workers: int = 1,
    total_bytes: int | None = None,
    on_done: Callable[[int, int], None] = lambda files, size: None,
    on_read: Callable[[list[Source]], None] = lambda sources: None,
) -> Iterator[deciding.Item]:
    """The decided items of `sources` (`deciding.Item`), in file order, then record order.

    Files go in segments (`_segments`: a batch of delivery files for DuckDB, or a run of
    other files for the Python reader) to `workers` processes, each of which reads, selects
    and decides its segment and sends back only the rows worth reporting and counts
    (`trailguard.replay.workers`); with one worker, or playbooks that have no file to load
    them from again, here. `total_bytes` (when known) sizes the segments so that every
    worker has several. `on_done(files, bytes)` is called as segments are finished
    (progress); `on_read(sources)` once a segment is read (an S3 replay deletes its files)."""
    limit = None if total_bytes is None else min(max(total_bytes // (4 * workers), FIRST_BATCH_BYTES), SEGMENT_BYTES)
    segments = _segments(sources, engine, limit)
    recipe = deciding.Recipe.of(decide) if workers > 1 else None
    if recipe is not None:
        from trailguard.replay import workers as processes

        results: Iterator[tuple[list[Source], Iterable[deciding.Item]]] = processes.decided(
            segments, selection, recipe, workers
        )
    else:
        results = _decided_here(segments, selection, decide)
    for group, items in results:
        yield from items
        on_done(len(group), sum(source.size for source in group))
        on_read(group)


Segment = tuple[str, list[Source]]
"""('duckdb', a batch of delivery files) or ('python', files for the Python reader)."""

FIRST_BATCH_BYTES = max(BATCH_BYTES // 8, 1)
SEGMENT_BYTES = max(BATCH_BYTES // 4, 1)
"""Segments are at most this much, so that a worker's memory (DuckDB's buffers,
its candidates) is the same whatever the size of the replay; large enough that a scan's start
costs little (about 20 ms a query, measured: 4 MB of files is a dozen of CloudTrail's)."""


def _segments(sources: Iterable[Source], engine: str, limit: int | None) -> Iterator[Segment]:
    """Runs of files for one reader, at most `limit` bytes or BATCH_FILES files each.

    Without a limit (an S3 replay, whose size is not known ahead), the first segments are
    small (an eighth of BATCH_BYTES, then twice as large each time, up to SEGMENT_BYTES), so
    that decisions start early, on the first objects fetched."""
    from trailguard.replay import duckdb_engine

    kind, size = "", 0
    ramp = limit is None
    limit = FIRST_BATCH_BYTES if limit is None else limit
    group: list[Source] = []
    for source in sources:
        delivery = (
            engine == "duckdb" and duckdb_engine.is_delivery_file(source.path) and duckdb_engine.fits(source.path)
        )
        wanted = "duckdb" if delivery else "python"
        if group and (wanted != kind or size >= limit or len(group) >= BATCH_FILES):
            yield kind, group
            group, size = [], 0
            limit = min(limit * 2, SEGMENT_BYTES) if ramp else limit
        kind = wanted
        group.append(source)
        size += source.size
    if group:
        yield kind, group


def _decided_here(
    segments: Iterable[Segment], selection: Selection, decide: Decider
) -> Iterator[tuple[list[Source], Iterable[deciding.Item]]]:
    """Each segment read and decided in this process, one after the other."""
    connection = None
    try:
        for kind, group in segments:
            if kind == "duckdb" and connection is None:
                from trailguard.replay import duckdb_engine

                connection = duckdb_engine.connect()
            yield group, deciding.decided(segment_items(kind, group, selection, connection), decide)
    finally:
        if connection is not None:
            connection.close()


def segment_items(kind: str, group: list[Source], selection: Selection, connection: Any) -> Iterator[Item]:
    """The items of a segment, undecided: for a batch of delivery files, the candidates DuckDB
    selects on `connection`; for other files, what the Python reader keeps."""
    filters = FileFilters(selection)
    if kind == "python":
        for source in group:
            yield from eventfiles.read_event_file(source.path, filters(source.path), name=source.label)
        return
    from trailguard.replay import duckdb_engine

    found = duckdb_engine.batch(connection, [source.path for source in group], selection)
    yield from _candidates(group, found, filters)


def _candidates(sources: list[Source], found: Any, filters: FileFilters) -> Iterator[Item]:
    """The items of a batch DuckDB selected: per file, the records it did not select (a
    count) and an event for each candidate; a file it refused, from the Python reader."""
    from trailguard.replay.table import exact_record

    refused = {path for path, _ in found.refused}
    loads = eventfiles.loads
    for source in sources:
        if source.path in refused:
            yield from eventfiles.read_event_file(source.path, filters(source.path), name=source.label)
            continue
        rows = found.files.get(str(source.path))
        if rows is None:  # no record in it
            continue
        if rows.records > len(rows.candidates):
            yield rows.records - len(rows.candidates)
        for number, row in rows.candidates:
            try:
                yield CloudTrailEvent.from_record(exact_record(row, loads), f"{source.label} record {number}")
            except EventError as error:
                yield error


def local_sources(paths: Iterable[str | os.PathLike[str]], selection: Selection) -> list[Source]:
    """The files under `paths` (as local replay always found them), less those CloudTrail's
    layout says hold nothing selected: another account's or region's folder, or delivered
    outside the time range (their name's time), as an S3 replay does not list them."""
    from trailguard.replay.s3layout import describe_key

    found = []
    for path in eventfiles.iter_event_files(paths):
        if not _may_hold(str(path), selection, describe_key):
            continue
        try:
            size = path.stat().st_size
        except OSError:
            size = 0  # the reader reports it
        found.append(Source(path, size, str(path)))
    return found


def _may_hold(path: str, selection: Selection, describe_key: Callable[[str], Any]) -> bool:
    partition = layout_partition(path)
    if partition is None:
        return True
    account, region, _ = partition
    if selection.accounts is not None and account not in selection.accounts:
        return False
    if selection.regions is not None and region not in selection.regions:
        return False
    described = describe_key(path) if selection.bounded else None
    return described is None or selection.may_hold(described[2])
