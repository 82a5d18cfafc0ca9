"""The sweep's work per run stays flat in the age of the deployment: it reads what may need
action now (proposals, busy incidents, messages due), never the remediated and failed
incidents nobody acknowledged, nor the finished ones waiting for their TTL (moto, items
read counted as DynamoDB bills them: ScannedCount of a query or scan, one per item got)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.events.record import EventSummary
from chalicelib.incidents.model import Incident, State, incident_id
from chalicelib.incidents.store import incident_item
from chalicelib.playbooks.plan import PlannedStep
from chalicelib.settings import Settings
from tests.conftest import ACCOUNT, REGION, envelope, record, recording_clients

pytestmark = pytest.mark.integration

OLD_INCIDENTS = 100_000
TABLE_NAME = "trailguard-reads"


class ItemsRead:
    """Counts the DynamoDB items each client's calls read (attached to every client made)."""

    def __init__(self) -> None:
        self.items = 0
        self.calls: dict[str, int] = {}

    def attach(self, client: Any) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            client.meta.events.register("after-call.dynamodb", self._count)
        return client

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        self.calls[name] = self.calls.get(name, 0) + 1
        if name in ("Query", "Scan"):
            self.items += int(parsed.get("ScannedCount", len(parsed.get("Items", []))))
        elif name == "GetItem":
            self.items += 1 if "Item" in parsed else 0
        elif name == "BatchGetItem":
            self.items += sum(len(items) for items in parsed.get("Responses", {}).values())


def _old_incident(number: int, state: State, created: dt.datetime) -> Incident:
    """An incident of long ago whose message shows its last change: nothing is due."""
    incident = Incident(
        id=incident_id(f"evt-old-{number}", "cloudtrail-stop-logging"),
        playbook_id="cloudtrail-stop-logging",
        playbook_version=1,
        title="CloudTrail logging stopped",
        severity="critical",
        mode="auto",
        event=EventSummary(record("StopLogging", "cloudtrail.amazonaws.com", {"name": f"trail-{number}"})),
        state=state,
        plan=[PlannedStep("cloudtrail.start_logging", {"trail": f"trail-{number}"})],
        created_at=created.isoformat(),
    )
    incident.record("trailguard", "open")
    incident.notification = {"channel": "C0ALERTS", "ts": f"{number}.0001", "shown": incident.history_count}
    incident.version = 1
    return incident


def _add_old_incidents(count: int) -> None:
    """`count` incidents of the last year as the store writes them, straight into moto's
    table (as fast as the test can): most remediated and never acknowledged, some failed,
    the rest acknowledged and waiting for DynamoDB's TTL (which moto never runs)."""
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[ACCOUNT][REGION]
    start = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
    states = [State.REMEDIATED] * 6 + [State.FAILED, State.ACKNOWLEDGED, State.ACKNOWLEDGED, State.NOTIFIED]
    for number in range(count):
        incident = _old_incident(number, states[number % len(states)], start + dt.timedelta(minutes=5 * number))
        backend.put_item(TABLE_NAME, incident_item(incident, 2_000_000_000, "old"))


def _items_in_table() -> int:
    from moto.dynamodb.models import dynamodb_backends

    return len(dynamodb_backends[ACCOUNT][REGION].get_table(TABLE_NAME))


def test_a_hundred_thousand_old_incidents_do_not_change_what_a_sweep_reads(
    aws, slack_stub, integrity_key, restart, make_trail
):
    from tests.conftest import SIGNING_SECRET
    from trailguard.bootstrap import ensure_table

    ensure_table(boto3.client("dynamodb", region_name=REGION), TABLE_NAME)
    reads = ItemsRead()
    settings = Settings(
        table=TABLE_NAME,
        integrity_key=integrity_key,
        slack_token=slack_stub.token,
        slack_signing_secret=SIGNING_SECRET,
        slack_channel="#security-alerts",
        slack_base_url=slack_stub.base_url,
        sweep_regions=frozenset({REGION}),
    )
    restart(settings=settings, clients=recording_clients(reads))
    make_trail("main").start_logging(Name="main")
    with Client(chalice_app.app) as client:
        scheduled = client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        # today's work: a trail stopped and put back by trailguard, its message in Slack
        stopped = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))
        client.lambda_.invoke("respond_to_cloudtrail", stopped)
        client.lambda_.invoke("posture_sweep", scheduled)  # the first sweep settles what is due

        reads.items = 0
        steady = client.lambda_.invoke("posture_sweep", scheduled).payload
        read_young = reads.items

        _add_old_incidents(OLD_INCIDENTS)
        assert _items_in_table() >= OLD_INCIDENTS
        reads.items = 0
        old = client.lambda_.invoke("posture_sweep", scheduled).payload
        read_old = reads.items

    assert steady["errors"] == [] and old["errors"] == [] and read_young > 0
    assert read_old == read_young, f"{read_old} items read with {OLD_INCIDENTS:,} old incidents, {read_young} without"
