"""The posture sweep finds what no event told us, and tidies what people left open (moto)."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.actions.binding import ActionBinder
from chalicelib.events.record import CloudTrailEvent
from chalicelib.events.synthetic import SWEEPER
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.model import Incident, State, incident_id
from chalicelib.incidents.store import MemoryStore
from chalicelib.memory import trails
from chalicelib.memory.documents import DynamoDocuments
from chalicelib.playbooks.catalog import Catalog
from chalicelib.playbooks.plan import PlannedStep
from chalicelib.posture.sweep import Sweep
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import Responder
from tests.conftest import (
    ACCOUNT,
    APPROVE_PLAYBOOK,
    PLAYBOOKS,
    REGION,
    TABLE,
    Clock,
    record,
    recording_clients,
    remembering,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def clock():
    return Clock()


def _sweep(catalog, clock, calls, **options):
    store = MemoryStore()
    memory = remembering(store)
    clients = recording_clients(calls)
    lifecycle = Incidents(store, ActionBinder(clients, memory), memory=memory, clock=clock)
    responder = Responder(catalog, own=OwnIdentities(member_role="trailguard-remediator"), incidents=lifecycle)
    return Sweep(
        catalog=catalog,
        responder=responder,
        incidents=lifecycle,
        clients=clients,
        account=ACCOUNT,
        regions={REGION},
        **options,
    )


@pytest.fixture
def sweep_client(dynamo_store, integrity_key, restart):
    restart(table=TABLE, integrity_key=integrity_key, sweep_regions=frozenset({REGION}))
    with Client(chalice_app.app) as client:
        yield client


def test_the_scheduled_sweep_restarts_a_stopped_trail_no_event_told_us_about(sweep_client, make_trail):
    cloudtrail = make_trail("main")  # created, never started, and no StopLogging event at all
    scheduled = sweep_client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    report = sweep_client.lambda_.invoke("posture_sweep", scheduled).payload
    assert report["trailsChecked"] == 1 and len(report["opened"]) == 1 and report["errors"] == []
    assert cloudtrail.get_trail_status(Name="main")["IsLogging"] is True
    incident = chalice_app.runtime.incidents.get(report["opened"][0])
    assert (incident.playbook_id, incident.state) == ("cloudtrail-stop-logging", State.REMEDIATED)
    assert incident.event.name == "StopLogging" and incident.event.user_agent == SWEEPER
    again = sweep_client.lambda_.invoke("posture_sweep", scheduled).payload
    assert again["opened"] == [] and again["trailsChecked"] == 1


def test_the_same_finding_opens_one_incident_while_it_waits_for_a_person(tmp_path, make_trail, clock, calls):
    (tmp_path / "approve.yaml").write_text(APPROVE_PLAYBOOK)
    sweep = _sweep(Catalog.load([tmp_path]), clock, calls)
    make_trail("main")
    first, second = sweep.run(), sweep.run()
    assert len(first.opened) == 1 and second.opened == []
    assert [i.state for i in sweep.incidents.store.open_incidents()] == [State.PROPOSED]


def test_a_named_trail_that_vanished_is_recreated_from_memory(make_trail, clock, calls):
    cloudtrail = make_trail("audit")
    cloudtrail.update_trail(Name="audit", S3KeyPrefix="org", IsMultiRegionTrail=True)
    cloudtrail.start_logging(Name="audit")
    sweep = _sweep(Catalog.load([PLAYBOOKS]), clock, calls, trail_names={"audit"})
    assert sweep.run().opened == []  # healthy: remembered
    before = cloudtrail.describe_trails(trailNameList=["audit"])["trailList"]
    cloudtrail.delete_trail(Name="audit")  # and the DeleteTrail event never arrived
    report = sweep.run()
    assert len(report.opened) == 1
    incident = sweep.incidents.store.get(report.opened[0])
    assert (incident.playbook_id, incident.state) == ("cloudtrail-trail-deleted", State.REMEDIATED)
    assert cloudtrail.describe_trails(trailNameList=["audit"])["trailList"] == before


@pytest.fixture
def keys(aws):
    kms = boto3.client("kms", region_name=REGION)
    disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    allowed = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/archive", TargetKeyId=allowed)
    kms.disable_key(KeyId=allowed)
    return kms, disabled, allowed


def test_keys_are_left_alone_unless_the_sweep_is_told_to_watch_them(keys, clock, calls):
    kms, disabled, _ = keys
    report = _sweep(Catalog.load([PLAYBOOKS]), clock, calls).run()
    assert report.keys_checked == 0 and report.opened == []
    assert kms.describe_key(KeyId=disabled)["KeyMetadata"]["KeyState"] == "Disabled"


def test_watched_keys_are_enabled_except_the_allowed_ones(keys, clock, calls):
    kms, disabled, allowed = keys
    report = _sweep(Catalog.load([PLAYBOOKS]), clock, calls, key_ids={"*"}, allowed_keys={"alias/archive"}).run()
    assert report.keys_checked == 1 and len(report.opened) == 1
    assert kms.describe_key(KeyId=disabled)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.describe_key(KeyId=allowed)["KeyMetadata"]["KeyState"] == "Disabled"


def test_proposals_nobody_answered_expire_after_the_playbook_timeout(tmp_path, aws, clock, calls):
    (tmp_path / "approve.yaml").write_text(APPROVE_PLAYBOOK)
    sweep = _sweep(Catalog.load([tmp_path]), clock, calls, trail_names={"none"})
    event = CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    _, [outcome] = sweep.responder.respond(event)
    clock.now += dt.timedelta(hours=1, minutes=59)
    assert sweep.run().expired == []
    clock.now += dt.timedelta(minutes=2)
    assert sweep.run().expired == [outcome.incident.id]
    expired = sweep.incidents.store.get(outcome.incident.id)
    assert expired.state is State.EXPIRED
    assert (expired.history[-1].who, expired.history[-1].detail) == (SWEEPER, "nobody answered within 2 hours")


def test_work_left_by_a_dead_worker_is_resumed_after_its_lease(make_trail, clock, calls):
    cloudtrail = make_trail("main")
    sweep = _sweep(Catalog.load([PLAYBOOKS]), clock, calls, trail_names={"none"})
    event = CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    # Opened as a worker would, which then died before running the step.
    stuck = Incident(
        id=incident_id(event.event_id, "cloudtrail-stop-logging"),
        playbook_id="cloudtrail-stop-logging",
        playbook_version=1,
        title="t",
        severity="critical",
        mode="auto",
        event=event.summary(),
        state=State.REMEDIATING,
        plan=[PlannedStep("cloudtrail.start_logging", {"trail": "main"})],
    )
    assert sweep.incidents.open(stuck, "trailguard")
    assert sweep.run().resumed == []
    clock.now += dt.timedelta(minutes=3)
    assert sweep.run().resumed == [stuck.id]
    assert sweep.incidents.store.get(stuck.id).state is State.REMEDIATED
    assert cloudtrail.get_trail_status(Name="main")["IsLogging"] is True


# -- what the sweep remembers --------------------------------------------------------------


def _weaken(sweep, cloudtrail):
    """The attacker's UpdateTrail (multi-region off), answered by a proposal."""
    cloudtrail.update_trail(Name="audit", IsMultiRegionTrail=False)
    event = CloudTrailEvent.from_record(
        record("UpdateTrail", "cloudtrail.amazonaws.com", {"name": "audit", "isMultiRegionTrail": False})
    )
    _, [outcome] = sweep.responder.respond(event)
    assert (outcome.playbook.id, outcome.incident.state) == ("cloudtrail-trail-weakened", State.PROPOSED)
    return outcome.incident


