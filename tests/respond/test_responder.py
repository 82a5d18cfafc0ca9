"""The one decision path, by mode, against moto: what is recorded, what is called, what is told."""

from __future__ import annotations

import textwrap

import pytest

from chalicelib.actions.binding import ActionBinder
from chalicelib.aws.clients import AwsClients
from chalicelib.events.record import CloudTrailEvent
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.model import State, StepStatus, incident_id
from chalicelib.incidents.notify import Notifier, TextNotifier, describe
from chalicelib.incidents.store import MemoryStore
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import Responder
from tests.conftest import PLAYBOOKS, record, recording_clients

pytestmark = pytest.mark.integration


def _responder(catalog, clients, messages=None):
    return Responder(
        catalog,
        own=OwnIdentities(member_role="trailguard-remediator"),
        incidents=Incidents(
            MemoryStore(),
            ActionBinder(clients),
            notifier=TextNotifier((messages if messages is not None else []).append),
        ),
    )


@pytest.fixture
def builtin():
    return Catalog.load([PLAYBOOKS])


@pytest.fixture
def stopped_trail(make_trail):
    return make_trail("main")


def _stop_logging(**fields):
    return CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, **fields))


def test_auto_mode_remediates_records_and_notifies(builtin, stopped_trail, calls):
    messages = []
    responder = _responder(builtin, recording_clients(calls), messages)
    event = _stop_logging()
    _decision, [outcome] = responder.respond(event)
    incident = outcome.incident
    assert incident.id == incident_id(event.event_id, "cloudtrail-stop-logging")
    assert incident.state is State.REMEDIATED
    assert [s.status for s in incident.steps] == [StepStatus.APPLIED]
    assert incident.steps[0].before == {"Trail": "main", "IsLogging": False}
    assert incident.steps[0].after == {"Trail": "main", "IsLogging": True}
    assert stopped_trail.get_trail_status(Name="main")["IsLogging"] is True
    assert responder.incidents.store.get(incident.id).to_dict() == incident.to_dict()
    assert messages == [describe(incident)]
    assert "IAMUser mallory called StopLogging" in messages[0]
    assert calls.writes() == ["StartLogging"]


def test_the_same_event_delivered_three_times_acts_once(builtin, stopped_trail, calls):
    responder = _responder(builtin, recording_clients(calls))
    event = _stop_logging()
    outcomes = [responder.respond(event)[1][0] for _ in range(3)]
    assert [o.duplicate for o in outcomes] == [False, True, True]
    assert len({o.incident.id for o in outcomes}) == 1
    assert calls.calls.count("StartLogging") == 1


def test_a_trail_already_logging_is_recorded_as_already_safe(builtin, stopped_trail, calls):
    stopped_trail.start_logging(Name="main")
    responder = _responder(builtin, recording_clients(calls))
    _, [outcome] = responder.respond(_stop_logging())
    assert outcome.incident.state is State.REMEDIATED
    assert outcome.incident.steps[0].status is StepStatus.ALREADY_SAFE
    assert calls.writes() == []


def test_a_failing_step_leaves_a_failed_incident_with_the_error(builtin, aws):
    responder = _responder(builtin, AwsClients())
    _, [outcome] = responder.respond(_stop_logging())  # no such trail in moto
    incident = outcome.incident
    assert incident.state is State.FAILED
    assert incident.steps[0].status is StepStatus.FAILED
    assert incident.steps[0].error.startswith("TrailNotFoundException")


def test_guarded_events_open_no_incident(builtin, stopped_trail, calls):
    responder = _responder(builtin, recording_clients(calls))
    own = {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::123456789012:assumed-role/trailguard-remediator/trailguard",
        "accountId": "123456789012",
        "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "trailguard-remediator"}},
    }
    for event in (_stop_logging(errorCode="AccessDenied"), _stop_logging(userIdentity=own)):
        decision, outcomes = responder.respond(event)
        assert decision.skip is not None and outcomes == []
    assert calls.calls == []


def _catalog_with(
    tmp_path, mode, steps="  - action: cloudtrail.start_logging\n    with: {trail: requestParameters.name}\n"
):
    text = textwrap.dedent(f"""\
        id: trail-{mode}
        title: Trail stopped
        severity: high
        when: {{source: cloudtrail.amazonaws.com, events: [StopLogging]}}
        mode: {mode}
        """) + (f"steps:\n{steps}" if steps else "")
    (tmp_path / f"{mode}.yaml").write_text(text)
    return Catalog.load([tmp_path / f"{mode}.yaml"])


@pytest.mark.parametrize("mode,state", [("approve", State.PROPOSED), ("dry-run", State.SIMULATED)])
def test_modes_that_do_not_act_call_no_aws(tmp_path, stopped_trail, calls, mode, state):
    responder = _responder(_catalog_with(tmp_path, mode), recording_clients(calls))
    _, [outcome] = responder.respond(_stop_logging())
    assert outcome.incident.state is state
    assert [step.to_dict() for step in outcome.incident.plan] == [
        {"action": "cloudtrail.start_logging", "params": {"trail": "main"}}
    ]
    assert calls.calls == []
    assert stopped_trail.get_trail_status(Name="main")["IsLogging"] is False


def test_notify_mode_records_and_tells(tmp_path, aws, calls):
    messages = []
    responder = _responder(_catalog_with(tmp_path, "notify", steps=""), recording_clients(calls), messages)
    _, [outcome] = responder.respond(_stop_logging())
    assert outcome.incident.state is State.NOTIFIED
    assert "for your attention" in messages[0]
    assert calls.calls == []


def test_a_plan_that_cannot_be_resolved_is_recorded_as_failed(builtin, aws, calls):
    responder = _responder(builtin, recording_clients(calls))
    event = CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {}))
    _, [outcome] = responder.respond(event)
    assert outcome.incident.state is State.FAILED
    assert "parameter 'trail' from 'requestParameters.name' is null" in outcome.incident.error
    assert calls.calls == []


def test_a_notifier_that_fails_loses_no_incident(builtin, stopped_trail):
    class BrokenNotifier(Notifier):
        def notify(self, incident):
            raise ConnectionError("chat is down")

    responder = Responder(
        builtin,
        own=OwnIdentities(),
        incidents=Incidents(MemoryStore(), ActionBinder(AwsClients()), notifier=BrokenNotifier()),
    )
    _, [outcome] = responder.respond(_stop_logging())
    assert responder.incidents.store.get(outcome.incident.id).state is State.REMEDIATED


def test_a_condition_that_breaks_on_an_odd_record_is_reported_not_dropped(tmp_path, aws):
    (tmp_path / "p.yaml").write_text(
        textwrap.dedent("""\
        id: odd
        title: Odd
        severity: low
        when: {source: cloudtrail.amazonaws.com, events: [StopLogging], if: "length(requestParameters.name) > `3`"}
        mode: notify
        """)
    )
    responder = _responder(Catalog.load([tmp_path]), AwsClients())
    event = CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {"name": 12}))
    _, [outcome] = responder.respond(event)
    assert outcome.incident.state is State.FAILED
    assert "cannot be evaluated on this event" in outcome.incident.error


def test_a_dry_run_playbook_that_cannot_be_planned_is_recorded_as_failed(tmp_path, aws):
    responder = _responder(_catalog_with(tmp_path, "dry-run"), AwsClients())
    event = CloudTrailEvent.from_record(record("StopLogging", "cloudtrail.amazonaws.com", {}))
    _, [outcome] = responder.respond(event)
    assert outcome.incident.state is State.FAILED and outcome.incident.steps == []
    assert "parameter 'trail' from 'requestParameters.name' is null" in outcome.incident.error
