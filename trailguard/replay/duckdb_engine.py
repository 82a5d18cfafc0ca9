"""The candidate query on DuckDB, over CloudTrail's delivery files: the same SQL as on Athena.

A view named like the Athena table, with its column names and partition columns, is laid
over `read_json` of CloudTrail's `{"Records": [...]}` files (gzipped or not), one row per
record. The partition columns come from each file's path in CloudTrail's S3 layout
(`selection.LAYOUT_PATTERN`), or for a file outside it from the record (`recipientAccountId`,
`awsRegion`, the day of `eventTime`), as `selection.record_partition` does; `"$path"` is the
file, as Athena's. Two columns Athena does not have serve the local replay: `"$row"`, the
record's number in its file, and `"$rows"`, how many records the file holds.

Then `athena.candidate_query` runs unchanged. The dialects differ only where `DIALECT`
says, and in the view's types, nowhere else:

- `from_iso8601_timestamp(text)`: Trino's; DuckDB casts ISO 8601 text to TIMESTAMPTZ (the
  session's time zone is UTC, so text without an offset is UTC on both).
- `json_format(json)`: Trino's JSON-to-text; DuckDB's JSON values are text already.
- The view holds each column the query does not filter on as the JSON of the field as it
  was written (`table.duckdb_type`), where Athena has structs: the query returns nested
  columns as JSON text on both, and a local replay rebuilds each record exactly.
- `try(expr)` exists in both; strings are standard SQL literals and identifiers are
  double-quoted in both.

A local replay (`batch`) runs the candidate query's own conditions (`athena.predicate`) and
also returns each file's last record, which carries `"$rows"`: one scan gives both the
candidates and how many records were read, in file order, with memory bounded by a batch.

A file DuckDB cannot read (a record that is not an object, a document larger than
`MAX_OBJECT_BYTES`, a file that is not JSON) makes the query fail with DuckDB's message
naming the file: `batch` leaves that file out and reports it, and the caller reads it with
the pure-Python reader, which says what is wrong with it.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trailguard.replay import athena
from trailguard.replay.selection import LAYOUT_PATTERN, Selection
from trailguard.replay.table import PATH_COLUMN, VIEW_COLUMNS, duckdb_type

MAX_OBJECT_BYTES = 256 * 1024 * 1024
"""The largest JSON document DuckDB is given (a `{"Records": [...]}` file), the Python
reader's decompression cap (eventfiles.MAX_INFLATED_BYTES). DuckDB itself inflates a gzip
file whole, whatever its `maximum_object_size` says (measured with 2.0.1), so a file that
may inflate past this goes to the Python reader, which stops at the cap (`fits`)."""

MAX_GZIP_BYTES = 3 * 1024 * 1024
"""The largest gzip file DuckDB is given: deflate inflates at most about 1,032 times, so a
file this small inflates to less than 4 GiB, and the size its trailer gives (modulo 4 GiB)
is the true one. CloudTrail's own files are a few hundred KB."""

MEMORY_LIMIT = "2GB"
"""DuckDB's memory limit (its default is 80 % of the machine): what is left of a crafted
file that passes `fits` (several gzip members) fails the batch rather than the machine; the
batch is then read by the Python reader."""

DIALECT = (
    "SET TimeZone = 'UTC'",
    "CREATE OR REPLACE MACRO from_iso8601_timestamp(text) AS CAST(text AS TIMESTAMPTZ)",
    "CREATE OR REPLACE MACRO json_format(value) AS CAST(value AS VARCHAR)",
)
"""Everything that makes DuckDB accept the Athena SQL (see the module's note)."""

ROW_COLUMN = "$row"
ROWS_COLUMN = "$rows"
_SNIFF_BYTES = 64


def fits(path: Path) -> bool:
    """Whether DuckDB may read this delivery file: it cannot inflate past MAX_OBJECT_BYTES
    (its gzip trailer says how large it inflates, and it is small enough for that to be
    true), or, not compressed, it is no larger than that."""
    try:
        size = path.stat().st_size
        with path.open("rb") as raw:
            if raw.read(2) != b"\x1f\x8b":
                return size <= MAX_OBJECT_BYTES
            if size > MAX_GZIP_BYTES:
                return False
            raw.seek(-4, 2)
            return int.from_bytes(raw.read(4), "little") <= MAX_OBJECT_BYTES
    except OSError:
        return False


