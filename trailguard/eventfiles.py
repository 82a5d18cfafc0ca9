"""Reading CloudTrail events in bulk from the files people actually have.

CloudTrail's S3 delivery writes `{"Records": [...]}` files, usually gzipped; exports and
tools write JSON Lines of records or of EventBridge events, or plain JSON arrays. The
reader tells them apart by content, not by file name, and streams: memory holds one
file of the S3 kind at a time and one line of JSON Lines, never the whole corpus.

A bad file or record does not stop a read: it is yielded as an `EventError` that names
the file and the record (or line), so that callers can report it and go on. So is a gzip
file that inflates past `MAX_INFLATED_BYTES` (a compression bomb: 1 MB can hold 1 GB): no
more than that is decompressed, and what came before it is read.

Given `wanted` (the (eventSource, eventName) pairs some playbook answers), a record that
names another call is yielded as `None`, counted but neither checked nor wrapped: that is
what EventBridge's rules do for the Lambda, and most of a month of logs is such records.
JSON is parsed with orjson when it is installed (the CLI's environment has it; the
Lambda never reads files), else with the standard library.
"""

from __future__ import annotations

import functools
import gzip
import io
import itertools
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import IO, Any

from chalicelib.events import event as events
from chalicelib.events.event import Event, finding_kind
from chalicelib.events.finding import DETAIL_TYPES
from chalicelib.events.record import EventError

_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
_GZIP_MAGIC = b"\x1f\x8b"

Wanted = AbstractSet[tuple[str, str]]
RecordTest = Callable[[Any], bool]
"""Whether a record is wanted (replay's selection of a time range, accounts, regions)."""
Want = Wanted | RecordTest | None
Item = Event | EventError | None


def _json_loads() -> Callable[[bytes], Any]:
    try:
        import orjson
    except ImportError:
        return json.loads
    return orjson.loads  # its JSONDecodeError is json's: errors read the same


loads = _json_loads()


def iter_event_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """The files to read under `paths`, folders walked recursively in a stable order.

    A file named explicitly is always read. Inside folders only JSON files (optionally
    gzipped) are, and CloudTrail's digest files, which hold no records, are skipped.
    """
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            yield path
            continue
        for folder, subfolders, names in os.walk(path):
            subfolders.sort()
            for name in sorted(names):
                if _looks_like_event_file(name):
                    yield Path(folder) / name


def _looks_like_event_file(name: str) -> bool:
    if "CloudTrail-Digest" in name:
        return False
    base = name[:-3] if name.endswith(".gz") else name
    return base.endswith(_JSON_SUFFIXES)


def read_events(
    paths: Iterable[str | os.PathLike[str]],
    wanted: Want = None,
    workers: int = 1,
    on_file: Callable[[Path], None] = lambda path: None,
    wanted_in: Callable[[Path], Want] | None = None,
) -> Iterator[Item]:
    """Every event under `paths`, in file order; problems come out as `EventError`s.

    With `workers` > 1, files are decompressed and parsed in that many processes (parsing
    JSON is most of a replay's time, and files are independent); the order is kept, and
    files too large to hold whole are still streamed here, in their turn. `on_file` is
    called after each file (a progress bar). `wanted_in(path)`, when given, says what is
    wanted of each file instead of `wanted` (it must pickle, for the workers).
    """
    files = iter_event_files(paths)
    if workers <= 1:
        for path in files:
            yield from read_event_file(path, wanted_in(path) if wanted_in else wanted)
            on_file(path)
        return
    import multiprocessing

    # forkserver, not fork: forking a process that runs threads (a test runner's, a
    # progress bar's) can copy a held lock into the child and hang it.
    with multiprocessing.get_context("forkserver").Pool(workers) as pool:
        read = functools.partial(_read_small_file, wanted=wanted, wanted_in=wanted_in)
        for path, items in pool.imap(read, files):
            yield from read_event_file(path, wanted_in(path) if wanted_in else wanted) if items is None else items
            on_file(path)


def _read_small_file(
    path: Path, wanted: Want, wanted_in: Callable[[Path], Want] | None
) -> tuple[Path, list[Item] | None]:
    """A worker's part: the items of a file small enough to hold, or None to stream it."""
    try:
        if path.stat().st_size > _WHOLE_FILE_LIMIT:
            return path, None
    except OSError:
        pass  # read_event_file reports it
    return path, list(read_event_file(path, wanted_in(path) if wanted_in else wanted))


def read_event_file(path: Path, wanted: Want = None, name: str | None = None) -> Iterator[Item]:
    """The events of one file, whichever of the supported layouts it uses; `name` is how
    messages name it (default: its path; an S3 replay names the object)."""
    name = name or str(path)
    try:
        stream, problem = _open(path)
    except OSError as error:
        yield EventError(f"cannot read file: {error.strerror or error}", name)
        return
    try:
        with stream:
            yield from _read_stream(stream, name, wanted)
    except (OSError, EOFError, zlib.error) as error:
        # A truncated or corrupt gzip file read as a stream: what was read before is kept.
        problem = f"cannot read file: {error}"
    except _Inflated:
        problem = (
            f"cannot read file: it inflates to more than {MAX_INFLATED_BYTES // 2**20} MiB, the most replay "
            "decompresses of one file (a compression bomb, or an export to decompress before reading it)"
        )
    if problem:
        yield EventError(problem, name)


_WHOLE_FILE_LIMIT = 16 * 1024 * 1024
"""Gzip files up to this size (CloudTrail's own are a few MB) are decompressed in one call,
several times faster than a stream; larger ones (exports) are streamed line by line."""