def _remembered(sweep):
    return sweep.incidents.memory.recall(trails.memory_key(ACCOUNT, REGION, "audit"))


@pytest.fixture
def audit_trail(make_trail):
    cloudtrail = make_trail("audit")
    cloudtrail.update_trail(Name="audit", S3KeyPrefix="org", IsMultiRegionTrail=True)
    cloudtrail.start_logging(Name="audit")
    return cloudtrail


def test_a_weakening_waiting_for_a_person_is_not_remembered_and_a_deletion_restores_the_trail_before_it(
    audit_trail, clock, calls
):
    sweep = _sweep(Catalog.load([PLAYBOOKS]), clock, calls, trail_names={"audit"})
    sweep.run()
    _weaken(sweep, audit_trail)
    clock.now += dt.timedelta(minutes=15)
    sweep.run()  # the next sweep, the proposal still unanswered
    assert _remembered(sweep)["IsMultiRegionTrail"] is True
    audit_trail.delete_trail(Name="audit")  # the attacker's next move
    event = CloudTrailEvent.from_record(record("DeleteTrail", "cloudtrail.amazonaws.com", {"name": "audit"}))
    _, [outcome] = sweep.responder.respond(event)
    assert outcome.incident.state is State.REMEDIATED
    [trail] = audit_trail.describe_trails(trailNameList=["audit"])["trailList"]
    assert (trail["IsMultiRegionTrail"], trail["S3KeyPrefix"]) == (True, "org")


