"""Remembered documents keep their promises in both stores: what is remembered is recalled,
and an amend is a read and a write conditional on nothing having changed between them."""

from __future__ import annotations

import threading

import boto3
import pytest

from chalicelib.aws.seals import ChangedOutsideTrailguard, LocalSealer
from chalicelib.incidents.store import MemoryStore
from chalicelib.memory.documents import DynamoDocuments, MemoryDocuments, SealedDocuments
from tests.conftest import REGION, TABLE
from trailguard.bootstrap import ensure_table

pytestmark = pytest.mark.unit


@pytest.fixture(params=["memory", "dynamodb"])
def stores(request):
    """Documents, and the incidents beside them (in DynamoDB: the same table)."""
    if request.param == "memory":
        return MemoryDocuments(), MemoryStore()
    incidents = request.getfixturevalue("dynamo_store")
    return DynamoDocuments(incidents.client, incidents.table), incidents


@pytest.fixture
def documents(stores):
    return stores[0]


def test_remembered_documents(stores):
    documents, store = stores
    assert documents.recall("trail#1#r#t") is None
    documents.remember("trail#1#r#t", {"Name": "t", "IsMultiRegionTrail": True})
    assert documents.recall("trail#1#r#t") == {"Name": "t", "IsMultiRegionTrail": True}
    assert store.open_incidents() == []  # a document in the table is no incident


def test_amend_loses_no_change_made_at_the_same_moment(documents):
    """Four writers amend one remembered document at once, 10 times: every change is kept
    (a hold and an offer to memory made together cannot lose each other)."""
    for round_no in range(10):
        key = f"trail#1#r#race-{round_no}"
        documents.remember(key, {"Name": "t", "HeldBy": []})
        barrier = threading.Barrier(4)

        def hold(incident: str, key: str = key, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            documents.amend(key, lambda stored: {**stored, "HeldBy": [*stored["HeldBy"], incident]})

        threads = [threading.Thread(target=hold, args=(f"inc-{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(documents.recall(key)["HeldBy"]) == ["inc-0", "inc-1", "inc-2", "inc-3"]


def test_amend_writes_only_what_the_change_returns(documents):
    assert documents.amend("doc", lambda stored: None) is None and documents.recall("doc") is None
    assert documents.amend("doc", lambda stored: {"n": 1}) == {"n": 1}
    assert documents.amend("doc", lambda stored: None) == {"n": 1}
    assert documents.amend("doc", lambda stored: {"n": stored["n"] + 1}) == documents.recall("doc") == {"n": 2}


def test_amend_is_conditional_on_the_version_it_read(aws):
    """The condition that makes `amend` safe on AWS: a document is written only over the
    version read (or where none was written by an amend yet)."""
    from tests.conftest import CallRecorder

    recorder = CallRecorder()
    client = recorder.attach(boto3.client("dynamodb", region_name=REGION))
    ensure_table(client, TABLE)
    documents = DynamoDocuments(client, TABLE)
    documents.amend("doc", lambda stored: {"n": 1})
    documents.amend("doc", lambda stored: {"n": 2})
    puts = [params for name, params in recorder.params if name == "PutItem"]
    assert [p["ConditionExpression"] for p in puts] == ["attribute_not_exists(#version)", "#version = :read"]
    assert puts[1]["ExpressionAttributeValues"] == {":read": {"N": "1"}}


def test_a_remembered_configuration_is_sealed_and_checked():
    table = MemoryDocuments()
    sealed = SealedDocuments(table, LocalSealer())
    sealed.remember("trail#1#r#main", {"Name": "main", "S3BucketName": "logs"})
    assert sealed.recall("trail#1#r#main") == {"Name": "main", "S3BucketName": "logs"}  # the seal is not handed out
    table.remember("trail#1#r#main", {**table.recall("trail#1#r#main"), "S3BucketName": "elsewhere"})
    with pytest.raises(ChangedOutsideTrailguard, match="its seal does not match"):
        sealed.recall("trail#1#r#main")
    table.remember("trail#1#r#other", {"Name": "other", "S3BucketName": "elsewhere"})
    with pytest.raises(ChangedOutsideTrailguard, match="carries no seal"):
        sealed.recall("trail#1#r#other")
    assert sealed.recall("trail#1#r#never") is None