MAX_INFLATED_BYTES = 256 * 1024 * 1024
"""The most bytes decompressed from one gzip file. CloudTrail's own files inflate to a few
MB, tens at most; a file that inflates further is a compression bomb, or an export that is
better decompressed first (an uncompressed file is streamed without a limit)."""


class _Inflated(Exception):
    """A gzip file inflated past MAX_INFLATED_BYTES."""


class _Capped:
    """A decompressed stream that gives at most MAX_INFLATED_BYTES in all, then raises
    `_Inflated`: lines and reads are bounded, so a single 3 GB line is never held."""

    def __init__(self, stream: gzip.GzipFile, raw: IO[bytes]) -> None:
        self.stream = stream
        self.raw = raw
        self.room = MAX_INFLATED_BYTES

    def _taken(self, data: bytes) -> bytes:
        if len(data) > self.room:
            raise _Inflated
        self.room -= len(data)
        return data

    def readline(self) -> bytes:
        return self._taken(self.stream.readline(self.room + 1))

    def read(self) -> bytes:
        return self._taken(self.stream.read(self.room + 1))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def __enter__(self) -> _Capped:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.close()
        self.raw.close()  # GzipFile leaves the file it was given open


def _open(path: Path) -> tuple[IO[bytes] | _Capped, str | None]:
    """The file's bytes as a stream, and a problem found while decompressing it whole."""
    raw = open(path, "rb")
    if raw.peek(2)[:2] != _GZIP_MAGIC:
        return raw, None
    if os.fstat(raw.fileno()).st_size <= _WHOLE_FILE_LIMIT:
        with raw:
            data, problem = _gunzip(raw.read())
        if data is not None:
            return io.BytesIO(data), problem
        raw = open(path, "rb")  # it inflates past the cap: streamed, what comes before it is read
    return _Capped(gzip.GzipFile(fileobj=raw, mode="rb"), raw), None


def _gunzip(data: bytes) -> tuple[bytes | None, str | None]:
    """Every member of a gzip file; when it is cut short or corrupt, what came before and
    why; None if it inflates past MAX_INFLATED_BYTES (then it is streamed instead)."""
    parts: list[bytes] = []
    room = MAX_INFLATED_BYTES
    while data:
        decompressor = zlib.decompressobj(31)
        try:
            part = decompressor.decompress(data, room + 1)
        except zlib.error as error:
            return b"".join(parts), f"cannot read file: {error}"
        if len(part) > room:
            return None, None
        room -= len(part)
        parts.append(part)
        if not decompressor.eof:
            return b"".join(
                parts
            ), "cannot read file: Compressed file ended before the end-of-stream marker was reached"
        data = decompressor.unused_data
    return b"".join(parts), None


def _read_stream(stream: IO[bytes] | _Capped, name: str, wanted: Want) -> Iterator[Item]:
    lines = _numbered_lines(stream)
    number, first = next(lines, (0, b""))
    if not first:
        return
    if first.lstrip().startswith(b"["):
        yield from _from_text(first + stream.read(), name, wanted)
        return
    try:
        document = loads(first)
    except ValueError:
        # Not one object per line: a pretty-printed document spanning several lines.
        yield from _from_text(first + stream.read(), name, wanted)
        return
    try:
        following = next(lines, None)
    except _Inflated:
        yield from _from_document(document, f"{name} line {number}", wanted)  # what came before it
        raise
    if following is None:
        # One line, one document: the layout of CloudTrail's own S3 files.
        yield from _from_document(document, name, wanted)
        return
    yield from _from_document(document, f"{name} line {number}", wanted)
    for number, line in itertools.chain([following], lines):
        try:
            document = loads(line)
        except ValueError as error:
            yield EventError(f"not JSON: {_json_problem(error)}", f"{name} line {number}")
            continue
        yield from _from_document(document, f"{name} line {number}", wanted)


def _numbered_lines(stream: IO[bytes] | _Capped) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


def _from_text(text: bytes, name: str, wanted: Want) -> Iterator[Item]:
    try:
        document = loads(text)
    except ValueError as error:
        yield EventError(f"not JSON: {_json_problem(error)}", name)
        return
    yield from _from_document(document, name, wanted)


def _from_document(document: Any, name: str, wanted: Want) -> list[Item]:
    """The items of one parsed document, as a list: the document is in memory already,
    and one list is much cheaper than a generator per record."""
    if isinstance(document, list):
        return _from_items(document, name, wanted)
    if isinstance(document, dict) and "Records" in document:
        records = document["Records"]
        if not isinstance(records, list):
            return [EventError("'Records' must be an array of CloudTrail records", name)]
        return _from_items(records, name, wanted)
    return [None if _unwanted(document, wanted) else _event(document, name)]


def _from_items(items: list[Any], name: str, wanted: Want) -> list[Item]:
    return [
        None if _unwanted(item, wanted) else _event(item, f"{name} record {number}")
        for number, item in enumerate(items, start=1)
    ]


def _unwanted(item: Any, wanted: Want) -> bool:
    """A well-formed-enough record (or envelope) naming a call no playbook answers."""
    if wanted is None or type(item) is not dict:
        return False
    if item.get("detail-type") in DETAIL_TYPES or finding_kind(item) is not None:
        return False  # a detector's finding: few, and its model says what it is
    if "detail-type" in item:
        item = item.get("detail")
        if type(item) is not dict:
            return False
    if callable(wanted):
        return not wanted(item)
    return (item.get("eventSource"), item.get("eventName")) not in wanted


def _event(item: Any, where: str) -> Event | EventError:
    try:
        return events.from_any(item, where)
    except EventError as error:
        return error


def _json_problem(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    return str(error)
