"""In Lambda, each function builds at init (full CPU, before its first event is timed) what
it always needs: its clients and the caller's identity; the Slack endpoint also slack_sdk
and the signing secret, so that a cold click does not pay for them within Slack's 3 s."""

from __future__ import annotations

import boto3
import pytest
from chalice.test import Client

import app as chalice_app
from tests.conftest import REGION, SIGNING_SECRET, TABLE, envelope, record, recording_clients
from trailguard.bootstrap import ensure_table

pytestmark = pytest.mark.integration

HOME = ""
"""How `AwsClients` keys the clients of trailguard's own account."""


@pytest.fixture
def fresh(aws, integrity_key, restart, calls):
    """A new container of the app (incidents in DynamoDB, sealed with KMS), its clients recorded."""
    ensure_table(boto3.client("dynamodb", region_name=REGION), TABLE)
    return restart(
        table=TABLE,
        integrity_key=integrity_key,
        slack_signing_secret=SIGNING_SECRET,
        clients=recording_clients(calls),
    )


def test_outside_lambda_nothing_is_built_at_import(fresh):
    assert fresh.prepare(None) == []
    assert fresh.clients._clients == {} and "event_handler" not in fresh.__dict__


def test_the_rules_function_builds_its_clients_at_init_and_its_first_event_makes_none(fresh):
    assert fresh.prepare("trailguard-dev-respond_to_cloudtrail") == ["event handler"]
    built = set(fresh.clients._clients)
    assert {("dynamodb", HOME, REGION), ("kms", HOME, REGION)} <= built
    assert fresh.clients._identity is not None  # who we are: asked once, at init
    failed = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, errorCode="AccessDenied")
    with Client(chalice_app.app) as client:
        client.lambda_.invoke("respond_to_cloudtrail", envelope(failed))
    assert set(fresh.clients._clients) == built


def test_the_slack_endpoint_builds_its_door_and_reads_its_secret_at_init(fresh):
    assert fresh.prepare("trailguard-dev") == ["slack endpoint"]
    assert ("dynamodb", HOME, REGION) in fresh.clients._clients
    assert "slack_endpoint" in fresh.__dict__ and fresh.slack_endpoint._interactions.cache_info().currsize == 1


def test_the_slack_endpoint_asks_nobody_who_it_is(aws, integrity_key, restart, calls):
    """Its table, its worker (a Lambda, as deployed) and its secret are in its own account,
    which its clients need not name: no STS client and no GetCallerIdentity in a cold
    click's init (bench.slack_cold)."""
    endpoint = restart(
        table=TABLE,
        integrity_key=integrity_key,
        slack_signing_secret=SIGNING_SECRET,
        slack_worker="trailguard-dev-slack_worker",
        clients=recording_clients(calls),
    )
    assert endpoint.prepare("trailguard-dev") == ["slack endpoint"]
    assert {("dynamodb", HOME, REGION), ("lambda", HOME, REGION)} <= set(endpoint.clients._clients)
    assert endpoint.clients._identity is None
    assert not [key for key in endpoint.clients._clients if key[0] == "sts"]


def test_a_part_that_cannot_be_built_at_init_is_left_for_first_use(fresh, monkeypatch):
    monkeypatch.setattr(type(fresh), "_prepare_slack_endpoint", lambda self: 1 / 0)
    assert fresh.prepare("trailguard-dev") == []
