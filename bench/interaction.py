"""How fast `POST /slack/interactions` answers a click, in-process, against Slack's 3 seconds.

Signed requests (slack_sdk's SignatureVerifier, as Slack signs them) go through
chalice.test.Client to the app's own route, as deployed: incidents in DynamoDB, the work
handed to the worker Lambda by an asynchronous invoke (both in moto, in-process). Each
Approve lands on a fresh proposal, so every answer includes the whole decision: the
signature, the payload, the incident read, the approver check, the conditional write and
the hand-over. An unauthorized click and a forged request show the refusal paths.

The baseline, in the same run and through the same client, is a route that only returns
200: what Chalice's test client costs by itself. Time inside moto (DynamoDB, Lambda) is
measured separately, as in `handler`, so "ours" is trailguard's own share.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import zipfile
from pathlib import Path

from bench.common import bench_record, integrity_key, median, moto_in_process
from trailguard.local.slack import signed_click

CLICKS = 300
TARGET_MEDIAN_MS = 50.0
SLACK_LIMIT_MS = 3000.0
SECRET = "bench-signing-secret"
APPROVER = "U0APPROVER"
WORKER = "trailguard-bench-slack_worker"
PLAYBOOK = """\
id: bench-approve
title: Trail stopped
severity: high
when: {source: cloudtrail.amazonaws.com, events: [StopLogging]}
mode: approve
steps:
  - action: cloudtrail.start_logging
    with: {trail: requestParameters.name}
"""


def run(clicks: int = CLICKS) -> dict:

    import boto3
    from chalice import Chalice
    from chalice.test import Client

    import app as chalice_app
    from chalicelib.events.record import CloudTrailEvent
    from chalicelib.playbooks.catalog import Catalog
    from trailguard.bootstrap import ensure_table
    from trailguard.local.app import container, running
    from trailguard.local.slack import SlackStub

    floor_app = Chalice(app_name="floor")

    @floor_app.route("/slack/interactions", methods=["POST"], content_types=["application/x-www-form-urlencoded"])
    def floor() -> dict:
        return {}

    with (
        moto_in_process({"lambda": {"use_docker": False}}) as in_moto,
        SlackStub() as slack,
        tempfile.TemporaryDirectory() as playbooks,
    ):
        ensure_table(boto3.client("dynamodb"), "trailguard-bench")
        _worker_function(boto3)
        (Path(playbooks) / "bench.yaml").write_text(PLAYBOOK)
        runtime = container(
            Catalog.load([Path(playbooks)]),
            table="trailguard-bench",
            integrity_key=integrity_key(),
            log_level="ERROR",  # each refusal logs a warning: not measured
            slack_token=slack.token,
            slack_signing_secret=SECRET,
            slack_channel="#bench",
            slack_approvers=frozenset({APPROVER}),
            slack_base_url=slack.base_url,
            slack_worker=WORKER,
        )
        with running(runtime):
            proposals = [_propose(runtime, CloudTrailEvent) for _ in range(clicks + 5)]
            with Client(chalice_app.app) as client, Client(floor_app) as floor_client:
                approve = _measure(client, in_moto, [("approve", p, APPROVER) for p in proposals], 200)
                strangers = [("approve", proposals[0], "U0STRANGER")] * (clicks + 5)
                stranger = _measure(client, in_moto, strangers, 200)
                forged = _measure(
                    client, in_moto, [("approve", proposals[0], APPROVER)] * (clicks + 5), 401, secret="forged"
                )
                baseline = _measure(floor_client, in_moto, [("approve", proposals[0], APPROVER)] * (clicks + 5), 200)
            states = {runtime.incidents.get(p.split(":")[0]).state.value for p in proposals}
            assert states == {"remediating"}, states  # decided, and handed to the worker
    return {
        "clicks": clicks,
        "approve": approve,
        "not_approver": stranger,
        "forged": forged,
        "empty_route": baseline,
        "ratio_to_empty_route": round(approve["median_ms"] / baseline["median_ms"], 2),
        "target_median_ms": TARGET_MEDIAN_MS,
        "met": approve["median_ms"] <= TARGET_MEDIAN_MS and approve["max_ms"] < SLACK_LIMIT_MS,
    }


def _propose(runtime, event_class) -> str:
    """A fresh proposal; the value of the Approve button on its message (`inc-…:N`)."""
    _, [outcome] = runtime.responder.respond(event_class.from_record(bench_record("StopLogging")))
    return f"{outcome.incident.id}:{outcome.incident.decisions}"


def _measure(client, in_moto, clicks, expected_status, secret=SECRET) -> dict:
    totals, ours, first = [], [], 0.0
    for number, (transition, incident, user) in enumerate(clicks):
        body, headers = signed_click(transition, incident, user=user, secret=secret)
        in_moto[0] = 0.0
        started = time.perf_counter()
        response = client.http.post("/slack/interactions", headers=headers, body=body)
        elapsed = time.perf_counter() - started
        assert response.status_code == expected_status, (response.status_code, response.body)
        if number == 0:
            first = elapsed
        if number < 5:
            continue  # the first call creates clients and reads the signing secret: a new container's cost
        totals.append(elapsed)
        ours.append(elapsed - in_moto[0])
    return {
        "median_ms": round(median(totals) * 1000, 2),
        "max_ms": round(max(totals) * 1000, 2),
        "ours_median_ms": round(median(ours) * 1000, 2),
        "first_ms": round(first * 1000, 2),
    }


def _worker_function(boto3) -> None:
    role = boto3.client("iam").create_role(RoleName="bench-worker", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def slack_worker(event, context):\n    return event\n")
    boto3.client("lambda").create_function(
        FunctionName=WORKER,
        Runtime="python3.12",
        Role=role,
        Handler="app.slack_worker",
        Code={"ZipFile": code.getvalue()},
    )


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
