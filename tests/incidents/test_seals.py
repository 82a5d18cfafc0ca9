"""What a seal covers and what it leaves to clicks and the notifier (chalicelib/incidents/seals.py).

The store underneath is written here as the Slack endpoint writes it (the unsealed store:
conditional puts of whatever it likes), and read back through the acting roles' store.
"""

from __future__ import annotations

import dataclasses

import pytest

from chalicelib.aws.seals import ChangedOutsideTrailguard, LocalSealer
from chalicelib.events.record import EventSummary
from chalicelib.incidents.model import Incident, State, StepResult, StepStatus, incident_id
from chalicelib.incidents.seals import SealedStore
from chalicelib.incidents.store import MemoryStore
from chalicelib.playbooks.plan import PlannedStep

pytestmark = pytest.mark.unit


def _incident(state: State = State.REMEDIATED) -> Incident:
    return Incident(
        id=incident_id("evt-1", "cloudtrail-stop-logging"),
        playbook_id="cloudtrail-stop-logging",
        playbook_version=1,
        title="CloudTrail logging stopped",
        severity="critical",
        mode="auto",
        event=EventSummary(
            {"eventID": "evt-1", "account": "123456789012", "region": "us-east-1", "actor": "IAMUser mallory"}
        ),
        state=state,
        plan=[PlannedStep("cloudtrail.start_logging", {"trail": "main"})],
        steps=[
            StepResult(
                "cloudtrail.start_logging",
                {"trail": "main"},
                StepStatus.APPLIED,
                before={"Trail": "main", "IsLogging": False},
                after={"Trail": "main", "IsLogging": True},
            )
        ],
    )


@pytest.fixture
def stores():
    """(what the acting roles use, what the endpoint writes through), over one table."""
    table = MemoryStore()
    sealed = SealedStore(table, LocalSealer())
    genuine = _incident()
    assert sealed.create(genuine)
    return sealed, table, genuine.id


def _edit(table: MemoryStore, key: str, change) -> None:
    """A conditional write as the endpoint makes it: read, change anything, put back."""
    incident = table.get(key)
    change(incident)
    table.save(incident)


SEALED_EDITS = {
    "the account": lambda i: setattr(i, "event", EventSummary({**i.event.to_dict(), "account": "999999999999"})),
    "the region": lambda i: setattr(i, "event", EventSummary({**i.event.to_dict(), "region": "eu-west-1"})),
    "the playbook": lambda i: setattr(i, "playbook_id", "kms-key-disabled"),
    "the mode": lambda i: setattr(i, "mode", "dry-run"),
    "the severity": lambda i: setattr(i, "severity", "low"),
    "a plan's parameter": lambda i: i.plan[0].params.update(trail="other"),
    "a recalled configuration": lambda i: i.plan.__setitem__(
        0, dataclasses.replace(i.plan[0], remembered={"S3BucketName": "elsewhere"})
    ),
    "a step's before": lambda i: i.steps[0].before.update(IsLogging=True),
    "a step's after": lambda i: i.steps[0].after.update(IsLogging=False),
    "a step's status": lambda i: setattr(i.steps[0], "status", StepStatus.FAILED),
    "the error": lambda i: setattr(i, "error", "nothing to see"),
    "the creation time": lambda i: setattr(i, "created_at", "2020-01-01T00:00:00+00:00"),
    "the sealed state": lambda i: setattr(i, "sealed_state", State.PROPOSED),
    "the seal itself": lambda i: setattr(i, "seal", "AAAA" + (i.seal or "")[4:]),
    "no seal": lambda i: setattr(i, "seal", None),
}


@pytest.mark.parametrize("edit", SEALED_EDITS.values(), ids=SEALED_EDITS.keys())
def test_an_edit_of_anything_sealed_is_refused(stores, edit):
    sealed, table, key = stores
    _edit(table, key, edit)
    with pytest.raises(ChangedOutsideTrailguard, match=f"incident {key} changed outside trailguard"):
        sealed.get(key)
    assert sealed.open_incidents() == [] and sealed.refusals.refused[-1].startswith(key)


UNSEALED_EDITS = {
    "a decision in the history": lambda i: i.record("slack:U0APPROVER", "comment"),
    "where the message is": lambda i: setattr(i, "notification", {"channel": "C1", "ts": "1.2", "shown": 2}),
    "the lease": lambda i: setattr(i, "lease_until", "2030-01-01T00:00:00+00:00"),
    "one button press (undo)": lambda i: i.move("undo", "slack:U0APPROVER"),
    "one button press (acknowledge)": lambda i: i.move("acknowledge", "slack:U0APPROVER"),
}


@pytest.mark.parametrize("edit", UNSEALED_EDITS.values(), ids=UNSEALED_EDITS.keys())
def test_what_a_click_or_the_notifier_writes_keeps_the_seal_valid(stores, edit):
    sealed, table, key = stores
    _edit(table, key, edit)
    assert sealed.get(key) is not None and [i.id for i in sealed.open_incidents()] in ([key], [])


@pytest.mark.parametrize(
    "sealed_in,moved_to",
    [
        (State.REMEDIATED, State.REMEDIATING),  # run the plan again: no button does that
        (State.DENIED, State.REMEDIATING),  # denied, then approved: two presses
        (State.UNDONE, State.UNDOING),
        (State.EXPIRED, State.PROPOSED),
    ],
)
def test_a_state_more_than_one_button_away_from_the_sealed_one_is_refused(sealed_in, moved_to):
    table = MemoryStore()
    sealed = SealedStore(table, LocalSealer())
    sealed.create(_incident(sealed_in))
    _edit(table, _incident().id, lambda i: setattr(i, "state", moved_to))
    with pytest.raises(ChangedOutsideTrailguard, match="no button leads from one to the other"):
        sealed.get(_incident().id)


def test_an_acting_write_seals_the_state_it_reached(stores):
    sealed, table, key = stores
    _edit(table, key, lambda i: i.move("undo", "slack:U0APPROVER"))
    undoing = sealed.get(key)
    assert (undoing.state, undoing.sealed_state) == (State.UNDOING, State.REMEDIATED)
    undoing.move("finish_undo", "trailguard")
    sealed.save(undoing)
    assert table.get(key).sealed_state is State.UNDONE
    _edit(table, key, lambda i: setattr(i, "state", State.UNDOING))  # the old click's state, again
    with pytest.raises(ChangedOutsideTrailguard):
        sealed.get(key)


def test_an_incident_copied_under_another_key_is_refused():
    table = MemoryStore()
    sealed = SealedStore(table, LocalSealer())
    sealed.create(_incident())
    copy = table.get(_incident().id)
    copy_dict = copy.to_dict()
    table._incidents["inc-" + "f" * 20] = copy_dict  # the same sealed body, stored under another id
    with pytest.raises(ChangedOutsideTrailguard, match="stored under inc-ffff"):
        sealed.get("inc-" + "f" * 20)


def test_another_processs_local_key_does_not_verify():
    """A seal is only as good as its key: another key (another process's) does not match."""
    table = MemoryStore()
    SealedStore(table, LocalSealer()).create(_incident())
    with pytest.raises(ChangedOutsideTrailguard, match="does not match"):
        SealedStore(table, LocalSealer()).get(_incident().id)
