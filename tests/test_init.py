"""In Lambda, each function builds at init (full CPU, before its first event is timed) what
it always needs: its clients and the caller's identity; the Slack endpoint also slack_sdk
and the signing secret, so that a cold click does not pay for them within Slack's 3 s."""

from __future__ import annotations

import boto3
import pytest
from chalice.test import Client

import app as chalice_app
from tests.conftest import ACCOUNT, REGION, SIGNING_SECRET, TABLE, envelope, record, recording_clients
from trailguard.bootstrap import ensure_table

pytestmark = pytest.mark.integration


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
    assert {("dynamodb", ACCOUNT, REGION), ("kms", ACCOUNT, REGION)} <= built
    assert fresh.clients._identity is not None  # who we are: asked once, at init
    failed = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, errorCode="AccessDenied")
    with Client(chalice_app.app) as client:
        client.lambda_.invoke("respond_to_cloudtrail", envelope(failed))
    assert set(fresh.clients._clients) == built


def test_the_slack_endpoint_builds_its_door_and_reads_its_secret_at_init(fresh):
    assert fresh.prepare("trailguard-dev") == ["slack endpoint"]
    assert ("dynamodb", ACCOUNT, REGION) in fresh.clients._clients
    assert "slack_endpoint" in fresh.__dict__ and fresh.slack_endpoint._interactions.cache_info().currsize == 1


def test_a_part_that_cannot_be_built_at_init_is_left_for_first_use(fresh, monkeypatch):
    monkeypatch.setattr(type(fresh), "_prepare_slack_endpoint", lambda self: 1 / 0)
    assert fresh.prepare("trailguard-dev") == []
