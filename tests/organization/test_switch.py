"""The kill switch and the global dry-run switch: one SSM parameter, read at run time, so a
person stops all remediation in one command without a redeploy, and starts it again."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner

from chalicelib.incidents.model import State
from chalicelib.organization.switch import ACTIVE, DRY_RUN, PAUSED, Switch, SwitchState
from tests.conftest import REGION, envelope, record
from trailguard.cli import main

pytestmark = pytest.mark.e2e

TRAIL = "main"
PARAMETER = "/trailguard/dev/switch"  # the dev stage's, derived from its name


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_switch_is_read_at_most_every_few_seconds_and_a_change_is_seen_after():
    value = {"now": "active"}
    reads = []
    clock = Clock()

    def read() -> str:
        reads.append(clock.now)
        return value["now"]

    switch = Switch(read, seconds=30, clock=clock)
    assert switch.ceiling() is None
    value["now"] = json.dumps({"state": "paused", "by": "arn:aws:iam::1:user/alice", "reason": "incident 42"})
    clock.now = 29
    assert switch.ceiling() is None and reads == [0]  # cached
    clock.now = 30
    ceiling = switch.ceiling()
    assert ceiling is not None and ceiling.mode == "dry-run"
    assert ceiling.rule == "the stage's switch: paused by arn:aws:iam::1:user/alice: incident 42"
    assert switch.pause_reason() == "trailguard is paused by arn:aws:iam::1:user/alice: incident 42"


def test_an_unreadable_switch_keeps_the_last_known_state_and_counts_as_paused_when_none_is_known():
    clock = Clock()
    answers: list = [RuntimeError("ThrottlingException"), "active", RuntimeError("ThrottlingException")]

    def read() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    switch = Switch(read, seconds=0, clock=clock)
    first = switch.state()  # a cold start while SSM is throttling: nothing is changed
    assert first.paused and "the switch could not be read" in str(first.error)
    assert switch.state().state == ACTIVE
    assert switch.state().state == ACTIVE  # SSM failing again: the operator's last decision stands
    # never set: active; a value nobody understands: someone meant something, so paused
    assert Switch(lambda: None).state().state == ACTIVE
    assert Switch(lambda: "stop please").state().paused
    assert SwitchState.from_value("dry-run").state == DRY_RUN


@pytest.fixture
def switched(runtime, restart):
    """The deployed runtime, reading the dev stage's switch for every event (no cache)."""
    return restart(switch_parameter=PARAMETER, switch_seconds=0)


def _stop_logging(client) -> dict:
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": TRAIL}))
    [incident] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
    return incident


def _cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_pause_stops_remediation_without_a_redeploy_and_resume_starts_it_again(client, switched, make_trail):
    cloudtrail = make_trail(TRAIL)
    assert _stop_logging(client)["state"] == "remediated"  # never paused: the parameter does not exist

    said = _cli("pause", "--stage", "dev", "--reason", "a bad playbook is fighting the deploy")
    assert "dev: paused by arn:aws:sts::123456789012:user/moto" in said and PARAMETER in said
    cloudtrail.stop_logging(Name=TRAIL)
    paused = _stop_logging(client)  # the same container: nothing redeployed
    assert paused["state"] == "simulated"
    assert cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is False  # nothing was changed
    incident = switched.incidents.get(paused["id"])
    assert incident.mode == "dry-run"
    assert incident.mode_note.startswith("auto -> dry-run: the stage's switch: paused by arn:aws:sts::")
    assert incident.mode_note.endswith(": a bad playbook is fighting the deploy")
    status = json.loads(_cli("status", "--stage", "dev", "--json"))
    assert status["state"] == "paused" and status["reason"] == "a bad playbook is fighting the deploy"

    _cli("resume", "--stage", "dev")
    assert _stop_logging(client)["state"] == "remediated"
    assert cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is True


