"""People's decisions and AWS's failures, against moto: nothing runs twice, nothing is lost."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from chalicelib.actions.binding import ActionBinder
from chalicelib.clock import timestamp
from chalicelib.events.record import CloudTrailEvent
from chalicelib.incidents.lifecycle import Incidents, UnknownIncident
from chalicelib.incidents.model import IllegalTransition, Incident, State, StepResult, StepStatus, incident_id
from chalicelib.playbooks.catalog import Catalog
from chalicelib.playbooks.plan import PlannedStep
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import Responder
from tests.conftest import (
    ACCOUNT,
    APPROVE_PLAYBOOK,
    PLAYBOOKS,
    REGION,
    Clock,
    Faults,
    record,
    recording_clients,
    remembering,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "dynamodb"])
def store(request, aws):
    if request.param == "memory":
        from chalicelib.incidents.store import MemoryStore

        return MemoryStore()
    return request.getfixturevalue("dynamo_store")


@pytest.fixture
def clients(calls):
    return recording_clients(calls)


@pytest.fixture
def clock():
    return Clock(dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC))


@pytest.fixture
def memory(store):
    """trailguard's memory beside the incidents (in DynamoDB: in their table)."""
    from chalicelib.incidents.store import DynamoStore
    from chalicelib.memory.documents import DynamoDocuments

    documents = DynamoDocuments(store.client, store.table) if isinstance(store, DynamoStore) else None
    return remembering(store, documents)


@pytest.fixture
def lifecycle(store, memory, clients, clock):
    return Incidents(store, ActionBinder(clients, memory), memory=memory, clock=clock)


def _responder(lifecycle, catalog):
    return Responder(catalog, own=OwnIdentities(), incidents=lifecycle)


def _approve_catalog(tmp_path):
    (tmp_path / "approve.yaml").write_text(APPROVE_PLAYBOOK)
    return Catalog.load([tmp_path])


def _stop_logging(event_id="evt-stop-1"):
    return CloudTrailEvent.from_record(
        record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, eventID=event_id)
    )


def _logging(cloudtrail):
    return cloudtrail.get_trail_status(Name="main")["IsLogging"]


