"""Both stores keep the same promises: one create per id, writes conditional on the version."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest

from chalicelib.events.record import EventSummary
from chalicelib.incidents.model import Incident, State, incident_id
from chalicelib.incidents.store import TTL_ATTRIBUTE, MemoryStore, StaleIncident
from chalicelib.playbooks.plan import PlannedStep
from tests.conftest import REGION, TABLE
from trailguard.bootstrap import ensure_table

pytestmark = pytest.mark.unit


@pytest.fixture(params=["memory", "dynamodb"])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    return request.getfixturevalue("dynamo_store")


def _incident(event_id="evt-1", state=State.PROPOSED, created="2026-11-26T03:00:00+00:00") -> Incident:
    return Incident(
        id=incident_id(event_id, "pb"),
        playbook_id="pb",
        playbook_version=1,
        title="t",
        severity="high",
        mode="approve",
        event=EventSummary({"eventID": event_id}),
        state=state,
        created_at=created,
    )


def test_create_succeeds_once_per_id(store):
    assert store.create(_incident()) is True
    assert store.create(_incident()) is False
    assert store.get(_incident().id).version == 1


CONCURRENT_ROUNDS = 25


def test_create_is_atomic_under_concurrency(store):
    """Eight creates of one id at the same moment, 25 times: exactly one wins each time.
    The DynamoDB store runs on moto with writes serialised as AWS serialises them
    (conftest.dynamodb_serialises_writes); what is proven here is that trailguard asks for
    a conditional create and reads a failed condition as "someone else won"."""
    winners: list[int] = []
    for round_no in range(CONCURRENT_ROUNDS):
        results: list[bool] = []
        barrier = threading.Barrier(8)

        def create(event_id: str, barrier: threading.Barrier, results: list[bool]) -> None:
            barrier.wait()
            results.append(store.create(_incident(event_id)))

        threads = [threading.Thread(target=create, args=(f"evt-race-{round_no}", barrier, results)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners.append(results.count(True))
        assert len(results) == 8
    assert winners == [1] * CONCURRENT_ROUNDS


def test_the_store_sends_the_conditions_that_make_writes_exclusive(aws):
    """What makes create and save safe under concurrency on AWS: the conditions sent with
    each PutItem (a create only where no item is; a save only over the version and state
    that were read). A store that dropped them would still pass a single-threaded test."""
    from chalicelib.incidents.store import DynamoStore
    from tests.conftest import CallRecorder

    recorder = CallRecorder()
    client = recorder.attach(boto3.client("dynamodb", region_name=REGION))
    ensure_table(client, TABLE)
    store = DynamoStore(client, TABLE)
    store.create(_incident())
    incident = store.get(_incident().id)
    incident.move("approve", "slack:U1")
    store.save(incident)
    puts = [params for name, params in recorder.params if name == "PutItem" and params.get("TableName") == TABLE]
    assert [p["ConditionExpression"] for p in puts] == [
        "attribute_not_exists(pk)",
        "#version = :read AND #state = :state",
    ]
    assert puts[1]["ExpressionAttributeNames"] == {"#version": "version", "#state": "state"}
    assert puts[1]["ExpressionAttributeValues"] == {":read": {"N": "1"}, ":state": {"S": "proposed"}}


def test_save_is_conditional_on_the_version_read(store):
    store.create(_incident())
    first, second = store.get(_incident().id), store.get(_incident().id)
    first.move("approve", "slack:U1")
    store.save(first)
    second.move("deny", "slack:U2")
    with pytest.raises(StaleIncident):
        store.save(second)
    stored = store.get(first.id)
    assert stored.state is State.REMEDIATING and stored.version == 2
    assert [entry.who for entry in stored.history] == ["slack:U1"]


def test_open_incidents_lists_open_states_oldest_first(store):
    store.create(_incident("b", State.FAILED, "2026-11-26T04:00:00+00:00"))
    store.create(_incident("a", State.PROPOSED, "2026-11-26T03:00:00+00:00"))
    store.create(_incident("c", State.REMEDIATED, "2026-11-26T05:00:00+00:00"))
    store.create(_incident("d", State.DENIED))
    store.create(_incident("e", State.SIMULATED))
    assert [i.event.event_id for i in store.open_incidents()] == ["a", "b", "c"]
    assert [i.event.event_id for i in store.open_incidents([State.FAILED])] == ["b"]


def test_finished_incidents_get_a_ttl_and_leave_the_open_index(dynamo_store):
    dynamo_store.create(_incident())
    client = dynamo_store.client
    key = {"pk": {"S": _incident().id}}
    item = client.get_item(TableName=TABLE, Key=key)["Item"]
    assert item["openState"] == {"S": "proposed"} and TTL_ATTRIBUTE not in item
    incident = dynamo_store.get(_incident().id)
    incident.move("deny", "slack:U1")
    dynamo_store.save(incident)
    item = client.get_item(TableName=TABLE, Key=key)["Item"]
    assert "openState" not in item
    assert abs(int(item[TTL_ATTRIBUTE]["N"]) - (time.time() + 90 * 86400)) < 60


def test_notices_and_dry_runs_are_listed_for_people_and_still_expire(dynamo_store):
    """`trailguard incidents` lists what people may still look at: a notice nobody
    acknowledged, what a dry run would have done; they keep their TTL, and the sweep's
    queries of open states do not see them."""
    from chalicelib.incidents.store import LISTED_STATES

    notice, dry = _incident("n", State.NOTIFIED), _incident("s", State.SIMULATED)
    for incident in (notice, dry, _incident("o", State.PROPOSED)):
        dynamo_store.create(incident)
    item = dynamo_store.client.get_item(TableName=TABLE, Key={"pk": {"S": notice.id}})["Item"]
    assert item["openState"] == {"S": "notified"} and TTL_ATTRIBUTE in item
    assert [i.event.event_id for i in dynamo_store.open_incidents()] == ["o"]
    assert {i.event.event_id for i in dynamo_store.open_incidents(LISTED_STATES)} == {"n", "s", "o"}
    stored = dynamo_store.get(notice.id)
    stored.move("acknowledge", "aws:arn:aws:sts::123456789012:assumed-role/ops/alice")
    dynamo_store.save(stored)
    assert {i.event.event_id for i in dynamo_store.open_incidents(LISTED_STATES)} == {"s", "o"}


def test_save_is_also_conditional_on_the_state_read(store):
    store.create(_incident())
    incident = store.get(_incident().id)
    incident.stored_state = State.DENIED  # as if it had been read in another state
    incident.move("approve", "slack:U1")
    with pytest.raises(StaleIncident):
        store.save(incident)
    assert store.get(incident.id).state is State.PROPOSED


def test_incidents_whose_message_is_due_are_found_open_or_finished(store):
    finished = _incident("evt-notified", State.NOTIFIED)
    finished.notification = {"channel": "C1"}
    finished.record("trailguard", "open")
    quiet = _incident("evt-logged-only", State.NOTIFIED)  # no Slack: nothing to deliver
    open_due = _incident("evt-proposed", State.PROPOSED, created="2026-11-26T04:00:00+00:00")
    open_due.notification = {"channel": "C1"}
    for incident in (finished, quiet, open_due):
        store.create(incident)
    assert [i.id for i in store.unannounced()] == [finished.id, open_due.id]

    delivered = store.get(finished.id)
    delivered.notification = {"channel": "C1", "ts": "1.2", "shown": len(delivered.history)}
    store.save(delivered)
    assert [i.id for i in store.unannounced()] == [open_due.id]


# -- what a write whose answer was lost means (finding: a lost answer read as a duplicate) --


@pytest.fixture
def faulty_dynamo_store(aws, instant_backoff):
    """The DynamoDB store with conftest's fault injector on its client."""
    from chalicelib.incidents.store import DynamoStore
    from tests.conftest import Faults

    faults = Faults()
    client = faults.attach(boto3.client("dynamodb", region_name=REGION))
    ensure_table(client, TABLE)
    return DynamoStore(client, TABLE), faults


