"""What trailguard remembers stays trailguard's: a configuration a playbook objected to, or
that nobody judged, is never the one a later restore puts back (moto, the deployed wiring)."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.events.record import EventSummary
from chalicelib.incidents.model import HistoryEntry, Incident, State, incident_id
from chalicelib.incidents.store import MemoryStore
from chalicelib.memory import rules, trails
from tests.conftest import ACCOUNT, REGION, envelope, record, remembering

pytestmark = pytest.mark.integration

KEY = f"trail#{ACCOUNT}#{REGION}#main"
SETTINGS = ("S3BucketName", "KmsKeyId", "IsMultiRegionTrail")
REMEMBERED = {"Name": "main", "S3BucketName": "org-logs", "KmsKeyId": "key-ours", "IsMultiRegionTrail": True}


def _offer(memory, config, judged=()):
    return rules.offer(memory, KEY, config, settings=SETTINGS, judged=judged)


def _kept(memory):
    return rules.configuration(memory.recall(KEY))


def _opened_on(incidents, memory, state, history=()):
    """An incident in `state` (after `history` states) whose steps restore KEY, as the lifecycle opens one."""
    incident = Incident(
        id=incident_id(f"evt-{state.value}", "pb"),
        playbook_id="pb",
        playbook_version=1,
        title="t",
        severity="high",
        mode="approve",
        event=EventSummary({"eventID": f"evt-{state.value}"}),
        state=state,
        history=[HistoryEntry("2026-11-26T03:00:00+00:00", "someone", "move", s) for s in (*history, state)],
    )
    incidents.create(incident)
    rules.hold(memory, KEY, incident.id)
    return incident


@pytest.fixture
def incidents():
    return MemoryStore()


@pytest.fixture
def memory(incidents):
    memory = remembering(incidents)
    assert _offer(memory, REMEMBERED).outcome == rules.REMEMBERED  # the first sight is all there is
    return memory


def test_a_change_nobody_judged_is_kept_out_of_memory_and_reported(incidents, memory):
    attacker = {**REMEMBERED, "KmsKeyId": "key-theirs", "Tags": [{"Key": "team", "Value": "x"}]}
    offer = _offer(memory, attacker)
    assert offer.outcome == rules.DRIFT
    assert offer.drift == "KmsKeyId remembered 'key-ours' now 'key-theirs'"
    assert _kept(memory)["KmsKeyId"] == "key-ours"
    assert _kept(memory)["Tags"] == attacker["Tags"]  # what no restore puts back is refreshed


def test_a_judged_change_is_remembered_but_not_what_else_changed_unseen(incidents, memory):
    present = {**REMEMBERED, "IsMultiRegionTrail": False, "KmsKeyId": "key-theirs"}
    offer = _offer(memory, present, judged=("IsMultiRegionTrail",))
    assert offer.outcome == rules.DRIFT and offer.drift.startswith("KmsKeyId")
    assert (_kept(memory)["IsMultiRegionTrail"], _kept(memory)["KmsKeyId"]) == (False, "key-ours")


@pytest.mark.parametrize(
    "state", [State.PROPOSED, State.REMEDIATING, State.FAILED, State.UNDOING, State.NOTIFIED, State.EXPIRED]
)
def test_an_incident_nobody_decided_holds_the_configuration_it_restores(incidents, memory, state):
    _opened_on(incidents, memory, state)
    offer = _offer(memory, {**REMEMBERED, "KmsKeyId": "key-theirs"}, judged=None)  # even a judged change
    assert offer.outcome == rules.HELD and _kept(memory)["KmsKeyId"] == "key-ours"


@pytest.mark.parametrize(
    "state,history",
    [
        (State.DENIED, [State.PROPOSED]),
        (State.UNDONE, [State.REMEDIATING, State.REMEDIATED, State.UNDOING]),
        (State.ACKNOWLEDGED, [State.REMEDIATING, State.FAILED]),
        (State.ACKNOWLEDGED, [State.NOTIFIED]),
    ],
)
def test_a_change_people_accepted_is_remembered_and_the_holders_forgotten(incidents, memory, state, history):
    _opened_on(incidents, memory, state, history)
    assert _offer(memory, {**REMEMBERED, "KmsKeyId": "key-new"}).outcome == rules.REMEMBERED
    assert _kept(memory)["KmsKeyId"] == "key-new" and rules.HELD_BY not in memory.recall(KEY)


def test_once_the_resource_is_as_remembered_only_incidents_that_may_still_act_hold_it(incidents, memory):
    _opened_on(incidents, memory, State.EXPIRED, [State.PROPOSED])  # nobody answered: it holds while the trail differs
    proposed = _opened_on(incidents, memory, State.PROPOSED)
    assert _offer(memory, {**REMEMBERED, "KmsKeyId": "key-new"}).outcome == rules.HELD
    assert _offer(memory, REMEMBERED).outcome == rules.REMEMBERED  # put back by hand
    assert memory.recall(KEY)[rules.HELD_BY] == [proposed.id]
    incidents.save(_decided(incidents.get(proposed.id), "deny"))  # the change made again, and accepted this time
    assert _offer(memory, {**REMEMBERED, "KmsKeyId": "key-new"}).outcome == rules.REMEMBERED
    assert _kept(memory)["KmsKeyId"] == "key-new"


def _decided(incident, transition):
    incident.move(transition, "slack:U1")
    return incident


def test_acknowledging_what_trailguard_remediated_accepts_no_later_change(incidents, memory):
    _opened_on(incidents, memory, State.ACKNOWLEDGED, [State.REMEDIATING, State.REMEDIATED])
    assert _offer(memory, {**REMEMBERED, "KmsKeyId": "key-theirs"}).outcome == rules.DRIFT
    assert _kept(memory)["KmsKeyId"] == "key-ours"


def test_holders_are_bounded_and_a_restore_never_sees_them(incidents, memory):
    for number in range(rules.MAX_HOLDERS + 5):
        rules.hold(memory, KEY, f"inc-{number:020d}")
    held_by = memory.recall(KEY)[rules.HELD_BY]
    assert len(held_by) == rules.MAX_HOLDERS and held_by[-1] == f"inc-{rules.MAX_HOLDERS + 4:020d}"
    assert rules.HELD_BY not in _kept(memory)


# -- through the deployed wiring (rules' handler, lifecycle, sweep) -------------------------


@pytest.fixture
def trail(aws):
    """The organization's trail: its own bucket, encrypted with its own key, multi-region, logging."""
    s3, kms = boto3.client("s3", region_name=REGION), boto3.client("kms", region_name=REGION)
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    for bucket in ("org-logs", "attacker-logs"):
        s3.create_bucket(Bucket=bucket)
    ours, theirs = (kms.create_key()["KeyMetadata"]["Arn"] for _ in range(2))
    cloudtrail.create_trail(
        Name="main", S3BucketName="org-logs", S3KeyPrefix="audit", KmsKeyId=ours, IsMultiRegionTrail=True
    )
    cloudtrail.start_logging(Name="main")
    return cloudtrail, ours, theirs


