"""Reading CloudTrail events in bulk from the files people actually have.

CloudTrail's S3 delivery writes `{"Records": [...]}` files, usually gzipped; exports and
tools write JSON Lines of records or of EventBridge events, or plain JSON arrays. The
reader tells them apart by content, not by file name, and streams: memory holds one
file of the S3 kind at a time and one line of JSON Lines, never the whole corpus.

A bad file or record does not stop a read: it is yielded as an `EventError` that names
the file and the record (or line), so that callers can report it and go on.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import zlib
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from chalicelib.events import CloudTrailEvent, EventError

_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
_GZIP_MAGIC = b"\x1f\x8b"

loads = json.loads


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
) -> Iterator[CloudTrailEvent | EventError]:
    """Every event under `paths`, in file order; problems come out as `EventError`s."""
    for path in iter_event_files(paths):
        yield from read_event_file(path)


def read_event_file(path: Path) -> Iterator[CloudTrailEvent | EventError]:
    """The events of one file, whichever of the supported layouts it uses."""
    name = str(path)
    try:
        stream = _open(path)
    except OSError as error:
        yield EventError(f"cannot read file: {error.strerror or error}", name)
        return
    try:
        with stream:
            yield from _read_stream(stream, name)
    except (OSError, EOFError, zlib.error) as error:
        # A truncated or corrupt gzip file: what was read before is kept.
        yield EventError(f"cannot read file: {error}", name)


def _open(path: Path) -> IO[bytes]:
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller's `with`
    if raw.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def _read_stream(stream: IO[bytes], name: str) -> Iterator[CloudTrailEvent | EventError]:
    lines = _numbered_lines(stream)
    number, first = next(lines, (0, b""))
    if not first:
        return
    if first.lstrip().startswith(b"["):
        yield from _from_text(first + stream.read(), name)
        return
    try:
        document = loads(first)
    except ValueError:
        # Not one object per line: a pretty-printed document spanning several lines.
        yield from _from_text(first + stream.read(), name)
        return
    following = next(lines, None)
    if following is None:
        # One line, one document: the layout of CloudTrail's own S3 files.
        yield from _from_document(document, name)
        return
    yield from _from_document(document, f"{name} line {number}")
    for number, line in itertools.chain([following], lines):
        try:
            document = loads(line)
        except ValueError as error:
            yield EventError(f"not JSON: {_json_problem(error)}", f"{name} line {number}")
            continue
        yield from _from_document(document, f"{name} line {number}")


def _numbered_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


def _from_text(text: bytes, name: str) -> Iterator[CloudTrailEvent | EventError]:
    try:
        document = loads(text)
    except ValueError as error:
        yield EventError(f"not JSON: {_json_problem(error)}", name)
        return
    yield from _from_document(document, name)


def _from_document(document: Any, name: str) -> Iterator[CloudTrailEvent | EventError]:
    if isinstance(document, list):
        yield from _from_items(document, name)
    elif isinstance(document, dict) and "Records" in document:
        records = document["Records"]
        if not isinstance(records, list):
            yield EventError("'Records' must be an array of CloudTrail records", name)
            return
        yield from _from_items(records, name)
    else:
        yield _event(document, name)


def _from_items(items: list[Any], name: str) -> Iterator[CloudTrailEvent | EventError]:
    for number, item in enumerate(items, start=1):
        yield _event(item, f"{name} record {number}")


def _event(item: Any, where: str) -> CloudTrailEvent | EventError:
    try:
        return CloudTrailEvent.from_any(item, where)
    except EventError as error:
        return error


def _json_problem(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    return str(error)