def test_a_create_whose_answer_was_lost_is_not_taken_for_a_duplicate(faulty_dynamo_store):
    """DynamoDB wrote the incident, then a 500 lost the answer; botocore sent the PutItem
    again and its condition failed on our own item. Only someone else's item makes a
    duplicate: this Lambda opened the incident and must act on it."""
    store, faults = faulty_dynamo_store
    faults.add("dynamodb", "PutItem", "InternalServerError", status=500, landed=True)
    assert store.create(_incident()) is True
    assert faults.sent("dynamodb", "PutItem") == 2
    assert store.get(_incident().id).version == 1
    assert store.create(_incident()) is False  # a real second delivery is still a duplicate


def test_a_save_whose_answer_was_lost_is_not_taken_for_someone_elses(faulty_dynamo_store):
    store, faults = faulty_dynamo_store
    store.create(_incident())
    incident = store.get(_incident().id)
    incident.move("approve", "slack:U1")
    faults.add("dynamodb", "PutItem", "InternalServerError", status=500, landed=True)
    store.save(incident)  # our own write: no StaleIncident
    assert incident.version == 2 and store.get(incident.id).state is State.REMEDIATING
    stale = store.get(incident.id)
    stale.version = 1  # as if read before our save
    stale.move("finish", "trailguard")
    with pytest.raises(StaleIncident):
        store.save(stale)