def test_the_global_dry_run_switch_runs_new_incidents_dry(client, switched, make_trail):
    cloudtrail = make_trail(TRAIL)
    _cli("dry-run", "--stage", "dev", "--reason", "the first week")
    incident = _stop_logging(client)
    assert incident["state"] == "simulated" and cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is False
    assert "dry-run by" in switched.incidents.get(incident["id"]).mode_note


def test_while_paused_an_approval_runs_nothing_and_can_be_retried_after_resume(
    client, switched, approve_mode, press, make_trail, restart
):
    restart(switch_parameter=PARAMETER, switch_seconds=0)
    import app as chalice_app

    cloudtrail = make_trail(TRAIL)
    proposal = _stop_logging(client)
    assert proposal["state"] == "proposed"
    _cli("pause", "--stage", "dev", "--reason", "maintenance")
    assert press("approve", proposal["id"]).status_code == 200  # the decision is recorded...
    incident = chalice_app.runtime.incidents.get(proposal["id"])
    assert incident.state is State.FAILED  # ...and carried out as nothing at all
    assert incident.error.startswith("trailguard is paused by arn:aws:sts::")
    assert "Retry after resume" in incident.error and incident.steps == []
    assert cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is False
    _cli("resume", "--stage", "dev")
    assert press("retry", proposal["id"]).status_code == 200
    assert chalice_app.runtime.incidents.get(proposal["id"]).state is State.REMEDIATED
    assert cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is True


def test_while_paused_an_undo_is_refused_and_the_remediation_stays(client, switched, press, make_trail):
    cloudtrail = make_trail(TRAIL)
    remediated = _stop_logging(client)
    _cli("pause", "--stage", "dev")
    assert press("undo", remediated["id"]).status_code == 200
    incident = switched.incidents.get(remediated["id"])
    assert incident.state is State.REMEDIATED and "press Undo again after resume" in str(incident.history[-1].detail)
    assert cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is True


def test_a_switch_that_cannot_be_read_at_a_cold_start_changes_nothing(client, switched, make_trail, monkeypatch):
    cloudtrail = make_trail(TRAIL)
    boto3.client("ssm", region_name=REGION).put_parameter(Name=PARAMETER, Value=ACTIVE, Type="String")
    switched.switch._read = lambda: (_ for _ in ()).throw(RuntimeError("SSM is down"))  # SSM unreachable
    incident = _stop_logging(client)
    assert incident["state"] == "simulated" and cloudtrail.get_trail_status(Name=TRAIL)["IsLogging"] is False
    assert "the switch could not be read: RuntimeError: SSM is down" in switched.incidents.get(incident["id"]).mode_note


def test_the_acting_roles_may_read_the_switch_and_no_one_else_of_the_stage():
    from trailguard.generate.deployment import stage_settings
    from trailguard.generate.policy import api_policy, lambda_policy

    settings = stage_settings("prod")
    from chalicelib.playbooks.catalog import Catalog
    from tests.conftest import PLAYBOOKS

    acting = lambda_policy(Catalog.load([PLAYBOOKS], with_tests=False), settings)["Statement"]
    [read] = [s for s in acting if s["Sid"] == "ReadTheSwitch"]
    assert read["Action"] == "ssm:GetParameter" and read["Resource"] == "arn:*:ssm:*:*:parameter/trailguard/prod/switch"
    # the only parameter they may write is the heartbeat's canary, never the switch
    writes = [s for s in acting if "PutParameter" in json.dumps(s)]
    assert [(s["Sid"], s["Resource"]) for s in writes] == [
        ("Heartbeat", "arn:*:ssm:*:*:parameter/trailguard/prod/heartbeat")
    ]
    assert "switch" not in json.dumps(api_policy(settings))
    written = SwitchState(PAUSED, "arn:aws:iam::1:user/a").to_value()
    assert json.loads(written) == {"state": "paused", "by": "arn:aws:iam::1:user/a"}