def test_two_concurrent_approvals_run_the_action_once(tmp_path, lifecycle, make_trail, calls):
    cloudtrail = make_trail("main")
    _, [outcome] = _responder(lifecycle, _approve_catalog(tmp_path)).respond(_stop_logging())
    assert outcome.incident.state is State.PROPOSED and calls.writes() == []
    results, barrier = [], threading.Barrier(2)

    def approve(user):
        barrier.wait()
        try:
            results.append(lifecycle.approve(outcome.incident.id, f"slack:{user}").state)
        except IllegalTransition as refused:
            results.append(str(refused))

    threads = [threading.Thread(target=approve, args=(user,)) for user in ("U1", "U2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert State.REMEDIATED in results
    assert any(isinstance(r, str) and "approve needs proposed" in r for r in results)
    assert calls.writes() == ["StartLogging"] and _logging(cloudtrail)
    stored = lifecycle.store.get(outcome.incident.id)
    assert [(e.what, e.state) for e in stored.history] == [
        ("open", State.PROPOSED),
        ("approve", State.REMEDIATING),
        ("finish", State.REMEDIATED),
    ]
    assert stored.history[1].who in ("slack:U1", "slack:U2")


def test_deny_then_approve_is_refused_and_nothing_runs(tmp_path, lifecycle, make_trail, calls):
    make_trail("main")
    _, [outcome] = _responder(lifecycle, _approve_catalog(tmp_path)).respond(_stop_logging())
    assert lifecycle.deny(outcome.incident.id, "slack:U1", "planned maintenance").state is State.DENIED
    with pytest.raises(IllegalTransition, match="it is denied, and approve needs proposed"):
        lifecycle.approve(outcome.incident.id, "slack:U2")
    assert calls.writes() == []
    with pytest.raises(UnknownIncident):
        lifecycle.approve("inc-nope", "slack:U2")


def test_a_claim_on_an_incident_read_before_someone_else_moved_it_is_judged_again(tmp_path, lifecycle, make_trail):
    make_trail("main")
    _, [outcome] = _responder(lifecycle, _approve_catalog(tmp_path)).respond(_stop_logging())
    read_by_the_click = lifecycle.store.get(outcome.incident.id)
    lifecycle.deny(outcome.incident.id, "slack:U1")  # another approver, meanwhile
    with pytest.raises(IllegalTransition, match="it is denied, and approve needs proposed"):
        lifecycle.claim(outcome.incident.id, "approve", "slack:U2", read=read_by_the_click)
    assert lifecycle.store.get(outcome.incident.id).state is State.DENIED


def test_undo_puts_back_the_snapshot_once(lifecycle, make_trail, calls):
    cloudtrail = make_trail("main")
    _, [outcome] = _responder(lifecycle, Catalog.load([PLAYBOOKS])).respond(_stop_logging())
    assert outcome.incident.state is State.REMEDIATED and _logging(cloudtrail)
    undone = lifecycle.undo(outcome.incident.id, "slack:U1")
    assert undone.state is State.UNDONE and undone.steps[0].status is StepStatus.UNDONE
    assert not _logging(cloudtrail)
    with pytest.raises(IllegalTransition, match="it is undone, and undo needs remediated"):
        lifecycle.undo(outcome.incident.id, "slack:U1")
    assert calls.writes() == ["StartLogging", "StopLogging"]


def test_undo_is_refused_when_the_resource_changed_since(lifecycle, make_trail, calls):
    cloudtrail = make_trail("main")
    _, [outcome] = _responder(lifecycle, Catalog.load([PLAYBOOKS])).respond(_stop_logging())
    cloudtrail.stop_logging(Name="main")  # someone else acted after trailguard
    refused = lifecycle.undo(outcome.incident.id, "slack:U1")
    assert refused.state is State.REMEDIATED
    assert (
        "IsLogging: True -> False" in refused.history[-1].detail and "nothing was changed" in refused.history[-1].detail
    )
    assert calls.writes() == ["StartLogging"]


def test_a_failed_remediation_can_be_retried_and_finishes(lifecycle, aws, make_trail, calls):
    _, [outcome] = _responder(lifecycle, Catalog.load([PLAYBOOKS])).respond(_stop_logging())
    assert outcome.incident.state is State.FAILED
    assert outcome.incident.error.startswith("step 1 (cloudtrail.start_logging): TrailNotFoundException")
    cloudtrail = make_trail("main")
    retried = lifecycle.retry(outcome.incident.id, "slack:U1")
    assert retried.state is State.REMEDIATED and retried.error is None and _logging(cloudtrail)
    assert [e.what for e in retried.history] == ["open", "fail", "retry", "finish"]


def test_an_incident_without_a_plan_cannot_be_retried(lifecycle, aws):
    event = CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {}))
    _, [outcome] = _responder(lifecycle, Catalog.load([PLAYBOOKS])).respond(event)
    with pytest.raises(IllegalTransition, match="has no plan"):
        lifecycle.retry(outcome.incident.id, "slack:U1")


def _crashed_incident(lifecycle, clock, event):
    """What a worker leaves when the Lambda dies after recording the snapshot."""
    incident = Incident(
        id=incident_id(event.event_id, "cloudtrail-stop-logging"),
        playbook_id="cloudtrail-stop-logging",
        playbook_version=1,
        title="CloudTrail logging stopped",
        severity="critical",
        mode="auto",
        event=event.summary(),
        state=State.REMEDIATING,
        plan=[PlannedStep("cloudtrail.start_logging", {"trail": "main"})],
        steps=[
            StepResult(
                "cloudtrail.start_logging",
                {"trail": "main"},
                StepStatus.APPLYING,
                before={"Trail": "main", "IsLogging": False},
            )
        ],
        lease_until=timestamp(clock.now + dt.timedelta(seconds=120)),
    )
    assert lifecycle.store.create(incident)
    return incident


