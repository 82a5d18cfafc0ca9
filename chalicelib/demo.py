"""`make demo`: an attacker against a local AWS account, and trailguard answering.

Everything runs in this process on moto: no AWS account, no network. Each attacker call
is a real API call against moto; its CloudTrail record is built from that call's request
and response, wrapped as EventBridge delivers it, and handed to the app's own Lambda
handler through Chalice's test client. What trailguard did is then read back from moto.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from chalicelib.events import eventbridge_envelope

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
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


def _cloudtrail_record(event_name: str, source: str, request: dict[str, Any], response: dict[str, Any] | None) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "eventVersion": "1.09",
        "userIdentity": ATTACKER,
        "eventTime": now,
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.23",
        "userAgent": "aws-cli/2.15.0 md/demo",
        "requestParameters": request,
        "responseElements": response,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


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
    """Play the scenario; 0 when trailguard put every resource back, 1 otherwise."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_DEFAULT_REGION=REGION)
    os.environ.setdefault("TRAILGUARD_LOG_LEVEL", "WARNING")  # the story is told below, not in JSON logs
    import boto3
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib.notify import describe

    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    color = sys.stdout.isatty()

    def style(text: str, **kwargs: Any) -> str:
        return click.style(text, **kwargs) if color else text

    with mock_aws():
        import app as chalice_app

        chalice_app.runtime.reset()  # a fresh container, inside this moto

        clients: dict[str, Any] = {s: boto3.client(s, region_name=REGION) for s in ("s3", "cloudtrail", "kms")}
        click.echo(style("trailguard demo", bold=True) + ": an attacker in a local AWS account (moto, in this process)")
        click.echo("no AWS account, no network; every event goes through the app's own Lambda handler\n")
        clients.update(_set_up(clients))
        click.echo("account 123456789012 has: trail org-trail (logging), KMS keys for payments and backups,")
        click.echo("and a private bucket customer-data\n")
        rows: list[tuple[str, str, str, str, str]] = []
        ok = True
        with Client(chalice_app.app) as client:
            for number, scene in enumerate(_scenes(), 1):
                event_name, source, request, response = scene.attack(clients)
                attacked = scene.read_state(clients)
                click.echo(style(f"{number}. mallory: {scene.title}", fg="red", bold=True)
                           + f"  ({source.split('.')[0]}:{event_name})")
                click.echo(f"   state after the attack: {attacked}")
                envelope = eventbridge_envelope(_cloudtrail_record(event_name, source, request, response), str(uuid.uuid4()))
                result = client.lambda_.invoke("respond_to_cloudtrail", envelope).payload
                incidents = result.get("incidents", [])
                if not incidents:
                    click.echo(style(f"   no playbook answered ({result})", fg="yellow"))
                    ok = False
                    continue
                store = chalice_app.runtime.store
                for summary in incidents:
                    incident = store.get(summary["id"])
                    assert incident is not None, f"incident {summary['id']} was not recorded"
                    click.echo(f"   playbook {incident.playbook_id} ({incident.mode})")
                    now = scene.read_state(clients)
                    good = now == scene.expected_after and incident.state.value == "remediated"
                    ok = ok and good
                    mark = style("ok", fg="green") if good else style("UNEXPECTED", fg="red", bold=True)
                    click.echo(f"   state now: {now}  [{mark}]")
                    click.echo("   message:")
                    for line in describe(incident).splitlines():
                        click.echo("     | " + line)
                    rows.append((incident.id, incident.playbook_id, incident.mode, incident.state.value, now))
                click.echo()
        click.echo(style("summary", bold=True))
        header = ("INCIDENT", "PLAYBOOK", "MODE", "STATE", "RESOURCE NOW")
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        click.echo()
        click.echo(style("every resource is back as it was" if ok else "SOMETHING IS NOT AS EXPECTED",
                         fg="green" if ok else "red", bold=True))
    return 0 if ok else 1
