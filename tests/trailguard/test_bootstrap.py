"""What `bootstrap` creates once per stage, idempotently: the incidents table with TTL, and the
integrity key; a table or key of the same name that trailguard did not make is refused."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.incidents.store import TTL_ATTRIBUTE
from tests.conftest import REGION
from trailguard.bootstrap import ensure_key, ensure_table

pytestmark = pytest.mark.unit


def test_ensure_table_is_idempotent_and_turns_ttl_on(aws):
    client = boto3.client("dynamodb", region_name=REGION)
    assert ensure_table(client, "t1") == [
        "created table t1",
        "turned on TTL (expiresAt) on t1",
        "turned on point-in-time recovery on t1",
    ]
    assert ensure_table(client, "t1") == []
    ttl = client.describe_time_to_live(TableName="t1")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": TTL_ATTRIBUTE}
    table = client.describe_table(TableName="t1")["Table"]
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == ["open"]


def test_ensure_table_refuses_a_foreign_table_of_the_same_name(aws):
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName="t2",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    with pytest.raises(ValueError, match="t2 exists but is not a trailguard table"):
        ensure_table(client, "t2")


def test_ensure_key_refuses_a_key_of_another_kind(aws):
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key(Description="an encryption key")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/not-hmac", TargetKeyId=key)
    with pytest.raises(
        ValueError, match=r"is a SYMMETRIC_DEFAULT key for .*; expected HMAC_256 for GENERATE_VERIFY_MAC"
    ):
        ensure_key(kms, "alias/not-hmac")
    assert ensure_key(kms, "alias/seal-test")[0].startswith("created integrity key")
    assert ensure_key(kms, "alias/seal-test") == []  # once
