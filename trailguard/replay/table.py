"""The CloudTrail table both engines query, and how a record is rebuilt from its row.

The columns are those of AWS's documented table, "Create the table for CloudTrail logs in
Athena using partition projection" (Amazon Athena User Guide,
https://docs.aws.amazon.com/athena/latest/ug/create-cloudtrail-table-partition-projection.html),
in its order, with the names CloudTrail gives each field. Athena's JSON SerDe matches JSON keys
to columns case-insensitively and reports lowercase names; DuckDB matches them exactly, so
each column keeps CloudTrail's own spelling here and both are derived from this one list.

DuckDB's view (duckdb_engine.py) has the same column names, and more: the top-level fields
AWS's table has no column for (`managementEvent`, `insightDetails`, `annotation`), and every
column that is not text a filter reads holds the field's JSON as it was written, so that a
local replay rebuilds each candidate exactly (`exact_record`), with the same output as the
pure-Python reader.

Rebuilding a record from an Athena row (`rebuild`) loses, by the table's design (measured
on the real datasets by tests/trailguard/replay/test_engines.py):
- every field that is not a column (`managementEvent`, `insightDetails`, `annotation`, ...)
  and every nested field the structs do not declare (`userIdentity.identityProvider`,
  `userIdentity.credentialId`, `userIdentity.inScopeOf`, `sessionContext.sourceIdentity`,
  `sessionContext.assumedRoot`, `webIdFederationData.attributes` values that are not text, ...);
- the difference between a field that is absent and one that is null;
- the type of scalar fields read as STRING (a number or boolean becomes text), except
  `readOnly`, which is turned back into a boolean.
`requestParameters`, `responseElements`, `additionalEventData`, `serviceEventDetails` and
`edgeDeviceDetails` are STRING columns holding the JSON text: they come back whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.playbooks.expressions import CLOUDTRAIL_FIELDS


@dataclass(frozen=True)
class Field:
    """A column or a struct field: CloudTrail's name, and its type.

    `kind` is "string" (a scalar), "json" (a STRING column holding a JSON document),
    "struct" (`fields`), "array" (of a struct of `fields`) or "map" (string to string)."""

    name: str
    kind: str = "string"
    fields: tuple[Field, ...] = ()

    @property
    def column(self) -> str:
        return self.name.lower()


def _s(*names: str) -> tuple[Field, ...]:
    return tuple(Field(name) for name in names)


USER_IDENTITY = Field(
    "userIdentity",
    "struct",
    (
        *_s("type", "principalId", "arn", "accountId", "invokedBy", "accessKeyId", "userName"),
        Field("onBehalfOf", "struct", _s("userId", "identityStoreArn")),
        Field(
            "sessionContext",
            "struct",
            (
                Field("attributes", "struct", _s("mfaAuthenticated", "creationDate")),
                Field("sessionIssuer", "struct", _s("type", "principalId", "arn", "accountId", "userName")),
                Field("ec2RoleDelivery"),
                Field("webIdFederationData", "struct", (Field("federatedProvider"), Field("attributes", "map"))),
            ),
        ),
    ),
)

COLUMNS: tuple[Field, ...] = (
    Field("eventVersion"),
    USER_IDENTITY,
    *_s("eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent", "errorCode"),
    Field("errorMessage"),
    Field("requestParameters", "json"),
    Field("responseElements", "json"),
    Field("additionalEventData", "json"),
    *_s("requestID", "eventID", "readOnly"),
    Field("resources", "array", _s("ARN", "accountId", "type")),
    *_s("eventType", "apiVersion", "recipientAccountId"),
    Field("serviceEventDetails", "json"),
    *_s("sharedEventID", "vpcEndpointId", "vpcEndpointAccountId", "eventCategory"),
    Field("addendum", "struct", _s("reason", "updatedFields", "originalRequestID", "originalEventID")),
    Field("sessionCredentialFromConsole"),
    Field("edgeDeviceDetails", "json"),
    Field("tlsDetails", "struct", _s("tlsVersion", "cipherSuite", "clientProvidedHostHeader")),
)
"""The columns of AWS's documented CloudTrail table, in its order."""

EXTRA_COLUMNS: tuple[Field, ...] = tuple(
    Field(name, "json") for name in sorted(CLOUDTRAIL_FIELDS - {field.name for field in COLUMNS})
)
"""Top-level CloudTrail fields AWS's table has no column for (`annotation`, `insightDetails`,
`managementEvent`): DuckDB's view keeps them, so a local replay loses nothing a playbook reads."""