def test_once_the_proposal_is_denied_the_change_is_remembered(audit_trail, clock, calls):
    sweep = _sweep(Catalog.load([PLAYBOOKS]), clock, calls, trail_names={"audit"})
    sweep.run()
    proposal = _weaken(sweep, audit_trail)
    sweep.incidents.deny(proposal.id, "slack:U1", "we meant it")
    report = sweep.run()
    assert _remembered(sweep)["IsMultiRegionTrail"] is False and report.drifted == []


def test_a_change_no_event_told_of_is_reported_and_not_remembered(audit_trail, clock, calls):
    sweep = _sweep(Catalog.load([PLAYBOOKS]), clock, calls, trail_names={"audit"})
    sweep.run()
    audit_trail.update_trail(Name="audit", S3BucketName="main-logs", S3KeyPrefix="elsewhere")  # no event arrived
    report = sweep.run()
    assert _remembered(sweep)["S3KeyPrefix"] == "org" and _remembered(sweep)["S3BucketName"] == "audit-logs"
    [drift] = report.drifted
    assert (
        drift.startswith(f"trail#{ACCOUNT}#{REGION}#audit: ")
        and "S3KeyPrefix remembered 'org' now 'elsewhere'" in drift
    )


# -- decisions the sweep honours -----------------------------------------------------------


def _stop_logging(name):
    return CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": name}))


def test_an_undone_stop_logging_remediation_sticks_until_the_trail_logs_again(audit_trail, clock, calls):
    sweep = _sweep(Catalog.load([PLAYBOOKS]), clock, calls)
    audit_trail.stop_logging(Name="audit")
    _, [outcome] = sweep.responder.respond(_stop_logging("audit"))
    assert outcome.incident.state is State.REMEDIATED
    assert sweep.incidents.undo(outcome.incident.id, "slack:U1").state is State.UNDONE  # the stop was meant

    clock.now += dt.timedelta(minutes=15)
    report = sweep.run()
    assert report.opened == [] and audit_trail.get_trail_status(Name="audit")["IsLogging"] is False
    assert report.accepted == [f"trail audit not logging: left as slack:U1 decided ({outcome.incident.id})"]

    audit_trail.start_logging(Name="audit")  # someone starts it again...
    clock.now += dt.timedelta(minutes=15)
    assert sweep.run().opened == []
    audit_trail.stop_logging(Name="audit")  # ...and later it is stopped again: a new finding
    clock.now += dt.timedelta(minutes=15)
    report = sweep.run()
    assert len(report.opened) == 1 and report.accepted == []
    assert audit_trail.get_trail_status(Name="audit")["IsLogging"] is True


