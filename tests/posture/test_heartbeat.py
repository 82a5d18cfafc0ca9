"""The heartbeat: an account and region whose events stop is reported within the grace
period, once, and the incident closes itself when events come back; the beats themselves are
never answered (moto)."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest

from chalicelib.actions.binding import ActionBinder
from chalicelib.aws.clients import AwsClients
from chalicelib.events.synthetic import eventbridge_envelope
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.model import State
from chalicelib.incidents.store import MemoryStore
from chalicelib.memory import heartbeats
from chalicelib.playbooks.catalog import Catalog
from chalicelib.posture.heartbeat import PLAYBOOK_ID, Heartbeat
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.handler import EventHandler, eventbridge_rules
from chalicelib.respond.responder import Responder
from chalicelib.slack.messages import render
from tests.conftest import ACCOUNT, MALLORY, PLAYBOOKS, REGION, Clock, remembering

pytestmark = pytest.mark.integration

CANARY = heartbeats.canary_name("test")
ROLE = "trailguard-test-heartbeat"
OTHER_REGION = "eu-west-1"
GRACE = dt.timedelta(minutes=10)


class Stage:
    """A heartbeat and the rules' handler sharing one store and memory, on a clock the test moves."""

    def __init__(self, places):
        self.clock = Clock(dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC))
        self.store = MemoryStore()
        self.memory = remembering(self.store)
        clients = AwsClients(home_account=ACCOUNT)
        self.incidents = Incidents(self.store, ActionBinder(clients, self.memory), memory=self.memory, clock=self.clock)
        own = OwnIdentities(central_account=ACCOUNT, central_roles=frozenset({ROLE}))
        responder = Responder(Catalog.load([PLAYBOOKS]), own=own, incidents=self.incidents)
        self.handler = EventHandler(responder, self.memory, clients, canary=CANARY)
        self.heartbeat = Heartbeat(
            incidents=self.incidents, clients=clients, places=lambda: places, canary=CANARY, grace=GRACE
        )

    def later(self, minutes):
        self.clock.now += dt.timedelta(minutes=minutes)

    def deliver(self, region, identity=None):
        """The beat's CloudTrail event (made now) reaches the rules' handler."""
        who = identity or heartbeats.role_identity(ACCOUNT, ROLE, ROLE)
        record = heartbeats.beat_record(ACCOUNT, region, CANARY, self.clock.now, who)
        return self.handler.handle(eventbridge_envelope(record, record["eventID"]))

    def blind_incidents(self):
        return [i for i in map(self.store.get, self.store._incidents) if i and i.playbook_id == PLAYBOOK_ID]


@pytest.fixture
def stage(aws):
    return Stage([(ACCOUNT, REGION), (ACCOUNT, OTHER_REGION)])


def test_a_beat_tags_the_canary_in_every_place_and_its_event_is_noted_not_answered(stage):
    report = stage.heartbeat.run()
    assert report.beats == 2 and report.errors == [] and report.blind == []
    for region in (REGION, OTHER_REGION):
        tags = boto3.client("ssm", region_name=region).list_tags_for_resource(
            ResourceType="Parameter", ResourceId=CANARY
        )
        assert [t["Key"] for t in tags["TagList"]] == [heartbeats.CANARY_TAG]
    answer = stage.deliver(REGION)
    assert answer["status"] == "heartbeat" and "incidents" not in answer
    assert heartbeats.state(stage.memory, ACCOUNT, REGION)["SeenAt"] == "2026-12-06T12:00:00Z"


def test_a_region_whose_events_stop_is_reported_once_within_the_grace_period_and_recovers(stage):
    stage.heartbeat.run()
    stage.deliver(REGION)  # eu-west-1's event never comes: its trail stopped without an event
    stage.later(9)
    assert stage.heartbeat.run().blind == [] and stage.blind_incidents() == []  # still within the grace period
    stage.deliver(REGION)
    stage.later(2)  # 11 minutes after the first unanswered beat

    report = stage.heartbeat.run()

    [blind] = stage.blind_incidents()
    assert report.blind == [f"{ACCOUNT}/{OTHER_REGION}: since 2026-12-06 12:00:00 UTC: {blind.id}"]
    assert (blind.state, blind.severity, blind.mode) == (State.NOTIFIED, "critical", "notify")
    assert blind.title == f"trailguard cannot see account {ACCOUNT} in {OTHER_REGION}"
    assert (blind.event.account, blind.event.region) == (ACCOUNT, OTHER_REGION)
    # its message says which place went quiet and since when, not "the sweep found HeartbeatMissed"
    said = json.dumps(render(blind).blocks, ensure_ascii=False)
    assert "stopped arriving (noticed at 2026-12-06 12:11:00 UTC)" in said and OTHER_REGION in said and ACCOUNT in said
    assert "posture sweep found" not in said
    stage.deliver(REGION)
    stage.later(5)
    stage.heartbeat.run()
    assert len(stage.blind_incidents()) == 1  # one incident per account and region, not one per beat

    stage.deliver(OTHER_REGION)  # the trail logs again
    stage.later(5)
    report = stage.heartbeat.run()

    [closed] = stage.blind_incidents()
    assert closed.state is State.ACKNOWLEDGED and closed.history[-1].who == "trailguard-heartbeat"
    assert "arrive again" in (closed.history[-1].detail or "")
    assert report.seen_again == [f"{ACCOUNT}/{OTHER_REGION}: since 2026-12-06 12:16:00 UTC: {blind.id} closed"]
    assert heartbeats.state(stage.memory, ACCOUNT, OTHER_REGION)["Incident"] is None


def test_the_canary_tagged_by_someone_else_is_no_heartbeat(stage):
    stage.heartbeat.run()
    answer = stage.deliver(OTHER_REGION, identity=MALLORY)
    assert answer["status"] != "heartbeat"
    assert heartbeats.state(stage.memory, ACCOUNT, OTHER_REGION).get("SeenAt") is None


def test_a_place_whose_canary_cannot_be_tagged_is_reported_not_skipped(aws):
    stage = Stage([(ACCOUNT, REGION), (ACCOUNT, "xx-nowhere-1")])
    report = stage.heartbeat.run()
    assert report.beats == 1
    assert [e.split(":")[0] for e in report.errors] == [f"{ACCOUNT}/xx-nowhere-1"]
    assert "cannot beat" in report.errors[0]


def test_the_rules_deliver_the_canarys_tag_writes():
    patterns = [rule.pattern for rule in eventbridge_rules(Catalog.load([PLAYBOOKS]))]
    selections = [p["detail"].get("$or", [p["detail"]]) for p in patterns]
    assert any(
        s["eventSource"] == [heartbeats.EVENT_SOURCE] and heartbeats.EVENT_NAME in s["eventName"]
        for chosen in selections
        for s in chosen
    )


def test_a_beat_seen_in_the_same_second_as_the_last_one_still_answers_the_one_awaited(stage):
    stage.heartbeat.run()
    stage.deliver(REGION)
    stage.heartbeat.run()  # the same second on the test's clock: a new beat awaited
    stage.deliver(REGION)
    assert heartbeats.state(stage.memory, ACCOUNT, REGION)["WaitingSince"] is None
