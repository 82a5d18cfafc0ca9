"""Each function counts what went wrong where it happened, as EMF lines in its own logs: a
rejected event, a failure a handler caught (the rules' handler, the worker, the public
endpoint's 503, the sweep's errors), through the app's own handlers."""

from __future__ import annotations

import logging

import boto3
import pytest

from chalicelib.incidents.store import DynamoStore
from tests.conftest import Faults, envelope, record, recording_clients
from tests.emf import metric_lines

pytestmark = pytest.mark.integration


@pytest.fixture
def lines(runtime, restart, caplog):
    caplog.set_level(logging.INFO, logger="trailguard")
    restart(stage="prod")
    return lambda metric: metric_lines(caplog, metric)


def test_a_rejected_event_is_counted_with_its_reason(lines, client):
    response = client.lambda_.invoke("respond_to_cloudtrail", {"detail-type": "AWS API Call via CloudTrail"})
    assert response.payload["status"] == "rejected"
    [line] = lines("event rejected")
    assert line["EventsRejected"] == 1 and line["Stage"] == "prod" and line["reason"] == response.payload["reason"]


def test_a_worker_job_it_cannot_read_is_a_handler_error(lines, client):
    assert client.lambda_.invoke("slack_worker", {"surprise": 1}).payload["status"] == "rejected"
    [line] = lines("handler error")
    assert (line["Function"], line["HandlerErrors"], line["reason"]) == ("slack_worker", 1, "job rejected")


def test_a_503_of_the_public_endpoint_is_a_handler_error(lines, client, press, make_trail, approve_mode):
    import app

    make_trail("main").stop_logging(Name="main")
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
    [incident] = client.lambda_.invoke("respond_to_cloudtrail", event).payload["incidents"]
    app.runtime.claims.store = DynamoStore(boto3.client("dynamodb"), "a-table-that-is-not-there")
    assert press("approve", incident["id"]).status_code == 503
    [line] = lines("handler error")
    assert (line["Function"], line["HandlerErrors"]) == ("api_handler", 1)


def test_the_sweeps_errors_are_counted_and_its_backlog_measured(lines, client, restart, aws):
    faults = Faults()
    faults.add("cloudtrail", "DescribeTrails", "AccessDeniedException", times=5)
    restart(clients=recording_clients(faults))
    scheduled = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    report = client.lambda_.invoke("posture_sweep", scheduled).payload
    assert report["errors"] and "AccessDeniedException" in report["errors"][0]
    [line] = lines("handler error")
    assert (line["Function"], line["HandlerErrors"]) == ("posture_sweep", len(report["errors"]))
    [backlog] = lines("slack backlog")
    assert (backlog["SlackDeliveriesPending"], backlog["OldestPendingDeliveryAge"]) == (0, 0)
