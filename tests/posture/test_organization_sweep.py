"""The sweep across the organization: every member account and region in scope, through the
member role, a bounded number at a time, within a time budget per run, resuming where it
stopped; a member whose role is broken is reported, not skipped (moto)."""

from __future__ import annotations

import threading
import time

import pytest

from chalicelib.actions.binding import ActionBinder
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.model import State
from chalicelib.incidents.store import MemoryStore
from chalicelib.organization.model import Account, Organization, Where
from chalicelib.playbooks.catalog import Catalog
from chalicelib.posture import scope
from chalicelib.posture.sweep import Sweep
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import Responder
from tests.conftest import ACCOUNT, PLAYBOOKS, REGION, Clock, Faults, member_session, recording_clients, remembering

pytestmark = pytest.mark.integration

MEMBERS = ("210987654321", "310987654321", "410987654321")


def _stopped_trail(account):
    session = member_session(account)
    session.client("s3").create_bucket(Bucket=f"trail-logs-{account}")
    cloudtrail = session.client("cloudtrail")
    cloudtrail.create_trail(Name="main", S3BucketName=f"trail-logs-{account}")
    return cloudtrail


def _sweep(places, faults=None, **options):
    store = MemoryStore()
    memory = remembering(store)
    clients = recording_clients(*([faults] if faults else []), home_account=ACCOUNT)
    incidents = Incidents(store, ActionBinder(clients, memory), memory=memory, clock=Clock())
    responder = Responder(
        Catalog.load([PLAYBOOKS]), own=OwnIdentities(member_role="trailguard-remediator"), incidents=incidents
    )
    return Sweep(
        catalog=responder.catalog,
        responder=responder,
        incidents=incidents,
        clients=clients,
        account=ACCOUNT,
        regions={REGION},
        places=lambda: places,
        **options,
    )


def test_a_trail_stopped_in_a_member_account_is_found_and_started_through_the_member_role(aws):
    trails = {account: _stopped_trail(account) for account in MEMBERS}
    sweep = _sweep([(account, REGION) for account in (ACCOUNT, *MEMBERS)])

    report = sweep.run()

    assert report.errors == [] and report.places_looked == 4 and report.places_left == 0
    assert report.trails_checked == 3 and len(report.opened) == 3
    for account, cloudtrail in trails.items():
        assert cloudtrail.get_trail_status(Name="main")["IsLogging"] is True, account
    opened = [sweep.incidents.get(i) for i in report.opened]
    assert sorted(i.event.account for i in opened) == sorted(MEMBERS)
    assert {i.state for i in opened} == {State.REMEDIATED}


def test_a_member_whose_role_cannot_be_assumed_is_reported_and_the_others_are_looked_at(aws):
    _stopped_trail(MEMBERS[1])
    faults = Faults()
    faults.add("sts", "AssumeRole", "AccessDenied", status=403, times=50, matching=MEMBERS[0])
    sweep = _sweep([(MEMBERS[0], REGION), (MEMBERS[1], REGION)], faults)

    report = sweep.run()

    broken = [e for e in report.errors if e.startswith(f"{MEMBERS[0]}/{REGION}: check_trails:")]
    assert (
        broken and "cannot assume" in broken[0] and f"arn:aws:iam::{MEMBERS[0]}:role/trailguard-remediator" in broken[0]
    )
    assert not any(e.startswith(MEMBERS[1]) for e in report.errors)
    assert len(report.opened) == 1  # the healthy member's stopped trail


def test_the_time_budget_stops_a_run_and_the_next_starts_where_it_stopped(aws):
    places = [(account, REGION) for account in MEMBERS]
    ticks = iter(range(1000))
    sweep = _sweep(places, workers=1, budget_seconds=1.5, timer=lambda: float(next(ticks)))

    first = sweep.run()  # the deadline is at tick 1.5: the first place starts at 1, the second at 2
    assert (first.places_looked, first.places_left) == (1, 2)

    looked = []
    original = sweep.look
    sweep.look = lambda account, region: looked.append(account) or original(account, region)
    ticks = iter(range(1000))
    sweep.timer = lambda: float(next(ticks))
    second = sweep.run()
    assert looked == [MEMBERS[1]] and (second.places_looked, second.places_left) == (1, 2)  # then 3, 1, ...


def test_no_more_than_the_configured_number_of_places_are_looked_at_at_once(aws):
    busy, most, lock = [0], [0], threading.Lock()
    sweep = _sweep([(f"5{n:011d}", REGION) for n in range(8)], workers=3)

    def look(account, region):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.05)
        with lock:
            busy[0] -= 1
        from chalicelib.posture.sweep import SweepReport

        return SweepReport()

    sweep.look = look
    report = sweep.run()
    assert report.places_looked == 8 and most[0] == 3


def test_the_places_in_scope_are_the_settings_accounts_and_regions_without_the_excluded():
    organization = Organization(
        accounts={ACCOUNT: Account("security"), MEMBERS[0]: Account("prod"), MEMBERS[1]: Account("sandbox")},
        scope=Where(exclude_accounts=frozenset({MEMBERS[1]}), exclude_regions=frozenset({"ap-east-1"})),
    )
    assert scope.accounts(organization, [], ACCOUNT) == [ACCOUNT, MEMBERS[0]]
    assert scope.regions(organization, {"us-east-1", "ap-east-1", "eu-west-1"}, REGION) == ["eu-west-1", "us-east-1"]
    assert scope.accounts(Organization(), [MEMBERS[2], MEMBERS[0]], ACCOUNT) == [ACCOUNT, MEMBERS[0], MEMBERS[2]]
