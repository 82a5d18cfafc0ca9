"""`make demo`: an attacker against a local AWS account, and trailguard answering.

Everything runs on this machine: AWS is moto (in this process), Slack is the local Slack
Web API stub (on 127.0.0.1). Each attacker call is a real API call against moto; its
CloudTrail record is built from that call's request and response, wrapped as EventBridge
delivers it, and handed to the app's own Lambda handler through Chalice's test client.
What trailguard did is read back from moto, and its Slack message from the stub. Then the
on-call engineer presses Undo, with a request signed as Slack signs it, on the app's own
`/slack/interactions` route; so does someone who is not an approver, and a forger.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from chalicelib.events import api_call_record, eventbridge_envelope

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
SIGNING_SECRET = "trailguard-demo-signing-secret"
ON_CALL = "U0ONCALL"
CHANNEL = "#security-alerts"
ATTACKER = {
    "type": "IAMUser",
    "principalId": "AIDADEMOATTACKER",
    "arn": f"arn:aws:iam::{ACCOUNT}:user/mallory",
    "accountId": ACCOUNT,
    "accessKeyId": "AKIADEMOATTACKER",
    "userName": "mallory",
}


@dataclass
class Scene:
    """One attacker move: the call, the resource's state to show, the state expected after."""

    title: str
    attack: Callable[[dict[str, Any]], tuple[str, str, dict[str, Any], dict[str, Any] | None]]
    read_state: Callable[[dict[str, Any]], str]
    expected_after: str


def _set_up(clients: dict[str, Any]) -> dict[str, Any]:
    s3, cloudtrail, kms = clients["s3"], clients["cloudtrail"], clients["kms"]
    s3.create_bucket(Bucket="org-trail-logs")
    cloudtrail.create_trail(Name="org-trail", S3BucketName="org-trail-logs", IsMultiRegionTrail=True)
    cloudtrail.start_logging(Name="org-trail")
    payments_key = kms.create_key(Description="payments data")["KeyMetadata"]["KeyId"]
    backups_key = kms.create_key(Description="backups")["KeyMetadata"]["KeyId"]
    s3.create_bucket(Bucket="customer-data")
    return {"payments_key": payments_key, "backups_key": backups_key}