def test_other_dynamodb_errors_while_creating_are_raised_not_taken_for_a_duplicate(faulty_dynamo_store):
    store, faults = faulty_dynamo_store
    faults.add("dynamodb", "PutItem", "InternalServerError", status=500, times=10)
    with pytest.raises(Exception, match="InternalServerError"):
        store.create(_incident())
    assert store.get(_incident().id) is None


# -- size: DynamoDB keeps at most 400 KB per item ---------------------------------------------


def _big_incident(snapshot_bytes: int, event_id: str = "evt-big") -> Incident:
    """An incident holding a key policy of `snapshot_bytes` before and after its step (as
    `kms.restore_key_policy` records them), readable text as real policies are."""
    from chalicelib.incidents.model import StepResult, StepStatus

    statements: list[dict] = []
    size = 0
    while size < snapshot_bytes:
        number = len(statements)
        statements.append(
            {
                "Sid": f"AllowRole{number}",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{100000000000 + number}:role/app-{number}"},
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*"],
                "Resource": "*",
            }
        )
        size += len(json.dumps(statements[-1]))
    policy = json.dumps({"Version": "2012-10-17", "Statement": statements})
    incident = _incident(event_id, State.REMEDIATED)
    incident.plan = [PlannedStep("kms.restore_key_policy", {"key": "k-1"})]
    incident.steps = [
        StepResult(
            "kms.restore_key_policy",
            {"key": "k-1"},
            StepStatus.APPLIED,
            before={"Key": "k-1", "Policy": policy},
            after={"Key": "k-1", "Policy": policy.replace("kms:GenerateDataKey*", "kms:Encrypt")},
        )
    ]
    return incident


def test_an_incident_larger_than_an_item_as_json_is_kept_compressed_and_read_back(dynamo_store):
    from chalicelib.aws.dynamodb import item_size
    from chalicelib.incidents.store import MAX_ITEM_BYTES

    incident = _big_incident(300_000)
    assert len(json.dumps(incident.to_dict())) > 400 * 1024  # as plain JSON, DynamoDB would refuse it
    assert dynamo_store.create(incident) is True
    stored = dynamo_store.get(incident.id)
    assert stored.steps == incident.steps and stored.plan == incident.plan
    item = dynamo_store.client.get_item(TableName=TABLE, Key={"pk": {"S": incident.id}})["Item"]
    assert item_size(item) <= MAX_ITEM_BYTES
    assert {"state", "version", "createdAt", "openState"} <= set(item)  # what conditions and the index use
    stored.move("acknowledge", "slack:U1")
    dynamo_store.save(stored)
    assert dynamo_store.get(incident.id).state is State.ACKNOWLEDGED


def test_an_incident_that_cannot_fit_is_refused_before_anything_is_sent(store):
    """Random text does not compress: such an incident is refused with IncidentTooLarge,
    which says how large it is, and the store is left as it was."""
    import base64
    import os

    from chalicelib.incidents.store import IncidentTooLarge

    incident = _incident("evt-noise")
    incident.plan = [PlannedStep("notify.note", {"text": base64.b64encode(os.urandom(360_000)).decode()})]
    with pytest.raises(IncidentTooLarge, match=r"incident inc-\w+ takes [\d,]+ bytes .* at most [\d,]+"):
        store.create(incident)
    assert store.get(incident.id) is None
    small = _incident("evt-noise")
    assert store.create(small) is True
    small.plan = incident.plan
    with pytest.raises(IncidentTooLarge):
        store.save(small)
    assert store.get(small.id).plan == [] and store.get(small.id).version == 1


