"""The incident state machine: every legal move, every illegal one refused with a reason."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.events.record import EventSummary
from chalicelib.incidents.model import (
    TRANSITIONS,
    IllegalTransition,
    Incident,
    State,
    StepResult,
    StepStatus,
    incident_id,
)
from chalicelib.playbooks.plan import PlannedStep

pytestmark = pytest.mark.unit

ALL_MOVES = [(name, state) for name in TRANSITIONS for state in State]


def _incident(state: State) -> Incident:
    return Incident(
        id=incident_id("evt-1", "pb"),
        playbook_id="pb",
        playbook_version=2,
        title="t",
        severity="high",
        mode="approve",
        event=EventSummary({"eventID": "evt-1", "account": "123456789012", "region": "us-east-1"}),
        state=state,
    )


CONTAINMENT_NEEDED = {
    "contain": StepStatus.NOT_RUN,
    "deny_containment": StepStatus.NOT_RUN,
    "expire_containment": StepStatus.NOT_RUN,
    "release": StepStatus.APPLIED,
}
"""The second response's transitions, and the state of the `contain:` step each needs."""


@pytest.mark.parametrize("name,state", [(n, s) for n, s in ALL_MOVES if s in TRANSITIONS[n].sources])
def test_every_legal_transition_moves_and_is_recorded(name, state):
    incident = _incident(state)
    if name in CONTAINMENT_NEEDED:
        incident.plan = [PlannedStep("iam.revoke_role_sessions", {"role": "r"}, contain=True)]
        incident.steps = [StepResult("iam.revoke_role_sessions", {"role": "r"}, CONTAINMENT_NEEDED[name])]
    when = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)
    incident.move(name, "slack:U123", "because", when)
    assert incident.state is TRANSITIONS[name].target
    [entry] = incident.history
    assert (entry.who, entry.what, entry.state, entry.detail, entry.at) == (
        "slack:U123",
        name,
        TRANSITIONS[name].target,
        "because",
        "2026-11-26T03:00:00+00:00",
    )


@pytest.mark.parametrize("name,state", [(n, s) for n, s in ALL_MOVES if s not in TRANSITIONS[n].sources])
def test_every_illegal_transition_is_refused_with_the_reason(name, state):
    incident = _incident(state)
    with pytest.raises(IllegalTransition) as refused:
        incident.move(name, "slack:U123")
    assert f"cannot {name} incident {incident.id}: it is {state.value}" in str(refused.value)
    assert incident.state is state and incident.history == []


def test_the_cases_people_hit():
    approved = _incident(State.PROPOSED)
    approved.move("approve", "slack:U1")
    with pytest.raises(IllegalTransition, match="it is remediating, and approve needs proposed"):
        approved.move("approve", "slack:U2")
    denied = _incident(State.PROPOSED)
    denied.move("deny", "slack:U1")
    with pytest.raises(IllegalTransition, match="it is denied, and undo needs remediated"):
        denied.move("undo", "slack:U1")
    with pytest.raises(IllegalTransition, match="unknown transition 'reopen'"):
        denied.move("reopen", "slack:U1")


def test_finished_states_allow_nothing_but_what_the_table_says():
    finished = {State.DENIED, State.EXPIRED, State.UNDONE, State.ACKNOWLEDGED, State.SIMULATED}
    assert not any(state in rule.sources for rule in TRANSITIONS.values() for state in finished)


def test_an_incident_survives_a_round_trip_through_its_dict():
    incident = _incident(State.REMEDIATING)
    incident.plan = [PlannedStep("cloudtrail.start_logging", {"trail": "main"})]
    incident.steps = [
        StepResult("cloudtrail.start_logging", {"trail": "main"}, StepStatus.APPLYING, before={"IsLogging": False})
    ]
    incident.record("trailguard", "open", "StopLogging by IAMUser mallory")
    incident.notification = {"channel": "C1", "ts": "1.2"}
    incident.lease_until = "2026-11-26T03:02:00+00:00"
    incident.version = 3
    again = Incident.from_dict(incident.to_dict())
    assert again == incident


def test_a_lease_expires_at_its_time():
    incident = _incident(State.REMEDIATING)
    incident.lease_until = "2026-11-26T03:02:00+00:00"
    assert not incident.lease_expired(dt.datetime(2026, 11, 26, 3, 1, 59, tzinfo=dt.UTC))
    assert incident.lease_expired(dt.datetime(2026, 11, 26, 3, 2, tzinfo=dt.UTC))


def test_every_state_has_a_headline_for_people():
    from chalicelib.incidents.notify import describe

    for state in State:
        incident = _incident(state)
        fields = {"eventName": "StopLogging", "actor": "IAMUser mallory", "eventTime": "t", "sourceIPAddress": "ip"}
        incident.event = EventSummary({**incident.event.to_dict(), **fields})
        assert describe(incident).startswith("[HIGH] t: ")