def _scenes() -> list[Scene]:
    def stop_logging(c: dict[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, Any] | None]:
        c["cloudtrail"].stop_logging(Name="org-trail")
        return "StopLogging", "cloudtrail.amazonaws.com", {"name": "org-trail"}, None

    def disable_key(c: dict[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, Any] | None]:
        c["kms"].disable_key(KeyId=c["payments_key"])
        return "DisableKey", "kms.amazonaws.com", {"keyId": c["payments_key"]}, None

    def schedule_deletion(c: dict[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, Any] | None]:
        answer = c["kms"].schedule_key_deletion(KeyId=c["backups_key"], PendingWindowInDays=7)
        response = {"keyId": answer["KeyId"], "deletionDate": answer["DeletionDate"].strftime("%b %d, %Y %I:%M:%S %p")}
        return "ScheduleKeyDeletion", "kms.amazonaws.com", {"keyId": c["backups_key"], "pendingWindowInDays": 7}, response

    def public_acl(c: dict[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, Any] | None]:
        c["s3"].put_bucket_acl(Bucket="customer-data", ACL="public-read")
        request = {"bucketName": "customer-data", "Host": "customer-data.s3.amazonaws.com", "acl": [""],
                   "x-amz-acl": ["public-read"]}
        return "PutBucketAcl", "s3.amazonaws.com", request, None

    def trail_state(c: dict[str, Any]) -> str:
        return "logging" if c["cloudtrail"].get_trail_status(Name="org-trail")["IsLogging"] else "NOT logging"

    def key_state(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda c: c["kms"].describe_key(KeyId=c[key])["KeyMetadata"]["KeyState"]

    def bucket_state(c: dict[str, Any]) -> str:
        grants = c["s3"].get_bucket_acl(Bucket="customer-data")["Grants"]
        public = [g for g in grants if "AllUsers" in g["Grantee"].get("URI", "")]
        return "PUBLIC (AllUsers can read)" if public else "private"

    return [
        Scene("stop the organization's trail", stop_logging, trail_state, "logging"),
        Scene("disable the payments key", disable_key, key_state("payments_key"), "Enabled"),
        Scene("schedule the backups key for deletion", schedule_deletion, key_state("backups_key"), "Enabled"),
        Scene("make a customer bucket public-read", public_acl, bucket_state, "private"),
    ]


def run_demo() -> int:
    """Play the scenario; 0 when every resource and incident ends as the story says, 1 otherwise."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_DEFAULT_REGION=REGION)
    import boto3
    from moto import mock_aws

    from chalicelib.slack.stub import SlackStub

    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    with mock_aws(), SlackStub() as slack:
        import app as chalice_app

        runtime = chalice_app.runtime
        saved, level = runtime.settings, logging.getLogger("trailguard").level
        runtime.settings = dataclasses.replace(
            saved, slack_token=slack.token, slack_signing_secret=SIGNING_SECRET, slack_channel=CHANNEL,
            slack_approvers=frozenset({ON_CALL}), slack_base_url=slack.base_url, account_names={ACCOUNT: "demo"})
        runtime.reset()  # a fresh container, inside this moto, telling the local Slack
        logging.getLogger("trailguard").setLevel(logging.ERROR)  # the story is told below, not in JSON logs
        try:
            clients: dict[str, Any] = {s: boto3.client(s, region_name=REGION) for s in ("s3", "cloudtrail", "kms")}
            return _Story(chalice_app, clients, slack).play()
        finally:
            runtime.settings = saved
            runtime.reset()
            logging.getLogger("trailguard").setLevel(level)


class _Story:
    def __init__(self, chalice_app: Any, clients: dict[str, Any], slack: Any) -> None:
        self.app = chalice_app
        self.clients = clients
        self.slack = slack
        self.color = sys.stdout.isatty()
        self.ok = True
        self.rows: list[tuple[str, str, str, str, str]] = []

    def style(self, text: str, **kwargs: Any) -> str:
        return click.style(text, **kwargs) if self.color else text

    def check(self, good: bool) -> str:
        self.ok = self.ok and good
        return self.style("ok", fg="green") if good else self.style("UNEXPECTED", fg="red", bold=True)

    def play(self) -> int:
        from chalice.test import Client

        click.echo(self.style("trailguard demo", bold=True) + ": an attacker in a local AWS account (moto, in this "
                   "process), Slack on a local stub")
        click.echo("no AWS account, no Slack workspace, no network; every event goes through the app's own Lambda "
                   "handler\n")
        self.clients.update(_set_up(self.clients))
        click.echo("account 123456789012 has: trail org-trail (logging), KMS keys for payments and backups,")
        click.echo(f"and a private bucket customer-data; trailguard posts to {CHANNEL}, and {ON_CALL} is on call\n")
        scenes = _scenes()
        opened: list[tuple[Scene, str]] = []
        with Client(self.app.app) as client:
            for number, scene in enumerate(scenes, 1):
                opened += [(scene, incident_id) for incident_id in self.attack(client, number, scene)]
            key_scene, key_incident = opened[1]
            trail_scene, trail_incident = opened[0]
            self.press(client, len(scenes) + 1, "the on-call engineer: the payments key is being retired on purpose; "
                       "presses Undo", "undo", key_incident, ON_CALL, key_scene, "Disabled", "undone")
            self.press(client, len(scenes) + 2, "a developer who is not an approver presses Undo on the trail",
                       "undo", trail_incident, "U0DEVELOPER", trail_scene, "logging", "remediated")
            self.press(client, len(scenes) + 3, "a forged request: Undo on the trail, signed with a guessed secret",
                       "undo", trail_incident, ON_CALL, trail_scene, "logging", "remediated", secret="guessed")
        store = self.app.runtime.store
        for scene, incident_id in opened:
            incident = store.get(incident_id)
            assert incident is not None
            self.rows.append((incident.id, incident.playbook_id, incident.mode, incident.state.value,
                              scene.read_state(self.clients)))
        self.summary()
        return 0 if self.ok else 1

    def attack(self, client: Any, number: int, scene: Scene) -> list[str]:
        event_name, source, request, response = scene.attack(self.clients)
        click.echo(self.style(f"{number}. mallory: {scene.title}", fg="red", bold=True)
                   + f"  ({source.split('.')[0]}:{event_name})")
        click.echo(f"   state after the attack: {scene.read_state(self.clients)}")
        record = api_call_record(event_name, source, request, response=response, identity=ATTACKER, region=REGION,
                                 source_ip="198.51.100.23", user_agent="aws-cli/2.15.0 md/demo",
                                 eventCategory="Management")
        envelope = eventbridge_envelope(record, str(uuid.uuid4()))
        result = client.lambda_.invoke("respond_to_cloudtrail", envelope).payload
        incidents = [summary["id"] for summary in result.get("incidents", [])]
        if not incidents:
            click.echo(self.style(f"   no playbook answered ({result})", fg="yellow"))
            self.ok = False
        for incident_id in incidents:
            incident = self.app.runtime.store.get(incident_id)
            assert incident is not None, f"incident {incident_id} was not recorded"
            click.echo(f"   playbook {incident.playbook_id} ({incident.mode})")
            now = scene.read_state(self.clients)
            good = now == scene.expected_after and incident.state.value == "remediated"
            click.echo(f"   state now: {now}  [{self.check(good)}]")
            self.show_message(incident)
        click.echo()
        return incidents

    def press(self, client: Any, number: int, title: str, transition: str, incident_id: str, user: str,
              scene: Scene, expected_resource: str, expected_state: str, secret: str = SIGNING_SECRET) -> None:
        from chalicelib.slack.stub import signed_click

        click.echo(self.style(f"{number}. {title}", fg="cyan", bold=True))
        told = len(self.slack.ephemeral)
        body, headers = signed_click(transition, incident_id, user=user, secret=secret,
                                     response_url=self.slack.response_url(str(number)))
        response = client.http.post("/slack/interactions", headers=headers, body=body)
        click.echo(f"   POST /slack/interactions ({transition}, by {user}) -> {response.status_code}")
        for answer in self.slack.ephemeral[told:]:
            click.echo(f"   Slack, only to {user}: {answer['text']}")
        incident = self.app.runtime.store.get(incident_id)
        assert incident is not None
        now = scene.read_state(self.clients)
        good = now == expected_resource and incident.state.value == expected_state
        click.echo(f"   incident {incident.state.value}, state now: {now}  [{self.check(good)}]")
        if transition == "undo" and response.status_code == 200 and user == ON_CALL:
            self.show_message(incident)
        click.echo()

    def show_message(self, incident: Any) -> None:
        """The incident's Slack message, as the stub holds it, in a few plain lines."""
        reference = incident.notification or {}
        message = self.slack.messages.get((reference.get("channel"), reference.get("ts")))
        if message is None:
            click.echo(self.style(f"   no Slack message ({reference.get('error')})", fg="yellow"))
            self.ok = False
            return
        click.echo(f"   Slack, {CHANNEL}:")
        for line in slack_text(message.blocks):
            click.echo("     | " + line)

    def summary(self) -> None:
        click.echo(self.style("summary", bold=True))
        header = ("INCIDENT", "PLAYBOOK", "MODE", "STATE", "RESOURCE NOW")
        widths = [max(len(str(row[i])) for row in [header, *self.rows]) for i in range(len(header))]
        for row in [header, *self.rows]:
            click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        click.echo()
        click.echo(self.style("every resource and incident is as the story says" if self.ok
                              else "SOMETHING IS NOT AS EXPECTED", fg="green" if self.ok else "red", bold=True))


def slack_text(blocks: list[dict[str, Any]]) -> list[str]:
    """A Block Kit message as plain lines: what a person reads in Slack, without the styling."""
    lines: list[str] = []
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            lines.append(block["text"]["text"])
        elif kind == "section" and block.get("text"):
            lines += block["text"]["text"].splitlines()
        elif kind == "section":
            lines.append("   ".join(field["text"].replace("\n", ": ") for field in block.get("fields", [])))
        elif kind == "actions":
            lines.append("  ".join(f"[ {element['text']['text']} ]" for element in block["elements"]))
        elif kind == "context":
            lines += [element["text"] for element in block["elements"]]
    return [line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") for line in lines]