def test_dynamodbs_own_refusal_of_an_item_too_large_is_reported_as_such(faulty_dynamo_store):
    from chalicelib.incidents.store import IncidentTooLarge

    store, faults = faulty_dynamo_store
    faults.add(
        "dynamodb",
        "PutItem",
        "ValidationException",
        message="Item size has exceeded the maximum allowed size",
    )
    with pytest.raises(IncidentTooLarge, match="DynamoDB refused it"):
        store.create(_incident())


def test_item_size_counts_as_dynamodb_does():
    from chalicelib.aws.dynamodb import item_size

    # Names and values in UTF-8 bytes, binary as raw bytes, numbers by significant digits.
    assert item_size({"pk": {"S": "inc-1"}}) == 2 + 5
    assert item_size({"body": {"B": b"\x00" * 10}}) == 4 + 10
    assert item_size({"v": {"N": "12345"}}) == 1 + 3 + 1
    assert item_size({"é": {"S": "ü"}}) == 2 + 2


# -- damaged items: one must not hide the others -------------------------------------------


def _put_raw(client, pk: str, body: dict, state: str = "proposed") -> None:
    client.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": pk},
            "state": {"S": state},
            "version": {"N": "1"},
            "createdAt": {"S": "2026-11-26T02:00:00+00:00"},
            "openState": {"S": state},
            "body": body,
        },
    )


def test_damaged_items_are_reported_by_id_and_the_others_are_listed(dynamo_store):
    import zlib

    from chalicelib.incidents.store import UnreadableIncident

    client = dynamo_store.client
    dynamo_store.create(_incident("good-1"))
    _put_raw(client, "inc-not-json", {"S": "{not json"})
    _put_raw(client, "inc-bad-state", {"S": json.dumps({**_incident("x").to_dict(), "state": "exploded"})})
    _put_raw(client, "inc-not-zlib", {"B": b"\x78\x9cnot zlib"})
    _put_raw(client, "inc-zlib-bomb", {"B": zlib.compress(b" " * (64 * 1024 * 1024))})
    dynamo_store.create(_incident("good-2", created="2026-11-26T04:00:00+00:00"))

    unreadable: list[UnreadableIncident] = []
    found = dynamo_store.open_incidents(unreadable=unreadable)
    assert [i.event.event_id for i in found] == ["good-1", "good-2"]
    assert sorted(problem.key for problem in unreadable) == [
        "inc-bad-state",
        "inc-not-json",
        "inc-not-zlib",
        "inc-zlib-bomb",
    ]
    assert all(str(problem).startswith(f"incident {problem.key} cannot be read: ") for problem in unreadable)
    with pytest.raises(UnreadableIncident, match="cannot be read"):
        dynamo_store.open_incidents()  # without a list to report to, the first one is raised
    with pytest.raises(UnreadableIncident, match="inc-not-json cannot be read"):
        dynamo_store.get("inc-not-json")


def test_a_containment_waiting_for_a_person_has_its_own_index_key_and_is_still_listed_as_remediated(dynamo_store):
    """The sweep expires containments nobody answered without reading every remediated
    incident: those waiting are indexed under their own key, the rest not at all."""
    from chalicelib.incidents.store import PROPOSED_CONTAINMENT

    waiting, plain = _incident("w", State.REMEDIATED), _incident("p", State.REMEDIATED)
    waiting.plan = [PlannedStep("iam.quarantine_user", {"user": "mallory"}, contain=True)]
    for incident in (waiting, plain):
        dynamo_store.create(incident)
    item = dynamo_store.client.get_item(TableName=TABLE, Key={"pk": {"S": waiting.id}})["Item"]
    assert item["openState"] == {"S": PROPOSED_CONTAINMENT}
    assert [i.id for i in dynamo_store.proposed_containments()] == [waiting.id]
    assert {i.id for i in dynamo_store.open_incidents([State.REMEDIATED])} == {waiting.id, plain.id}
    stored = dynamo_store.get(waiting.id)
    stored.move("deny_containment", "slack:U1")
    dynamo_store.save(stored)
    assert dynamo_store.proposed_containments() == []  # decided: back under its state's key
    item = dynamo_store.client.get_item(TableName=TABLE, Key={"pk": {"S": waiting.id}})["Item"]
    assert item["openState"] == {"S": "remediated"}