# -- nothing in an incident grows without bound (it lives in one DynamoDB item) ---------------


def test_the_history_keeps_its_first_entries_and_the_latest_and_counts_the_others():
    from chalicelib.incidents.model import HISTORY_FIRST, HISTORY_LIMIT

    incident = _incident(State.REMEDIATED)
    incident.notification = {"channel": "C1", "ts": "1.2", "shown": 0}
    for number in range(1000):
        incident.record("slack:U1", "undo", f"entry {number}")
    assert len(incident.history) == HISTORY_LIMIT and incident.history_dropped == 1000 - HISTORY_LIMIT
    assert incident.history_count == 1000
    details = [entry.detail for entry in incident.history]
    assert details[:HISTORY_FIRST] == [f"entry {n}" for n in range(HISTORY_FIRST)]
    assert details[HISTORY_FIRST:] == [f"entry {n}" for n in range(1000 - HISTORY_LIMIT + HISTORY_FIRST, 1000)]
    again = Incident.from_dict(incident.to_dict())
    assert again.history_dropped == incident.history_dropped and again.history == incident.history


def test_a_message_is_due_after_each_new_entry_even_once_the_history_is_full():
    incident = _incident(State.REMEDIATED)
    incident.notification = {"channel": "C1", "ts": "1.2"}
    for number in range(300):
        incident.record("slack:U1", "undo", f"entry {number}")
        assert incident.notification_due
        incident.notification["shown"] = incident.history_count
        assert not incident.notification_due
    incident.record("slack:U2", "acknowledge")
    assert [entry.who for entry in incident.history_since(incident.notification["shown"])] == ["slack:U2"]
    assert [e.detail for e in incident.history_since(297)] == ["entry 297", "entry 298", "entry 299", None]
    assert incident.history_since(0) == incident.history


def test_a_long_detail_is_cut_and_says_how_much_was_left_out():
    from chalicelib.text import DETAIL_LIMIT

    incident = _incident(State.UNDOING)
    incident.move("refuse_undo", "trailguard", "x" * 50_000)
    (entry,) = incident.history
    assert len(entry.detail) <= DETAIL_LIMIT and entry.detail.endswith("(49,040 more characters)")


def test_a_steps_parameters_are_stored_once_with_the_plan():
    incident = _incident(State.REMEDIATED)
    rules = [{"ipProtocol": "tcp", "fromPort": port, "toPort": port, "cidrIpv4": "0.0.0.0/0"} for port in range(300)]
    incident.plan = [PlannedStep("ec2.revoke_public_ingress", {"group": "sg-1", "rules": rules})]
    incident.steps = [StepResult("ec2.revoke_public_ingress", {"group": "sg-1", "rules": rules}, StepStatus.APPLIED)]
    stored = incident.to_dict()
    assert "params" not in stored["steps"][0]
    again = Incident.from_dict(stored)
    assert again.steps[0].params == {"group": "sg-1", "rules": rules}
    # What earlier versions wrote, each step with its own copy, still reads.
    stored["steps"][0]["params"] = {"group": "sg-1", "rules": rules}
    assert Incident.from_dict(stored) == again


@pytest.mark.parametrize("name", sorted(CONTAINMENT_NEEDED))
def test_the_second_response_s_buttons_are_refused_without_a_containment_in_the_right_state(name):
    incident = _incident(State.REMEDIATED)
    with pytest.raises(IllegalTransition, match=f"cannot {name} incident .*: its containment is none"):
        incident.move(name, "slack:U123")
    incident.plan = [PlannedStep("iam.revoke_role_sessions", {"role": "r"}, contain=True)]
    incident.move("deny_containment", "slack:U123")
    with pytest.raises(IllegalTransition, match=f"its containment is denied, and {name} needs"):
        incident.move(name, "slack:U123")


def test_an_expired_containment_can_no_longer_be_approved_or_denied():
    incident = _incident(State.REMEDIATED)
    incident.plan = [PlannedStep("iam.revoke_role_sessions", {"role": "r"}, contain=True)]
    incident.record("trailguard", "finish", now=dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC))
    assert incident.containment_proposed_at == "2026-11-26T03:00:00+00:00"
    incident.move("expire_containment", "sweeper", "nobody answered")
    assert incident.state is State.REMEDIATED and incident.containment.value == "expired"
    assert incident.containment_proposed_at is None
    for name in ("contain", "deny_containment", "expire_containment"):
        with pytest.raises(IllegalTransition, match=f"its containment is expired, and {name} needs proposed"):
            incident.move(name, "slack:U123")