@pytest.mark.parametrize("applied_before_crash", [True, False])
def test_a_redelivery_after_the_lease_resumes_with_the_recorded_snapshot(
    lifecycle, clock, make_trail, calls, applied_before_crash
):
    cloudtrail = make_trail("main")
    event = _stop_logging()
    _crashed_incident(lifecycle, clock, event)
    if applied_before_crash:
        cloudtrail.start_logging(Name="main")
    responder = _responder(lifecycle, Catalog.load([PLAYBOOKS]))
    _, [early] = responder.respond(event)  # inside the lease: the worker may still be running
    assert early.duplicate and early.incident.state is State.REMEDIATING and calls.writes() == []
    clock.now += dt.timedelta(seconds=121)
    _, [late] = responder.respond(event)
    incident = late.incident
    assert incident.state is State.REMEDIATED and _logging(cloudtrail)
    assert incident.steps[0].status is StepStatus.APPLIED
    assert incident.steps[0].before == {"Trail": "main", "IsLogging": False}  # what undo needs, not what it found
    assert calls.writes() == ([] if applied_before_crash else ["StartLogging"])
    assert "resume" in [entry.what for entry in incident.history]


def _throttle(client, operation, times):
    """Answer `operation` with ThrottlingException `times` times, as AWS does under load."""
    faults = Faults()
    faults.add("cloudtrail", operation, "ThrottlingException", times=times, message="Rate exceeded")
    faults.attach(client)
    return faults


def test_throttling_is_retried_then_succeeds(lifecycle, clients, make_trail, instant_backoff):
    cloudtrail = make_trail("main")
    faults = _throttle(clients.client("cloudtrail", ACCOUNT, REGION), "StartLogging", times=2)
    _, [outcome] = _responder(lifecycle, Catalog.load([PLAYBOOKS])).respond(_stop_logging())
    assert outcome.incident.state is State.REMEDIATED and _logging(cloudtrail)
    assert faults.sent("cloudtrail", "StartLogging") == 3


def test_throttling_that_persists_is_recorded_as_failed_not_retried_forever(
    lifecycle, clients, make_trail, instant_backoff
):
    cloudtrail = make_trail("main")
    faults = _throttle(clients.client("cloudtrail", ACCOUNT, REGION), "StartLogging", times=100)
    _, [outcome] = _responder(lifecycle, Catalog.load([PLAYBOOKS])).respond(_stop_logging())
    assert outcome.incident.state is State.FAILED
    assert outcome.incident.steps[0].error == "ThrottlingException: Rate exceeded"
    assert outcome.incident.steps[0].before == {"Trail": "main", "IsLogging": False}
    assert faults.sent("cloudtrail", "StartLogging") == 5 and not _logging(cloudtrail)


def test_an_approval_rememorys_what_was_remembered_when_the_incident_opened(lifecycle, make_trail, memory):
    """Between the proposal and the click, the sweep remembers the weakened trail: the
    approval must still put back the configuration known at the time of the event."""
    from chalicelib.memory import trails

    cloudtrail = make_trail("main")
    cloudtrail.update_trail(Name="main", IsMultiRegionTrail=True, EnableLogFileValidation=True)
    trails.remember(memory, cloudtrail, "main", ACCOUNT, REGION)
    cloudtrail.update_trail(Name="main", IsMultiRegionTrail=False)  # the attacker's UpdateTrail
    event = CloudTrailEvent.from_record(
        record("UpdateTrail", "cloudtrail.amazonaws.com", {"name": "main", "isMultiRegionTrail": False})
    )
    _, [outcome] = _responder(lifecycle, Catalog.load([PLAYBOOKS])).respond(event)
    assert (outcome.playbook.id, outcome.incident.state) == ("cloudtrail-trail-weakened", State.PROPOSED)
    assert outcome.incident.plan[0].remembered["IsMultiRegionTrail"] is True
    trails.remember(memory, cloudtrail, "main", ACCOUNT, REGION)  # the sweep, an hour later
    approved = lifecycle.approve(outcome.incident.id, "slack:U1")
    assert approved.state is State.REMEDIATED
    [trail] = cloudtrail.describe_trails(trailNameList=["main"])["trailList"]
    assert (trail["IsMultiRegionTrail"], trail["LogFileValidationEnabled"]) == (True, True)


def test_an_incident_is_created_at_the_lifecycles_time(tmp_path, lifecycle, make_trail, clock):
    make_trail("main")
    _, [outcome] = _responder(lifecycle, _approve_catalog(tmp_path)).respond(_stop_logging())
    stored = lifecycle.store.get(outcome.incident.id)
    assert stored.created_at == stored.history[0].at == "2026-11-26T03:00:00+00:00"


