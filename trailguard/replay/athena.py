"""Athena: the CloudTrail table's DDL, the candidate query, and a runner.

The DDL follows AWS's documented table with partition projection ("Create the table for
CloudTrail logs in Athena using partition projection", Amazon Athena User Guide:
https://docs.aws.amazon.com/athena/latest/ug/create-cloudtrail-table-partition-projection.html).
AWS's example covers one account and one region (`PARTITIONED BY (timestamp string)`); an
organization needs the account and region in the partition too, so the same table is
partitioned by `account`, `region` and `timestamp`, all projected: `timestamp` as a date
(`yyyy/MM/dd`), `region` as an enum, `account` as an enum when the accounts are known and
`injected` otherwise (then every query must list its accounts: "Use dynamic ID
partitioning", same guide). One table shape serves both layouts, so the candidate query does
not depend on which one the trail writes.

The candidate query selects the successful calls of the selection's (eventSource, eventName)
pairs, in its time range, accounts and regions. The partition columns come first so that
Athena reads only the asked-for days, accounts and regions; the pairs do not reduce what is
scanned (JSON is not columnar: every object of a read partition is read whole) but keep the
result, and so the local decision path's work, small. Every value in the SQL is a literal
escaped by `literal`, every name an identifier checked and quoted by `identifier`: names come
from playbooks and command lines, never pasted.

Nested columns are returned as JSON text (`json_format(CAST(x AS JSON))`: engine version 3
casts a ROW to a JSON object with its field names), so that `table.rebuild` turns each
result row (all text, as GetQueryResults returns it) back into a record.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from trailguard.replay.s3layout import Location
from trailguard.replay.selection import Selection, SelectionError, checked_accounts, checked_regions, iso
from trailguard.replay.table import COLUMNS, PATH_COLUMN, athena_type, is_nested

AthenaClient = Any

DEFAULT_TABLE = "cloudtrail_logs"

DEFAULT_REGIONS: tuple[str, ...] = tuple(
    "af-south-1 ap-east-1 ap-northeast-1 ap-northeast-2 ap-northeast-3 ap-south-1 ap-south-2 ap-southeast-1 "
    "ap-southeast-2 ap-southeast-3 ap-southeast-4 ap-southeast-5 ap-southeast-7 ca-central-1 ca-west-1 eu-central-1 "
    "eu-central-2 eu-north-1 eu-south-1 eu-south-2 eu-west-1 eu-west-2 eu-west-3 il-central-1 "
    "me-central-1 me-south-1 mx-central-1 sa-east-1 us-east-1 us-east-2 us-west-1 us-west-2".split()
)
"""Commercial regions for the region enum (an enum must list every value that may appear;
a region missing here is silently not read: pass the organization's own list)."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def literal(text: str) -> str:
    """A SQL string literal for Athena (Trino) and DuckDB: quotes doubled, nothing else is
    special in either (a backslash is an ordinary character in standard SQL strings)."""
    if "\x00" in text:
        raise SelectionError(f"{text!r} contains a NUL character, which no CloudTrail value has")
    return "'" + text.replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A quoted SQL identifier; only plain names (letters, digits, underscores) are taken,
    since Glue lowercases names and a quote in one is never intended."""
    if not _IDENTIFIER.fullmatch(name):
        raise SelectionError(f"{name!r} is not a table or database name (letters, digits and underscores)")
    return f'"{name}"'


def table_name(table: str, database: str | None = None) -> str:
    return f"{identifier(database)}.{identifier(table)}" if database else identifier(table)


# -- DDL ------------------------------------------------------------------------------------


def ddl(
    location: Location,
    *,
    start: dt.date,
    table: str = DEFAULT_TABLE,
    database: str | None = None,
    accounts: Sequence[str] | None = None,
    regions: Sequence[str] = DEFAULT_REGIONS,
) -> str:
    """CREATE EXTERNAL TABLE for the trail at `location` (an organization trail when the
    location has an organization id), projecting days from `start` to now."""
    accounts = checked_accounts(accounts) if accounts is not None else None
    regions = checked_regions(regions)
    name = f"`{database}`.`{table}`" if database else f"`{table}`"
    identifier(table)
    if database:
        identifier(database)
    root = f"s3://{location.bucket}/{location.logs}" + (f"{location.organization}/" if location.organization else "")
    columns = ",\n".join(f"  {field.column} {athena_type(field)}" for field in COLUMNS)
    account_projection = (
        [("projection.account.type", "enum"), ("projection.account.values", ",".join(accounts))]
        if accounts
        else [("projection.account.type", "injected")]
    )
    properties = [
        ("projection.enabled", "true"),
        *account_projection,
        ("projection.region.type", "enum"),
        ("projection.region.values", ",".join(regions)),
        ("projection.timestamp.type", "date"),
        ("projection.timestamp.format", "yyyy/MM/dd"),
        ("projection.timestamp.range", f"{start:%Y/%m/%d},NOW"),
        ("projection.timestamp.interval", "1"),
        ("projection.timestamp.interval.unit", "DAYS"),
        ("storage.location.template", root + "${account}/CloudTrail/${region}/${timestamp}"),
    ]
    tblproperties = ",\n".join(f"  {literal(key)}={literal(value)}" for key, value in properties)
    return (
        f"CREATE EXTERNAL TABLE {name} (\n{columns}\n)\n"
        "PARTITIONED BY (\n  `account` string,\n  `region` string,\n  `timestamp` string)\n"
        "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'\n"
        "STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'\n"
        "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n"
        f"LOCATION {literal(root)}\n"
        f"TBLPROPERTIES (\n{tblproperties}\n)"
    )


# -- the candidate query --------------------------------------------------------------------


def candidate_query(
    selection: Selection,
    *,
    table: str = DEFAULT_TABLE,
    database: str | None = None,
    accounts_required: bool = False,
    columns: str = "records",
) -> str:
    """The SQL selecting the candidates of `selection`, readable and stable (the same
    selection gives the same text). `columns="records"` returns what `table.rebuild` needs,
    `columns="count"` only counts. `accounts_required` is for a table whose accounts are
    injected: such a table cannot be queried without them."""
    if accounts_required and selection.accounts is None:
        raise SelectionError(
            "this table projects accounts by injection: list the accounts (or let the S3 layout discover them)"
        )
    if selection.since is None or selection.until is None:
        raise SelectionError("an Athena replay needs --since: the time range chooses the partitions scanned")
    where = predicate(selection)
    if columns == "count":
        select = "count(*) AS candidates"
        order = ""
    elif columns == "records":
        select = ",\n  ".join(
            [
                *(
                    f"json_format(CAST({field.column} AS JSON)) AS {field.column}" if is_nested(field) else field.column
                    for field in COLUMNS
                ),
                "account",
                "region",
                '"timestamp"',
                f'"{PATH_COLUMN}"',
            ]
        )
        order = "\nORDER BY eventtime, eventid"
    else:
        raise ValueError(f"columns must be 'records' or 'count', not {columns!r}")
    pairs = len(selection.pairs)
    calls = "successful calls" if selection.successful_only else "calls"
    return (
        f"-- trailguard replay: {calls} of {pairs} (eventSource, eventName) pair{'s' * (pairs != 1)}, "
        f"{iso(selection.since)} to {iso(selection.until)}\n"
        f"SELECT\n  {select}\nFROM {table_name(table, database)}\nWHERE " + "\n  AND ".join(where) + order
    )


def predicate(selection: Selection) -> list[str]:
    """The conditions of the candidate query, to be joined by AND: partition predicates
    first (plain comparisons of partition columns with literals, so that Athena's
    projection prunes), then success, the exact time range and the pairs. DuckDB's local
    engine runs the same conditions (`duckdb_engine`); `Selection.takes` says the same in
    Python."""
    where = []
    if selection.bounded:
        assert selection.since is not None and selection.until is not None
        first, last = selection.day_bounds()
        where.append(f'"timestamp" BETWEEN {literal(f"{first:%Y/%m/%d}")} AND {literal(f"{last:%Y/%m/%d}")}')
    if selection.accounts is not None:
        where.append(f"account IN ({', '.join(map(literal, selection.accounts))})")
    if selection.regions is not None:
        where.append(f"region IN ({', '.join(map(literal, selection.regions))})")
    if selection.successful_only:
        where.append("(errorcode IS NULL OR errorcode = '')")
    if selection.bounded:
        assert selection.since is not None and selection.until is not None
        when = "try(from_iso8601_timestamp(eventtime))"
        where.append(f"{when} >= from_iso8601_timestamp({literal(iso(selection.since))})")
        where.append(f"{when} < from_iso8601_timestamp({literal(iso(selection.until))})")
    calls = [
        f"(eventsource = {literal(source)} AND eventname IN ({', '.join(map(literal, names))}))"
        for source, names in selection.by_source().items()
    ]
    where.append("(\n       " + "\n    OR ".join(calls) + "\n  )")
    return where


# -- running it -----------------------------------------------------------------------------


class AthenaQueryError(RuntimeError):
    """A query that did not succeed: its id, final state and Athena's reason."""

    def __init__(self, execution_id: str, state: str, reason: str) -> None:
        self.execution_id = execution_id
        self.state = state
        self.reason = reason
        super().__init__(f"Athena query {execution_id} {state.lower()}: {reason}")


@dataclass
class QueryStatistics:
    execution_id: str = ""
    data_scanned_bytes: int = 0
    engine_ms: int = 0
    polls: int = 0


@dataclass
class AthenaRunner:
    """StartQueryExecution, GetQueryExecution polled with exponential backoff, then
    GetQueryResults paginated into dicts of text (None for NULL). A query that fails, is
    cancelled or outlasts `timeout` raises `AthenaQueryError`; one still running when the
    caller gives up (timeout, Ctrl-C) is stopped, since a forgotten query keeps scanning."""

    client: AthenaClient
    workgroup: str = "primary"
    database: str | None = None
    catalog: str = "AwsDataCatalog"
    output_location: str | None = None
    first_poll: float = 0.5
    max_poll: float = 10.0
    timeout: float = 1800.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    statistics: QueryStatistics = field(default_factory=QueryStatistics)

    def start(self, sql: str) -> str:
        kwargs: dict[str, Any] = {
            "QueryString": sql,
            "WorkGroup": self.workgroup,
            "ClientRequestToken": str(uuid.uuid4()),
        }
        context = {"Catalog": self.catalog} | ({"Database": self.database} if self.database else {})
        kwargs["QueryExecutionContext"] = context
        if self.output_location:
            kwargs["ResultConfiguration"] = {"OutputLocation": self.output_location}
        return self.client.start_query_execution(**kwargs)["QueryExecutionId"]

    def wait(self, execution_id: str) -> None:
        """Poll until the query ends; raise unless it succeeded."""
        self.statistics = QueryStatistics(execution_id)
        delay = self.first_poll
        deadline = self.clock() + self.timeout
        try:
            while True:
                execution = self.client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
                self.statistics.polls += 1
                status = execution["Status"]
                state = status["State"]
                if state == "SUCCEEDED":
                    stats = execution.get("Statistics", {})
                    self.statistics.data_scanned_bytes = int(stats.get("DataScannedInBytes", 0))
                    self.statistics.engine_ms = int(stats.get("EngineExecutionTimeInMillis", 0))
                    return
                if state in ("FAILED", "CANCELLED"):
                    reason = status.get("AthenaError", {}).get("ErrorMessage") or status.get(
                        "StateChangeReason", "no reason given"
                    )
                    raise AthenaQueryError(execution_id, state, reason)
                if self.clock() + delay > deadline:
                    raise TimeoutError(f"Athena query {execution_id} still {state.lower()} after {self.timeout:.0f} s")
                self.sleep(delay)
                delay = min(delay * 2, self.max_poll)
        except (TimeoutError, KeyboardInterrupt):
            self.client.stop_query_execution(QueryExecutionId=execution_id)
            raise

    def rows(self, execution_id: str) -> Iterator[dict[str, str | None]]:
        """The result rows, each as {column: text or None}; the header row is skipped."""
        names: list[str] | None = None
        first = True
        for page in self.client.get_paginator("get_query_results").paginate(
            QueryExecutionId=execution_id, PaginationConfig={"PageSize": 1000}
        ):
            result = page["ResultSet"]
            if names is None:
                names = [column["Name"] for column in result["ResultSetMetadata"]["ColumnInfo"]]
            rows = result.get("Rows", [])
            if first and rows and _is_header(rows[0], names):
                rows = rows[1:]  # SELECT results repeat the column names as their first row
            first = False
            for row in rows:
                yield {name: datum.get("VarCharValue") for name, datum in zip(names, row["Data"], strict=True)}

    def run(self, sql: str) -> Iterator[dict[str, str | None]]:
        execution_id = self.start(sql)
        self.wait(execution_id)
        yield from self.rows(execution_id)


def _is_header(row: Any, names: list[str]) -> bool:
    return [datum.get("VarCharValue") for datum in row["Data"]] == names