TEXT_COLUMNS = frozenset(
    {"eventTime", "eventSource", "eventName", "errorCode", "awsRegion", "recipientAccountId", "eventID", "requestID"}
)
"""The columns DuckDB reads as text: those the candidate query filters on or sorts by (a
record's other fields keep their JSON types)."""

PARTITIONS = ("account", "region", "timestamp")
"""The partition columns: the account and region folders and the day folder ('YYYY/MM/DD')."""

PATH_COLUMN = "$path"
"""Athena's hidden column with each row's S3 object (DuckDB's view has it too)."""

_BY_COLUMN = {field.column: field for field in COLUMNS}


def athena_type(field: Field) -> str:
    """The column's type in Athena's (Hive) DDL, with lowercase field names as AWS writes them."""
    if field.kind in ("string", "json"):
        return "STRING"
    if field.kind == "map":
        return "MAP<STRING,STRING>"
    inner = ", ".join(f"{sub.column}: {athena_type(sub)}" for sub in field.fields)
    return f"STRUCT<{inner}>" if field.kind == "struct" else f"ARRAY<STRUCT<{inner}>>"


def duckdb_type(field: Field) -> str:
    """The column's type in DuckDB's view: text for the fields filters read, else the JSON
    of the field as it was written (so any shape and type comes back as it was)."""
    return "VARCHAR" if field.name in TEXT_COLUMNS else "JSON"


def is_nested(field: Field) -> bool:
    """Columns the candidate query returns as JSON text (structs, arrays, maps)."""
    return field.kind in ("struct", "array", "map")


@dataclass(frozen=True)
class Candidate:
    """A selected record, rebuilt, and where it was read from."""

    record: dict[str, Any]
    account: str | None
    region: str | None
    day: str | None
    path: str | None


def rebuild(row: Mapping[str, str | None]) -> Candidate:
    """A candidate from a result row of the candidate query: every value is text (Athena's
    results are), nested columns are JSON text. See the module's note for what is lost."""
    record: dict[str, Any] = {}
    for column, value in row.items():
        field = _BY_COLUMN.get(column.lower())
        if field is None or value is None:
            continue
        if field.name == "readOnly":
            record["readOnly"] = {"true": True, "false": False}.get(value.lower(), value)
        elif field.kind == "json":
            record[field.name] = _json_or_text(value)
        elif is_nested(field):
            rebuilt = _renamed(json.loads(value), field)
            if rebuilt is not None:
                record[field.name] = rebuilt
        else:
            record[field.name] = value
    return Candidate(record, row.get("account"), row.get("region"), row.get("timestamp"), row.get(PATH_COLUMN))


def exact_record(row: Mapping[str, Any], loads: Any = json.loads) -> dict[str, Any]:
    """A record from a row of DuckDB's view (`VIEW_COLUMNS` by CloudTrail's names): text
    columns as they are, JSON columns parsed; a field that was absent or null is left out."""
    record: dict[str, Any] = {}
    for name, column, text in _VIEW_FIELDS:
        value = row[column]
        if value is not None:
            record[name] = value if text else loads(value)
    return record


VIEW_COLUMNS: tuple[Field, ...] = COLUMNS + EXTRA_COLUMNS
"""DuckDB's view: AWS's table and the fields it lacks."""
_VIEW_FIELDS = tuple((field.name, field.column, field.name in TEXT_COLUMNS) for field in VIEW_COLUMNS)


def _json_or_text(value: str) -> Any:
    """A STRING column holding JSON: Athena's SerDe gives an object's or array's text, and
    a JSON string's content without quotes."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _renamed(value: Any, field: Field) -> Any:
    """A nested value with CloudTrail's key names back (Athena lowercases them) and without
    the nulls of fields the record did not have."""
    if value is None:
        return None
    if field.kind == "map":
        return value
    if field.kind == "array":
        element = Field(field.name, "struct", field.fields)
        return [_renamed(item, element) for item in value]
    names = {sub.column: sub for sub in field.fields}
    result = {}
    for key, sub_value in value.items():
        sub = names.get(key.lower())
        if sub is None or sub_value is None:
            continue
        rebuilt = sub_value if sub.kind in ("string", "json") else _renamed(sub_value, sub)
        if rebuilt is not None:
            result[sub.name] = rebuilt
    return result