def test_a_change_that_does_not_hold_fails_the_step_instead_of_reporting_success(lifecycle, clients, make_trail):
    """AWS answered StartLogging, but the trail read back is not logging (the attacker
    stopped it again at once): the step fails, and says why."""
    cloudtrail = make_trail("main")
    client = clients.client("cloudtrail", ACCOUNT, REGION)
    client.meta.events.register("after-call.cloudtrail.StartLogging", lambda **_: cloudtrail.stop_logging(Name="main"))
    _, [outcome] = _responder(lifecycle, Catalog.load([PLAYBOOKS])).respond(_stop_logging())
    assert outcome.incident.state is State.FAILED and not _logging(cloudtrail)
    assert "applied, but the resource read back is still not safe" in outcome.incident.error
    assert outcome.incident.steps[0].before == {"Trail": "main", "IsLogging": False}


def _deleted_trail(memory, cloudtrail):
    """The organization's trail, remembered, then deleted; and the DeleteTrail event."""
    from chalicelib.memory import trails

    cloudtrail.update_trail(Name="main", S3KeyPrefix="audit", IsMultiRegionTrail=True)
    trails.remember(memory, cloudtrail, "main", ACCOUNT, REGION)
    cloudtrail.delete_trail(Name="main")
    return CloudTrailEvent.from_record(record("DeleteTrail", "cloudtrail.amazonaws.com", {"name": "main"}))


def test_a_retried_half_finished_recreation_starts_the_trail_and_keeps_what_undo_needs(
    lifecycle, clients, make_trail, memory
):
    cloudtrail = make_trail("main")
    event = _deleted_trail(memory, cloudtrail)
    faults = Faults()
    faults.add("cloudtrail", "StartLogging", "AccessDeniedException", times=1)
    faults.attach(clients.client("cloudtrail", ACCOUNT, REGION))
    _, [outcome] = _responder(lifecycle, Catalog.load([PLAYBOOKS])).respond(event)
    assert outcome.incident.state is State.FAILED  # created, but not started
    assert cloudtrail.describe_trails(trailNameList=["main"])["trailList"] and not _logging(cloudtrail)

    retried = lifecycle.retry(outcome.incident.id, "slack:U1")
    step = retried.steps[0]
    assert retried.state is State.REMEDIATED and _logging(cloudtrail) and step.status is StepStatus.APPLIED
    assert step.before["Exists"] is False  # the snapshot from before the first attempt
    assert lifecycle.undo(retried.id, "slack:U1").state is State.UNDONE
    assert cloudtrail.describe_trails(trailNameList=["main"])["trailList"] == []


def test_a_resumed_half_finished_recreation_starts_the_trail(lifecycle, clock, make_trail, memory):
    from chalicelib.memory import trails

    cloudtrail = make_trail("main")
    event = _deleted_trail(memory, cloudtrail)
    remembered = memory.recall(trails.memory_key(ACCOUNT, REGION, "main"))
    cloudtrail.create_trail(Name="main", S3BucketName="main-logs", S3KeyPrefix="audit", IsMultiRegionTrail=True)
    crashed = Incident(  # a worker created the trail, then died before starting it
        id=incident_id(event.event_id, "cloudtrail-trail-deleted"),
        playbook_id="cloudtrail-trail-deleted",
        playbook_version=1,
        title="CloudTrail trail deleted",
        severity="critical",
        mode="auto",
        event=event.summary(),
        state=State.REMEDIATING,
        plan=[PlannedStep("cloudtrail.restore_trail", {"trail": "main"}, remembered)],
        steps=[
            StepResult(
                "cloudtrail.restore_trail",
                {"trail": "main"},
                StepStatus.APPLYING,
                before={"Trail": "main", "Exists": False, "Config": None},
            )
        ],
        lease_until=timestamp(clock.now + dt.timedelta(seconds=120)),
    )
    assert lifecycle.store.create(crashed)
    clock.now += dt.timedelta(seconds=121)
    _, [late] = _responder(lifecycle, Catalog.load([PLAYBOOKS])).respond(event)
    assert late.incident.state is State.REMEDIATED and _logging(cloudtrail)
    assert late.incident.steps[0].before["Exists"] is False
