"""Incidents stay within DynamoDB's 400 KB item whatever the event, on moto with real-size
inputs: a 30 KB key policy whose undo is refused 500 times, a security group opened with
hundreds of rules, a plan or a snapshot too large to keep. Each incident either fits
(compressed, its parameters kept once, its history bounded) or fails in the open, before
anything is changed; none makes the handler fail half-way."""

from __future__ import annotations

import base64
import json
import os
import random
import string

import boto3
import pytest

from chalicelib.actions.binding import ActionBinder
from chalicelib.aws.dynamodb import item_size
from chalicelib.events.record import CloudTrailEvent
from chalicelib.incidents.lifecycle import Incidents
from chalicelib.incidents.model import HISTORY_LIMIT, State, StepStatus
from chalicelib.incidents.store import MAX_ITEM_BYTES
from chalicelib.logs import JsonLines
from chalicelib.memory.documents import DynamoDocuments
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import Responder
from chalicelib.text import DETAIL_LIMIT
from tests.conftest import (
    ACCOUNT,
    DEPLOYED_TABLE,
    PLAYBOOKS,
    REGION,
    TABLE,
    Clock,
    envelope,
    record,
    recording_clients,
    remembering,
    shown,
    signed_click,
)

pytestmark = pytest.mark.integration

EVENTBRIDGE_LIMIT = 256 * 1024
"""The largest event EventBridge delivers: CloudTrail events beyond it never reach the handler."""


def _stored_size(client, table: str, incident_id: str) -> int:
    item = client.get_item(TableName=table, Key={"pk": {"S": incident_id}})["Item"]
    return item_size(item)


@pytest.fixture
def lifecycle(dynamo_store, calls):
    clients = recording_clients(calls)
    memory = remembering(dynamo_store, DynamoDocuments(dynamo_store.client, dynamo_store.table))
    return Incidents(dynamo_store, ActionBinder(clients, memory), memory=memory, clock=Clock())


def _responder(lifecycle, catalog=None):
    return Responder(
        catalog or Catalog.load([PLAYBOOKS]),
        own=OwnIdentities(member_role="trailguard-remediator"),
        incidents=lifecycle,
    )


# -- a 30 KB key policy, and an undo refused 500 times ----------------------------------------


def _key_policy(size: int) -> str:
    """A key policy of about `size` bytes (KMS allows 32 KB): the account, a statement per
    application role, and one that lets everyone decrypt."""
    statements: list[dict] = [
        {"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*"}
    ]
    total = 0
    while total < size:
        number = len(statements)
        statements.append(
            {
                "Sid": f"App{number}",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/service-{number:04d}-runtime"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
            }
        )
        total += len(json.dumps(statements[-1]))
    statements.append({"Sid": "Everyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def test_a_30_kb_key_policy_whose_undo_is_refused_500_times_stays_small_and_can_still_be_undone(
    lifecycle, dynamo_store
):
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    policy = _key_policy(30_000)
    assert 29_000 < len(policy) < 32_768
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)
    event = record("PutKeyPolicy", "kms.amazonaws.com", {"keyId": key, "policyName": "default", "policy": policy})
    _, (outcome,) = _responder(lifecycle).respond(CloudTrailEvent.from_record(event))
    assert outcome.incident.state is State.PROPOSED
    incident_id = outcome.incident.id
    assert lifecycle.approve(incident_id, "slack:U1").state is State.REMEDIATED
    left = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    assert "Everyone" not in left

    changed = json.loads(left)
    changed["Statement"].append({"Sid": "Later", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*"})
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(changed))
    for _ in range(500):
        assert lifecycle.undo(incident_id, "slack:U1").state is State.REMEDIATED  # refused: the policy changed

    assert _stored_size(dynamo_store.client, TABLE, incident_id) <= MAX_ITEM_BYTES
    stored = dynamo_store.get(incident_id)
    assert stored.history_count == 3 + 2 * 500 and len(stored.history) == HISTORY_LIMIT
    assert [entry.what for entry in stored.history[:3]] == ["open", "approve", "finish"]
    refusal = stored.history[-1]
    assert refusal.what == "refuse_undo" and "Policy: " in refusal.detail and "characters" in refusal.detail
    assert len(refusal.detail) <= DETAIL_LIMIT and "service-0001-runtime" not in refusal.detail
    assert stored.steps[0].before["Policy"] == policy  # the snapshot itself is kept whole

    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=left)  # back as trailguard left it
    assert lifecycle.undo(incident_id, "slack:U1").state is State.UNDONE
    assert kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"] == policy


# -- a security group opened with hundreds of rules -------------------------------------------


@pytest.fixture
def raised_rule_quota(monkeypatch):
    """The account's quota of rules per security group raised to 1,000, AWS's most (moto
    hard-codes the default, 60)."""
    from moto.ec2.models.security_groups import SecurityGroupBackend

    original = SecurityGroupBackend._verify_group_will_respect_rule_count_limit

    def at_most_1000(self, group, current, ip_ranges, source_groups=None, egress=False):
        if current + len(ip_ranges or []) + len(source_groups or []) > 1000:
            original(self, group, 10_000, ip_ranges, source_groups, egress)  # moto's own refusal

    monkeypatch.setattr(SecurityGroupBackend, "_verify_group_will_respect_rule_count_limit", at_most_1000)


