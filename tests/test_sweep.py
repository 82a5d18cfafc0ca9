"""The posture sweep finds what no event told us, and tidies what people left open (moto)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import boto3
import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.aws import AwsActions
from chalicelib.catalog import Catalog
from chalicelib.events import CloudTrailEvent
from chalicelib.incidents import Incident, State, incident_id
from chalicelib.lifecycle import Lifecycle
from chalicelib.notify import NullNotifier
from chalicelib.responder import Responder
from chalicelib.store import MemoryStore
from chalicelib.sweep import SWEEPER, Sweep
from tests.conftest import (
    ACCOUNT,
    APPROVE_PLAYBOOK,
    PLAYBOOKS,
    REGION,
    TABLE,
    Clock,
    record,
    recording_clients,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def clock():
    return Clock()


def _sweep(catalog, clock, calls, **options):
    store = MemoryStore()
    clients = recording_clients(calls)
    lifecycle = Lifecycle(store, AwsActions(clients, store), clock=clock)
    responder = Responder(
        catalog, own_role_names={"trailguard-remediator"}, lifecycle=lifecycle, notifier=NullNotifier()
    )
    return Sweep(
        catalog=catalog,
        responder=responder,
        lifecycle=lifecycle,
        clients=clients,
        account=ACCOUNT,
        regions={REGION},
        **options,
    )


@pytest.fixture
def sweep_client(dynamo_store, integrity_key, monkeypatch):
    runtime = chalice_app.runtime
    settings = dataclasses.replace(
        runtime.settings, table=TABLE, integrity_key=integrity_key, sweep_regions=frozenset({REGION})
    )
    monkeypatch.setattr(runtime, "settings", settings)
    runtime.reset()
    with Client(chalice_app.app) as client:
        yield client
    runtime.reset()


def test_the_scheduled_sweep_restarts_a_stopped_trail_no_event_told_us_about(sweep_client, make_trail):
    cloudtrail = make_trail("main")  # created, never started, and no StopLogging event at all
    scheduled = sweep_client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    report = sweep_client.lambda_.invoke("posture_sweep", scheduled).payload
    assert report["trailsChecked"] == 1 and len(report["opened"]) == 1 and report["errors"] == []
    assert cloudtrail.get_trail_status(Name="main")["IsLogging"] is True
    incident = chalice_app.runtime.store.get(report["opened"][0])
    assert (incident.playbook_id, incident.state) == ("cloudtrail-stop-logging", State.REMEDIATED)
    assert incident.event["eventName"] == "StopLogging" and incident.event["userAgent"] == SWEEPER
    again = sweep_client.lambda_.invoke("posture_sweep", scheduled).payload
    assert again["opened"] == [] and again["trailsChecked"] == 1


def test_the_same_finding_opens_one_incident_while_it_waits_for_a_person(tmp_path, make_trail, clock, calls):
    (tmp_path / "approve.yaml").write_text(APPROVE_PLAYBOOK)
    sweep = _sweep(Catalog.load([tmp_path]), clock, calls)
    make_trail("main")
    first, second = sweep.run(), sweep.run()
    assert len(first.opened) == 1 and second.opened == []
    assert [i.state for i in sweep.lifecycle.store.open_incidents()] == [State.PROPOSED]


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
    incident = sweep.lifecycle.store.get(report.opened[0])
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
    expired = sweep.lifecycle.store.get(outcome.incident.id)
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
        plan=[{"action": "cloudtrail.start_logging", "params": {"trail": "main"}}],
    )
    assert sweep.lifecycle.open(stuck, "trailguard")
    assert sweep.run().resumed == []
    clock.now += dt.timedelta(minutes=3)
    assert sweep.run().resumed == [stuck.id]
    assert sweep.lifecycle.store.get(stuck.id).state is State.REMEDIATED
    assert cloudtrail.get_trail_status(Name="main")["IsLogging"] is True