def _deliver(runtime, name, request):
    return runtime.event_handler.handle(envelope(record(name, "cloudtrail.amazonaws.com", request)))


def _described(cloudtrail):
    [found] = cloudtrail.describe_trails(trailNameList=["main"])["trailList"]
    return found


def test_a_trail_deleted_and_recreated_at_once_by_the_attacker_is_put_back_and_never_remembered(runtime, trail):
    cloudtrail, ours, _ = trail
    runtime.sweep().handle()  # remembers the trail as it is
    cloudtrail.delete_trail(Name="main")
    cloudtrail.create_trail(Name="main", S3BucketName="attacker-logs")
    cloudtrail.start_logging(Name="main")

    _deliver(runtime, "CreateTrail", {"name": "main", "s3BucketName": "attacker-logs"})  # no playbook judges it
    assert runtime.memory.recall(KEY)["S3BucketName"] == "org-logs"
    handled = _deliver(runtime, "DeleteTrail", {"name": "main"})
    [answer] = handled["incidents"]
    incident = runtime.incidents.get(answer["id"])
    assert incident.state is State.REMEDIATED and incident.steps[0].status.value == "applied"
    assert incident.steps[0].note.startswith("the trail existed")
    found = _described(cloudtrail)
    assert (found["S3BucketName"], found.get("S3KeyPrefix"), found["KmsKeyId"], found["IsMultiRegionTrail"]) == (
        "org-logs",
        "audit",
        ours,
        True,
    )
    assert cloudtrail.get_trail_status(Name="main")["IsLogging"] is True
    assert runtime.sweep().handle()["drifted"] == [] and runtime.memory.recall(KEY)["S3BucketName"] == "org-logs"


def test_an_update_to_another_kms_key_is_proposed_and_a_later_deletion_restores_ours(runtime, trail):
    cloudtrail, ours, theirs = trail
    runtime.sweep().handle()
    cloudtrail.update_trail(Name="main", KmsKeyId=theirs)
    [answer] = _deliver(runtime, "UpdateTrail", {"name": "main", "kmsKeyId": theirs})["incidents"]
    assert (answer["playbook"], answer["state"]) == ("cloudtrail-trail-weakened", "proposed")
    assert runtime.memory.recall(KEY)["KmsKeyId"] == ours
    assert runtime.memory.recall(KEY)[rules.HELD_BY] == [answer["id"]]

    runtime.sweep().handle()  # fifteen minutes later: the proposal is still waiting
    assert runtime.memory.recall(KEY)["KmsKeyId"] == ours
    cloudtrail.delete_trail(Name="main")
    _deliver(runtime, "DeleteTrail", {"name": "main"})
    assert _described(cloudtrail)["KmsKeyId"] == ours


def test_a_change_the_playbooks_judged_harmless_is_remembered(runtime, trail):
    cloudtrail, _, _ = trail
    runtime.sweep().handle()
    cloudtrail.update_trail(Name="main", EnableLogFileValidation=True)
    assert _deliver(runtime, "UpdateTrail", {"name": "main", "enableLogFileValidation": True})["incidents"] == []
    assert runtime.memory.recall(KEY)["LogFileValidationEnabled"] is True


def test_remembering_trails_offers_their_configuration_as_the_sweep_does(aws):
    cloudtrail = boto3.client("cloudtrail", region_name=REGION)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="main-logs")
    cloudtrail.create_trail(Name="main", S3BucketName="main-logs")
    store = remembering()
    assert [offer.outcome for offer in trails.remember_all(store, cloudtrail, ACCOUNT, REGION)] == [rules.REMEMBERED]
    cloudtrail.update_trail(Name="main", S3KeyPrefix="elsewhere")
    [offer] = trails.remember_all(store, cloudtrail, ACCOUNT, REGION)
    assert offer.outcome == rules.DRIFT and "S3KeyPrefix" in offer.drift