def is_delivery_file(path: Path) -> bool:
    """Whether the file is a CloudTrail delivery file, `{"Records": [...]}`, gzipped or not,
    by its first bytes (as the Python reader tells layouts apart: by content). Other layouts
    (JSON Lines of records or EventBridge events, JSON arrays) are the Python reader's."""
    try:
        with path.open("rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            stream: Any = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
            start = stream.read(_SNIFF_BYTES).lstrip()
    except (OSError, EOFError):
        return False
    return start.startswith(b"{") and start[1:].lstrip().startswith(b'"Records"')


def view_sql(paths: Sequence[Path], name: str = athena.DEFAULT_TABLE) -> str:
    """CREATE VIEW `name` over the delivery files `paths`, with the Athena table's columns."""
    if not paths:
        raise ValueError("no files to read")
    files = "[" + ", ".join(athena.literal(str(path)) for path in paths) + "]"
    record = "STRUCT(" + ", ".join(f'"{field.name}" {duckdb_type(field)}' for field in VIEW_COLUMNS) + ")[]"
    pattern = athena.literal(LAYOUT_PATTERN)

    def folder(group: int) -> str:
        return f"nullif(regexp_extract(filename, {pattern}, {group}), '')"

    columns = [f'r."{field.name}" AS {field.column}' for field in VIEW_COLUMNS]
    partitions = [
        f'coalesce({folder(1)}, r."recipientAccountId") AS account',
        f'coalesce({folder(2)}, r."awsRegion") AS region',
        f"coalesce(nullif(concat_ws('/', {folder(3)}, {folder(4)}, {folder(5)}), ''), "
        "replace(substr(r.\"eventTime\", 1, 10), '-', '/')) AS \"timestamp\"",
        f'filename AS "{PATH_COLUMN}"',
        f'n AS "{ROW_COLUMN}"',
        f'total AS "{ROWS_COLUMN}"',
    ]
    select = ",\n  ".join(columns + partitions)
    source = (
        'SELECT unnest("Records") AS r, generate_subscripts("Records", 1) AS n, len("Records") AS total, filename '
        f"FROM read_json({files}, format = 'unstructured', columns = {{'Records': {athena.literal(record)}}}, "
        f"records = true, filename = true, compression = 'auto_detect', maximum_object_size = {MAX_OBJECT_BYTES})"
    )
    return f"CREATE OR REPLACE VIEW {athena.identifier(name)} AS\nSELECT\n  {select}\nFROM ({source})"


def connect(threads: int | None = None) -> Any:
    """An in-memory DuckDB with the dialect macros."""
    import duckdb

    connection = duckdb.connect(":memory:")
    connection.execute("SET enable_progress_bar = false")  # replay draws its own, on stderr
    connection.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    if threads:
        connection.execute(f"SET threads = {int(threads)}")
    for statement in DIALECT:
        connection.execute(statement)
    return connection


def local_query(selection: Selection, table: str = athena.DEFAULT_TABLE) -> str:
    """The candidate query's conditions, and each file's last record (for `"$rows"`)."""
    condition = "(" + "\n  AND ".join(athena.predicate(selection)) + ")"
    columns = ", ".join(field.column for field in VIEW_COLUMNS)
    return (
        f'SELECT "{PATH_COLUMN}", "{ROW_COLUMN}", "{ROWS_COLUMN}", {condition} AS candidate, {columns}\n'
        f'FROM {athena.identifier(table)}\nWHERE {condition} OR "{ROW_COLUMN}" = "{ROWS_COLUMN}"'
    )


@dataclass
class FileRows:
    """What a batch found in one file: how many records it holds, and its candidates' rows
    (dicts by column name), in file order."""

    records: int = 0
    candidates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Batch:
    files: dict[str, FileRows]
    """By path, for each file DuckDB read (a file with no record is absent: it holds none)."""
    refused: list[tuple[Path, str]]
    """Files DuckDB could not read, with its reason: the Python reader's to read."""


_FILE_IN_ERROR = re.compile(r'(?:in|file) "([^"]+)"')


def batch(connection: Any, paths: Sequence[Path], selection: Selection) -> Batch:
    """The candidates of `paths` and their record counts; files DuckDB refuses are left out."""
    import duckdb

    remaining = list(paths)
    refused: list[tuple[Path, str]] = []
    sql = local_query(selection)
    while remaining:
        try:
            connection.execute(view_sql(remaining))
            result = connection.execute(sql)
            names = [column[0] for column in result.description]
            rows = result.fetchall()
            break
        except duckdb.Error as error:
            reason = str(error).splitlines()[0]
            culprit = _culprit(str(error), remaining)
            if culprit is None:  # out of memory, or a reason that names no file: all of them
                return Batch({}, [*refused, *((path, reason) for path in remaining)])
            remaining.remove(culprit)
            refused.append((culprit, reason))
    else:
        return Batch({}, refused)
    files: dict[str, FileRows] = {}
    for row in rows:
        path, number, total, candidate = row[0], row[1], row[2], row[3]
        found = files.setdefault(path, FileRows())
        found.records = total
        if candidate:
            found.candidates.append((number, dict(zip(names[4:], row[4:], strict=True))))
    for found in files.values():
        found.candidates.sort(key=lambda item: item[0])
    return Batch(files, refused)


def _culprit(message: str, paths: Iterable[Path]) -> Path | None:
    """The file DuckDB's error names, among `paths` (quoted in JSON errors, after a colon
    in I/O errors: the longest path the message holds)."""
    named = {match.group(1) for match in _FILE_IN_ERROR.finditer(message)}
    quoted = next((path for path in paths if str(path) in named), None)
    if quoted is not None:
        return quoted
    mentioned = [path for path in paths if str(path) in message]
    return max(mentioned, key=lambda path: len(str(path))) if mentioned else None
