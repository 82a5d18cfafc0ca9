"""Slack at volume: a storm of incidents keeps Slack's per-channel posting rate (the stub
enforces it as Slack does, 429 past one post a second), a burst is grouped into digests by
playbook and account, and nothing is lost (moto for the table, the local Slack stub)."""

from __future__ import annotations

import threading

import boto3
import pytest
from chalice.test import Client

import app as chalice_app
from chalicelib.incidents.model import State
from chalicelib.playbooks.catalog import Catalog
from chalicelib.settings import Settings
from chalicelib.slack.pace import DynamoSlots, MemorySlots, Pace
from tests.conftest import REGION, SIGNING_SECRET, envelope, record
from trailguard.local.slack import SlackStub

pytestmark = pytest.mark.integration

STORM = 1000
ACCOUNTS = ("111111111111", "222222222222")
NOTIFY_PLAYBOOK = """\
id: key-policy-changed
title: Key policy changed
severity: medium
when: {source: kms.amazonaws.com, events: [PutKeyPolicy]}
mode: notify
"""


class FakeTime:
    """One clock for trailguard's pace and the stub: a storm's minute without its waits."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)


def test_the_pace_claims_one_second_per_channel_and_waits_for_it():
    clock = FakeTime(100.2)
    pace = Pace(MemorySlots(), wait_seconds=2, clock=clock.time, sleep=clock.sleep)
    assert pace.wait_turn("#a") and clock.now == 100.2  # this second is free: post now
    assert pace.wait_turn("#b") and clock.now == 100.2  # another channel has its own
    assert pace.wait_turn("#a") and clock.now == 101.0  # the next second of #a
    assert pace.wait_turn("#a") and clock.now == 102.0
    assert pace.wait_turn("#a") and clock.now == 103.0
    clock.now = 103.5
    assert pace.wait_turn("#a") and clock.now == 104.0
    assert pace.wait_turn("#a") and pace.wait_turn("#a") and clock.now == 106.0
    clock.now = 104.0
    assert not pace.wait_turn("#a") and clock.now == 104.0  # 104..106 taken: deferred, no wait


def test_slots_are_shared_through_the_table_by_every_container(dynamo_store):
    one, other = (DynamoSlots(dynamo_store.client, dynamo_store.table) for _ in "ab")
    assert one.claim("#alerts", 100) is True
    assert other.claim("#alerts", 100) is False
    assert other.claim("#alerts", 101) is True and other.claim("#other", 100) is True


def test_the_stub_refuses_a_second_post_in_the_same_second_as_slack_does():
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    clock = FakeTime()
    with SlackStub(clock=clock.time) as stub:
        web = WebClient(token=stub.token, base_url=stub.base_url)
        web.chat_postMessage(channel="#alerts", text="one")
        web.chat_postMessage(channel="#other", text="another channel")
        with pytest.raises(SlackApiError) as refused:
            web.chat_postMessage(channel="#alerts", text="two")
        assert refused.value.response.status_code == 429 and refused.value.response.headers["Retry-After"] == "1"
        clock.sleep(1)
        web.chat_postMessage(channel="#alerts", text="two, a second later")
    assert stub.rate_limited == [stub.channel_id("#alerts")]


def test_a_storm_of_a_thousand_incidents_in_a_minute_is_delivered_without_loss_or_429(
    aws, integrity_key, restart, tmp_path
):
    from trailguard.bootstrap import ensure_table

    (tmp_path / "notify.yaml").write_text(NOTIFY_PLAYBOOK)
    ensure_table(boto3.client("dynamodb", region_name=REGION), "trailguard-storm")
    clock = FakeTime()
    with SlackStub(clock=clock.time) as stub:
        settings = Settings(
            table="trailguard-storm",
            integrity_key=integrity_key,
            slack_token=stub.token,
            slack_signing_secret=SIGNING_SECRET,
            slack_channel="#security-alerts",
            slack_base_url=stub.base_url,
            sweep_regions=frozenset({REGION}),
            sweep_trails=frozenset({"none"}),
        )
        runtime = restart(Catalog.load([tmp_path]), settings=settings)
        # The handlers of a storm are 50 Lambdas, each waiting on its own: run one after the
        # other here, they would each push the one clock on. So none waits (a busy second
        # defers at once) and the storm's minute stays a minute; the sweep waits as it does.
        slots = DynamoSlots(runtime.clients.home_client("dynamodb"), settings.table)
        runtime.__dict__["slack_pace"] = Pace(slots, wait_seconds=0, clock=clock.time, sleep=clock.sleep)
        with Client(chalice_app.app) as client:
            for number in range(STORM):  # a thousand in one minute, as 50 handlers would take them
                clock.sleep(60 / STORM)
                account = ACCOUNTS[number % len(ACCOUNTS)]
                event = record("PutKeyPolicy", "kms.amazonaws.com", {"keyId": f"key-{number}"}, eventID=f"evt-{number}")
                event["recipientAccountId"] = event["userIdentity"]["accountId"] = account
                client.lambda_.invoke("respond_to_cloudtrail", envelope(event))
            posted_by_handlers = len(stub.calls("chat.postMessage"))
            clock.sleep(15 * 60)  # the next sweep
            runtime.__dict__["slack_pace"] = Pace(slots, clock=clock.time, sleep=clock.sleep)
            runtime.__dict__.pop("notifier", None)
            runtime.incidents.notifier = runtime.notifier
            scheduled = client.events.generate_cw_event(
                source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
            )
            report = client.lambda_.invoke("posture_sweep", scheduled).payload

    incidents = runtime.claims.open_incidents([State.NOTIFIED])
    assert len(incidents) == STORM and report["errors"] == []
    assert stub.rate_limited == [], f"{len(stub.rate_limited)} posts answered 429"
    assert max(stub.posts_per_channel_second().values()) == 1
    lost = [i.id for i in incidents if i.notification_due or (i.notification or {}).get("ts") is None]
    assert lost == [], f"{len(lost)} incidents without their message"
    shown = {
        incident_id
        for message in stub.messages.values()
        for incident_id in {i.id for i in incidents}
        if incident_id in str(message.blocks)
    }
    assert shown == {i.id for i in incidents}
    posts = len(stub.calls("chat.postMessage"))
    digests = [m for m in stub.messages.values() if "grouped to keep within" in str(m.blocks)]
    assert posts < STORM // 4 and len(digests) >= (STORM - posted_by_handlers) // 40
    print(f"storm: {STORM} incidents, {posted_by_handlers} posted at once, {len(digests)} digests, {posts} posts")