def test_a_denied_proposal_is_not_proposed_again_by_the_sweep(tmp_path, audit_trail, clock, calls):
    (tmp_path / "approve.yaml").write_text(APPROVE_PLAYBOOK)
    sweep = _sweep(Catalog.load([tmp_path]), clock, calls)
    audit_trail.stop_logging(Name="audit")
    _, [outcome] = sweep.responder.respond(_stop_logging(f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/audit"))
    sweep.incidents.deny(outcome.incident.id, "slack:U1", "maintenance")
    report = sweep.run()
    assert report.opened == [] and len(report.accepted) == 1
    assert [i.id for i in sweep.incidents.store.open_incidents()] == []


@pytest.mark.parametrize(
    "name,unsafe,state",
    [
        ("DisableKey", lambda kms, key: kms.disable_key(KeyId=key), "Disabled"),
        (
            "ScheduleKeyDeletion",
            lambda kms, key: kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7),
            "PendingDeletion",
        ),
    ],
)
def test_an_undone_key_remediation_sticks(aws, clock, calls, name, unsafe, state):
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    sweep = _sweep(Catalog.load([PLAYBOOKS]), clock, calls, trail_names={"none"}, key_ids={"*"})
    unsafe(kms, key)
    event = CloudTrailEvent.from_record(record(name, "kms.amazonaws.com", {"keyId": key}))
    _, [outcome] = sweep.responder.respond(event)
    assert outcome.incident.state is State.REMEDIATED
    assert sweep.incidents.undo(outcome.incident.id, "slack:U1").state is State.UNDONE
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == state

    clock.now += dt.timedelta(days=1)  # a new day: the sweep's findings of keys are per day
    report = sweep.run()
    assert report.opened == [] and len(report.accepted) == 1
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == state


def _damaged(client, pk: str, open_state: str, body: dict) -> None:
    """An item in the open index that is no incident trailguard can read."""
    client.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": pk},
            "state": {"S": open_state},
            "version": {"N": "1"},
            "createdAt": {"S": "2026-11-26T01:00:00+00:00"},
            "openState": {"S": open_state},
            "body": body,
        },
    )


def test_one_damaged_or_failing_incident_does_not_stop_the_sweep(
    tmp_path, dynamo_store, make_trail, clock, calls, instant_backoff
):
    """Damaged items sit in the open index beside good incidents, and every write of one
    proposal fails: the sweep reports each by id and expires, resumes and delivers the rest."""
    from tests.conftest import Faults

    (tmp_path / "approve.yaml").write_text(APPROVE_PLAYBOOK)
    catalog = Catalog.load([tmp_path])
    cloudtrail = make_trail("main")
    clients = recording_clients(calls)
    memory = remembering(dynamo_store, DynamoDocuments(dynamo_store.client, dynamo_store.table))
    lifecycle = Incidents(dynamo_store, ActionBinder(clients, memory), memory=memory, clock=clock)
    responder = Responder(catalog, own=OwnIdentities(), incidents=lifecycle)
    sweep = Sweep(
        catalog=catalog,
        responder=responder,
        incidents=lifecycle,
        clients=clients,
        account=ACCOUNT,
        regions={REGION},
        trail_names={"none"},
    )
    stopped = [
        CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"})) for _ in "ab"
    ]
    failing, expiring = (responder.respond(event)[1][0].incident for event in stopped)
    stuck = Incident(
        id=incident_id("evt-dead-worker", "trail-approve"),
        playbook_id="trail-approve",
        playbook_version=1,
        title="t",
        severity="high",
        mode="approve",
        event=stopped[0].summary(),
        state=State.REMEDIATING,
        plan=[PlannedStep("cloudtrail.start_logging", {"trail": "main"})],
    )
    assert lifecycle.open(stuck, "trailguard")
    _damaged(dynamo_store.client, "inc-00000000000000000001", "proposed", {"S": "{not json"})
    _damaged(dynamo_store.client, "inc-00000000000000000002", "remediating", {"B": b"not zlib"})
    _damaged(dynamo_store.client, "inc-00000000000000000003", "unannounced", {"S": '{"id": "inc-3"}'})
    faults = Faults()
    faults.attach(dynamo_store.client)
    faults.add("dynamodb", "PutItem", "InternalServerError", status=500, times=50, matching=failing.id)
    clock.now += dt.timedelta(hours=3)

    report = sweep.run()  # on a sweep that stopped at the first bad item, nothing below would hold
    assert report.expired == [expiring.id] and report.resumed == [stuck.id]
    assert cloudtrail.get_trail_status(Name="main")["IsLogging"] is True
    assert dynamo_store.get(failing.id).state is State.PROPOSED
    assert sorted(report.errors) == sorted(
        [
            f"incident {failing.id}: expire: InternalServerError: injected InternalServerError",
            "incident inc-00000000000000000001 cannot be read: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
            "incident inc-00000000000000000002 cannot be read: the compressed body is damaged (Error -3 while "
            "decompressing data: incorrect header check)",
            "incident inc-00000000000000000003 cannot be read: KeyError: 'playbook'",
        ]
    )
    faults.clear()
    assert sweep.run().expired == [failing.id]  # nothing was lost: the next sweep finishes it