_DESCRIPTION_CHARACTERS = string.ascii_letters + string.digits + "._-:/()#,@[]+=&;{}!$*"
"""What EC2 accepts in a rule's description (255 characters at most)."""


def _open_ssh_in_hundreds_of_rules(count: int) -> tuple[dict, list[dict]]:
    """`count` rules, each opening SSH (a port range around 22) to the internet with a
    255-character description an attacker chose to be hard to compress, authorized in
    one call on moto; returns the CloudTrail record of the call, and the call's rules."""
    ec2 = boto3.client("ec2", region_name=REGION)
    group = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
    chance = random.Random(23)
    permissions = [
        {
            "IpProtocol": "tcp",
            "FromPort": 22 - low,
            "ToPort": 22 + high,
            "IpRanges": [
                {"CidrIp": "0.0.0.0/0", "Description": "".join(chance.choices(_DESCRIPTION_CHARACTERS, k=255))}
            ],
        }
        for low in range(16)
        for high in range(16)
    ][:count]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=permissions)
    created = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    request = {
        "groupId": group,
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": p["IpProtocol"],
                    "fromPort": p["FromPort"],
                    "toPort": p["ToPort"],
                    "groups": {},
                    "ipRanges": {
                        "items": [{"cidrIp": r["CidrIp"], "description": r["Description"]} for r in p["IpRanges"]]
                    },
                    "ipv6Ranges": {},
                    "prefixListIds": {},
                }
                for p in permissions
            ]
        },
    }
    response = {
        "_return": True,
        "securityGroupRuleSet": {
            "items": [
                {
                    "groupOwnerId": ACCOUNT,
                    "groupId": group,
                    "securityGroupRuleId": rule["SecurityGroupRuleId"],
                    "description": rule["Description"],
                    "isEgress": False,
                    "ipProtocol": rule["IpProtocol"],
                    "fromPort": rule["FromPort"],
                    "toPort": rule["ToPort"],
                    "cidrIpv4": rule["CidrIpv4"],
                }
                for rule in created
                if not rule["IsEgress"]
            ]
        },
    }
    return record("AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", request, responseElements=response), permissions


def _open_rules(group: str) -> int:
    ec2 = boto3.client("ec2", region_name=REGION)
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    return sum(1 for rule in rules if not rule["IsEgress"] and rule.get("CidrIpv4") == "0.0.0.0/0")


def test_a_security_group_opened_by_hundreds_of_rules_is_closed_and_an_undo_refused_after_stays_small(
    client, runtime, raised_rule_quota
):
    """The handler closes 250 rules from one event; the attacker opens them again, and a
    person presses Undo, which is refused (the group changed): the refusal names what
    changed without copying the rules, and the incident stays within its item."""
    detail, permissions = _open_ssh_in_hundreds_of_rules(250)
    event = envelope(detail)
    assert len(json.dumps(event)) < EVENTBRIDGE_LIMIT  # an event EventBridge delivers
    group = detail["requestParameters"]["groupId"]
    assert _open_rules(group) == 250

    payload = client.lambda_.invoke("respond_to_cloudtrail", event).payload
    (incident,) = payload["incidents"]
    assert (incident["playbook"], incident["state"]) == ("ec2-security-group-public-admin-ingress", "remediated")
    assert _open_rules(group) == 0
    stored = runtime.incidents.get(incident["id"])
    assert len(stored.plan[0].params["ranges"]) == 250 and len(stored.steps[0].before["OpenRules"]) == 250

    boto3.client("ec2", region_name=REGION).authorize_security_group_ingress(GroupId=group, IpPermissions=permissions)
    body, headers = signed_click("undo", shown(stored))
    assert client.http.post("/slack/interactions", headers=headers, body=body).status_code == 200
    refused = runtime.incidents.get(incident["id"])
    assert refused.state is State.REMEDIATED and refused.history[-1].what == "refuse_undo"
    assert "(OpenRules: [] -> (list of 250 items)); nothing was changed" in refused.history[-1].detail
    assert _stored_size(boto3.client("dynamodb"), DEPLOYED_TABLE, incident["id"]) <= MAX_ITEM_BYTES


# -- what cannot be kept fails in the open -----------------------------------------------------


def _noted(times: int) -> str:
    """A playbook that notes a key policy's text `times` times; `notify.note` keeps its text
    as its parameter, its snapshot and the state it leaves."""
    head = """\
id: key-policy-noted
title: Key policy noted
severity: low
when: {source: kms.amazonaws.com, events: [PutKeyPolicy]}
mode: auto
steps:
"""
    return head + "  - {action: notify.note, with: {text: requestParameters.policy}}\n" * times


