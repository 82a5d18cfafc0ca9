"""What `chalice deploy` does not create, created once per stage by `bootstrap` (and by the
demo and the tests on moto): the incidents table, with TTL and point-in-time recovery (as the
merge template makes it), and the integrity key that seals it.

Both are idempotent and check what already exists: a table or key of the same name that
trailguard did not make is refused, saying what is wrong with it, rather than failing later.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.aws.seals import KEY_SPEC, KEY_USAGE
from chalicelib.incidents.store import OPEN_INDEX, TTL_ATTRIBUTE, table_definition


def _check_shape(table: dict[str, Any]) -> None:
    """Refuse a table of the same name that trailguard did not make (it would fail later)."""
    keys = [(key["AttributeName"], key["KeyType"]) for key in table.get("KeySchema", [])]
    indexes = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    if keys != [("pk", "HASH")] or OPEN_INDEX not in indexes:
        raise ValueError(
            f"table {table['TableName']} exists but is not a trailguard table "
            f"(key {keys}, indexes {sorted(indexes)}; expected key pk and index {OPEN_INDEX!r})"
        )


def ensure_table(client: Any, name: str) -> list[str]:
    """Create the table and turn TTL on, unless already done; returns what it did."""
    done: list[str] = []
    try:
        existing = client.describe_table(TableName=name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        client.create_table(**table_definition(name))
        done.append(f"created table {name}")
    else:
        _check_shape(existing)
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
        )
        done.append(f"turned on TTL ({TTL_ATTRIBUTE}) on {name}")
    elif ttl.get("AttributeName") != TTL_ATTRIBUTE:
        raise ValueError(f"table {name} already has TTL on {ttl.get('AttributeName')!r}, not {TTL_ATTRIBUTE!r}")
    return done + ensure_point_in_time_recovery(client, name)


def ensure_point_in_time_recovery(client: Any, name: str) -> list[str]:
    """Incidents are the record of what trailguard changed: restorable to any second of the
    last 35 days, as the merge template makes the table."""
    backups = client.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    if backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") in ("ENABLED", "ENABLING"):
        return []
    client.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    return [f"turned on point-in-time recovery on {name}"]


def alias_of(key: str) -> str | None:
    """The alias a key setting names (`alias/NAME`, or an alias ARN), or None for a key id or ARN."""
    if key.startswith("alias/"):
        return key
    if key.startswith("arn:") and ":alias/" in key:
        return "alias/" + key.split(":alias/", 1)[1]
    return None


def ensure_key(client: Any, key: str, policy: dict[str, Any] | None = None, description: str = "") -> list[str]:
    """Create the HMAC key and its alias, unless done; check an existing one. Returns what it did.

    Only an alias can be created (a key id or ARN names a key made elsewhere, which is
    checked); an alias that names a key of another kind is refused, saying which.
    """
    try:
        metadata = client.describe_key(KeyId=key)["KeyMetadata"]
    except client.exceptions.NotFoundException:
        alias = alias_of(key)
        if alias is None:
            raise ValueError(f"integrity key {key} does not exist; name an alias (alias/...) to create it") from None
        created = client.create_key(
            KeySpec=KEY_SPEC,
            KeyUsage=KEY_USAGE,
            Description=description or "trailguard: seals what its acting roles write to the incidents table",
            **({"Policy": json.dumps(policy)} if policy else {}),
        )["KeyMetadata"]
        client.create_alias(AliasName=alias, TargetKeyId=created["KeyId"])
        return [f"created integrity key {created['KeyId']} ({alias}, {KEY_SPEC})"]
    if metadata.get("KeySpec") != KEY_SPEC or metadata.get("KeyUsage") != KEY_USAGE:
        raise ValueError(
            f"integrity key {key} is a {metadata.get('KeySpec')} key for {metadata.get('KeyUsage')}; "
            f"expected {KEY_SPEC} for {KEY_USAGE}"
        )
    if metadata.get("KeyState") != "Enabled":
        raise ValueError(f"integrity key {key} is {metadata.get('KeyState')}: trailguard cannot seal or check with it")
    return []
