"""The incident state machine: every legal move, every illegal one refused with a reason."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.incidents import (
    TRANSITIONS,
    IllegalTransition,
    Incident,
    State,
    StepResult,
    StepStatus,
    incident_id,
)

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
        event={"eventID": "evt-1", "account": "123456789012", "region": "us-east-1"},
        state=state,
    )


@pytest.mark.parametrize("name,state", [(n, s) for n, s in ALL_MOVES if s in TRANSITIONS[n].sources])
def test_every_legal_transition_moves_and_is_recorded(name, state):
    incident = _incident(state)
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
    incident.plan = [{"action": "cloudtrail.start_logging", "params": {"trail": "main"}}]
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
    from chalicelib.notify import describe

    for state in State:
        incident = _incident(state)
        incident.event.update(eventName="StopLogging", actor="IAMUser mallory", eventTime="t", sourceIPAddress="ip")
        assert describe(incident).startswith("[HIGH] t: ")
