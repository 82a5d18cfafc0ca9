"""Which engine reads which file, and the items the decision path gets from them.

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

Memory is bounded by a batch (`BATCH_BYTES` of compressed input and the candidates it
holds), whatever the size of the replay.
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
from trailguard.replay.ahead import ahead
from trailguard.replay.selection import RecordFilter, Selection, layout_partition

ENGINES = ("auto", "duckdb", "python")

SMALL_INPUT_BYTES = 4 * 2**20
"""Below this much input in all, `auto` reads with Python: starting DuckDB (about 0.1 s)
costs more than it saves on a few MB."""

BATCH_BYTES = int(os.environ.get("TRAILGUARD_REPLAY_BATCH_MB", "16")) * 2**20
BATCH_FILES = 256
"""A DuckDB batch: this many bytes of files, or files, whichever comes first. Large enough
that the scan's start and its last file's tail cost little, small enough that a batch's
candidates are a few MB and that the next batch is selected while this one is decided."""

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
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return False
    return True


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
    workers: int = 1,
    on_done: Callable[[int, int], None] = lambda files, size: None,
    on_read: Callable[[list[Source]], None] = lambda sources: None,
    threads: int | None = None,
) -> Iterator[Item]:
    """The items of `sources`, in order, each file read by `engine` ('duckdb' or 'python').

    With 'duckdb', delivery files go in batches to DuckDB, in a thread of its own that
    selects the next batch while this one's candidates are decided (DuckDB does not hold
    Python's lock while it works), and other files to the Python reader, `workers`
    processes wide for a run of local files. `on_done(files, bytes)` is called as files are
    finished (progress); `on_read(sources)` once a group of files is read (an S3 replay
    deletes them)."""
    filters = FileFilters(selection)
    if engine == "python":
        for group in _python_groups(sources):
            yield from _python(group, filters, workers, on_done)
            on_read(group)
        return
    for kind, group, found in _selected(sources, selection, threads):
        if kind == "python":
            yield from _python(group, filters, workers, on_done)
        else:
            yield from _candidates(group, found, filters)
            on_done(len(group), sum(source.size for source in group))
        on_read(group)


def _python_groups(sources: Iterable[Source]) -> Iterator[list[Source]]:
    group: list[Source] = []
    for source in sources:
        group.append(source)
        if len(group) >= BATCH_FILES:
            yield group
            group = []
    if group:
        yield group


def _segments(sources: Iterable[Source]) -> Iterator[tuple[str, list[Source]]]:
    """Runs of files for one reader: ('duckdb', a batch of delivery files) or ('python', others).

    The first batches are small (an eighth of BATCH_BYTES, then twice as large each time), so
    that decisions start early, and an S3 replay's DuckDB starts on the first objects
    fetched instead of waiting for a full batch."""
    from trailguard.replay import duckdb_engine

    kind, size = "", 0
    limit = max(BATCH_BYTES // 8, 1)
    group: list[Source] = []
    for source in sources:
        delivery = duckdb_engine.is_delivery_file(source.path) and duckdb_engine.fits(source.path)
        wanted = "duckdb" if delivery else "python"
        if group and (wanted != kind or size >= limit or len(group) >= BATCH_FILES):
            yield kind, group
            group, size = [], 0
            limit = min(limit * 2, BATCH_BYTES)
        kind = wanted
        group.append(source)
        size += source.size
    if group:
        yield kind, group


def _selected(
    sources: Iterable[Source], selection: Selection, threads: int | None
) -> Iterator[tuple[str, list[Source], Any]]:
    """Each segment, with DuckDB's selection for a batch of delivery files, made one batch
    ahead in a thread of its own."""
    from trailguard.replay import duckdb_engine

    def select() -> Iterator[tuple[str, list[Source], Any]]:
        connection = duckdb_engine.connect(threads)
        try:
            for kind, group in _segments(sources):
                found = (
                    duckdb_engine.batch(connection, [s.path for s in group], selection) if kind == "duckdb" else None
                )
                yield kind, group, found
        finally:
            connection.close()

    return ahead(select, 1, "duckdb-select", join_seconds=10)


def _python(
    sources: list[Source], filters: FileFilters, workers: int, on_done: Callable[[int, int], None]
) -> Iterator[Item]:
    """The Python reader: in `workers` processes for files named by their path, else here."""
    if workers > 1 and len(sources) > 1 and all(source.label == str(source.path) for source in sources):
        by_path = {str(source.path): source for source in sources}

        def finished(path: Path) -> None:
            on_done(1, by_path[str(path)].size)

        yield from eventfiles.read_events([s.path for s in sources], None, workers, finished, wanted_in=filters)
        return
    for source in sources:
        yield from eventfiles.read_event_file(source.path, filters(source.path), name=source.label)
        on_done(1, source.size)


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