def _noise(size: int) -> str:
    """Text that does not compress (as an attacker may choose it)."""
    return base64.b64encode(os.urandom(size * 3 // 4)).decode()


def test_a_plan_too_large_to_keep_is_a_failed_incident_people_are_told_about_not_a_lambda_retry(
    client, runtime, slack_stub, tmp_path, restart
):
    (tmp_path / "noted.yaml").write_text(_noted(4))
    runtime = restart(Catalog.load([tmp_path]))
    event = envelope(record("PutKeyPolicy", "kms.amazonaws.com", {"keyId": "k-1", "policy": _noise(100_000)}))
    assert len(json.dumps(event)) < EVENTBRIDGE_LIMIT

    payload = client.lambda_.invoke("respond_to_cloudtrail", event).payload  # no exception: no retry
    (incident,) = payload["incidents"]
    assert incident["state"] == "failed" and incident["duplicate"] is False
    stored = runtime.incidents.get(incident["id"])
    assert stored.plan == [] and stored.steps == []
    assert stored.error.startswith("nothing was done: the plan is too large to keep (incident ")
    assert "one incident may take at most 300,000" in stored.error
    (message,) = slack_stub.messages.values()
    assert "could not finish" in message.text and "too large to keep" in json.dumps(message.blocks)


def test_a_snapshot_too_large_to_keep_fails_its_step_before_the_change(lifecycle, dynamo_store, tmp_path):
    """`notify.note` keeps its text as its snapshot: a plan that fits, with its snapshot
    beside it, does not. The step fails before it runs and says why; the incident is kept."""
    (tmp_path / "noted.yaml").write_text(_noted(1))
    responder = _responder(lifecycle, Catalog.load([tmp_path]))
    policy = _noise(200_000)
    event = CloudTrailEvent.from_record(record("PutKeyPolicy", "kms.amazonaws.com", {"keyId": "k-1", "policy": policy}))
    _, (outcome,) = responder.respond(event)
    failed = dynamo_store.get(outcome.incident.id)
    assert failed.state is State.FAILED and failed.plan[0].params["text"] == policy
    (step,) = failed.steps
    assert step.status is StepStatus.FAILED and step.before is None and step.note is None
    assert step.error.startswith("the resource's state is too large to keep for undo (incident ")
    assert step.error.endswith("): nothing was changed")


def test_a_state_left_too_large_to_keep_is_recorded_without_it_and_undo_says_why(lifecycle, dynamo_store, tmp_path):
    """`notify.note` leaves its text as the state after its change: here the plan and the
    snapshot fit, and the state left beside them does not. The change is made and recorded
    (never reported as failed when it was done), without that state; undo refuses, saying why."""
    (tmp_path / "noted.yaml").write_text(_noted(1))
    responder = _responder(lifecycle, Catalog.load([tmp_path]))
    event = CloudTrailEvent.from_record(
        record("PutKeyPolicy", "kms.amazonaws.com", {"keyId": "k-1", "policy": _noise(140_000)})
    )
    _, (outcome,) = responder.respond(event)
    done = dynamo_store.get(outcome.incident.id)
    assert done.state is State.REMEDIATED
    (step,) = done.steps
    assert step.status is StepStatus.APPLIED and step.before is not None and step.after is None
    assert step.note == "the state it left was too large to keep, so it cannot be undone"
    refused = lifecycle.undo(done.id, "slack:U1")
    assert refused.state is State.REMEDIATED
    assert refused.history[-1].detail == (
        "undo of step 1 (notify.note): the state it left was not kept (too large), so whether the resource "
        "changed since cannot be told; nothing was changed"
    )


def test_a_write_dynamodb_still_refuses_for_its_size_is_answered_failed_with_an_error_line(
    client, runtime, make_trail, instant_backoff, caplog, restart
):
    """Should DynamoDB count an item larger than trailguard does, and refuse even the
    incident without its plan: the handler says so in its answer and its log line, and
    does not raise (Lambda's retries could not make it fit)."""
    from tests.conftest import Faults

    faults = Faults()
    runtime = restart(clients=recording_clients(faults, member_role=runtime.settings.member_role))
    too_large = "Item size has exceeded the maximum allowed size"
    faults.add("dynamodb", "PutItem", "ValidationException", message=too_large, times=2)
    cloudtrail = make_trail("main")
    event = envelope(record("StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}))

    payload = client.lambda_.invoke("respond_to_cloudtrail", event).payload
    assert payload["status"] == "failed" and payload["eventID"] == event["detail"]["eventID"]
    assert f"(DynamoDB refused it: {too_large})" in payload["reason"]
    lines = [json.loads(JsonLines().format(r)) for r in caplog.records]
    (line,) = [line for line in lines if line["message"] == "incident too large"]
    assert line["eventName"] == "StopLogging" and line["error"] == payload["reason"]
    assert cloudtrail.get_trail_status(Name="main")["IsLogging"] is False  # nothing done that is not recorded
