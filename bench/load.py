"""A burst of distinct events and duplicate deliveries through the rules' handler, in threads.

    .venv/bin/python -m bench.load [--events 10000] [--duplicates 1000] [--threads 8]

moto in-process stands in for AWS, with the incidents in DynamoDB as deployed; Slack is
off (incidents are logged). Nine in ten events are console sign-ins without MFA (notify
mode: an incident, no AWS call), one in ten a StopLogging (auto mode: a remediation).
The duplicates are copies of random events, shuffled in among them, as EventBridge's
at-least-once delivery makes them. tests/test_load.py runs it and checks the counts.

DynamoDB makes a conditional write on one item atomic; moto checks the condition and
writes without a lock, so two threads can both pass it (seen: 1,001 incidents opened for
1,000 events, about one run in five). `serialised_dynamodb_writes` gives moto that lock, so
the counts test trailguard rather than moto.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.common import ROOT, integrity_key, moto_in_process, serialised_dynamodb_writes

TABLE = "trailguard-load"
REGION = "us-east-1"
ACCOUNT = "123456789012"
USER = {
    "type": "IAMUser",
    "principalId": "AIDALOAD",
    "arn": f"arn:aws:iam::{ACCOUNT}:user/load",
    "accountId": ACCOUNT,
    "userName": "load",
}


@dataclass
class LoadResult:
    distinct: int
    duplicates: int
    threads: int
    seconds: float = 0.0
    deliveries_per_second: float = 0.0
    incidents_in_table: int = 0
    duplicates_collapsed: int = 0
    opened: int = 0
    """Deliveries that opened an incident (each distinct event exactly once)."""
    lost: list[str] = field(default_factory=list)
    extra: int = 0
    errors: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)


def _events(distinct: int) -> list[dict[str, Any]]:
    from chalicelib.events.synthetic import api_call_record, eventbridge_envelope

    events = []
    for number in range(distinct):
        if number % 10 == 0:
            record = api_call_record(
                "StopLogging", "cloudtrail.amazonaws.com", {"name": "main"}, identity=USER, region=REGION
            )
        else:
            record = api_call_record(
                "ConsoleLogin",
                "signin.amazonaws.com",
                None,
                identity=USER,
                region=REGION,
                eventType="AwsConsoleSignIn",
                responseElements={"ConsoleLogin": "Success"},
                additionalEventData={"MFAUsed": "No", "LoginTo": "https://console.aws.amazon.com"},
            )
        events.append(eventbridge_envelope(record, str(uuid.uuid4())))
    return events


def burst(distinct: int, duplicates: int, threads: int = 8, seed: int = 7) -> LoadResult:
    import boto3

    from chalicelib.incidents.model import incident_id
    from chalicelib.playbooks.catalog import Catalog
    from chalicelib.runtime import Runtime
    from chalicelib.settings import Settings
    from trailguard.bootstrap import ensure_table

    result = LoadResult(distinct, duplicates, threads)
    with moto_in_process(), serialised_dynamodb_writes():
        ensure_table(boto3.client("dynamodb", region_name=REGION), TABLE)
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="load-trail-logs")
        boto3.client("cloudtrail", region_name=REGION).create_trail(Name="main", S3BucketName="load-trail-logs")
        runtime = Runtime(
            Settings(table=TABLE, integrity_key=integrity_key(), log_level="ERROR", sweep_regions=frozenset({REGION})),
            Catalog.load([ROOT / "playbooks"], with_tests=False),
        )
        events = _events(distinct)
        rng = random.Random(seed)
        deliveries = events + [rng.choice(events) for _ in range(duplicates)]
        rng.shuffle(deliveries)
        runtime.event_handler.handle(_events(1)[0])  # a warm container: clients and the catalog made once
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            answers = list(pool.map(_deliver(runtime), deliveries))
        result.seconds = round(time.perf_counter() - started, 2)
        result.deliveries_per_second = round(len(deliveries) / result.seconds, 1)
        result.errors = [answer for answer in answers if isinstance(answer, str)][:5]
        outcomes = [o for answer in answers if isinstance(answer, dict) for o in answer.get("incidents", [])]
        result.duplicates_collapsed = sum(1 for o in outcomes if o["duplicate"])
        result.opened = sum(1 for o in outcomes if not o["duplicate"])
        expected = {incident_id(e["detail"]["eventID"], _playbook(e)) for e in events}
        stored = _incidents(runtime)
        result.incidents_in_table = len(stored)
        result.lost = sorted(expected - set(stored))[:5]
        result.extra = len(set(stored) - expected) - 1  # the warm-up event's incident
        result.states = dict(Counter(stored[i] for i in expected if i in stored))
    return result


def _playbook(event: dict[str, Any]) -> str:
    return "cloudtrail-stop-logging" if event["detail"]["eventName"] == "StopLogging" else "console-login-without-mfa"


def _deliver(runtime: Any) -> Any:
    def deliver(event: dict[str, Any]) -> dict[str, Any] | str:
        try:
            answer: dict[str, Any] = runtime.event_handler.handle(event)
            return answer
        except Exception as error:
            return f"{type(error).__name__}: {error}"

    return deliver


def _incidents(runtime: Any) -> dict[str, str]:
    """Every incident in the table, by id, with its state (a full scan, paginated)."""
    found: dict[str, str] = {}
    client = runtime.clients.home_client("dynamodb")
    pages = client.get_paginator("scan").paginate(
        TableName=TABLE, ProjectionExpression="pk, #state", ExpressionAttributeNames={"#state": "state"}
    )
    for page in pages:
        for item in page["Items"]:
            if item["pk"]["S"].startswith("inc-"):
                found[item["pk"]["S"]] = item["state"]["S"]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--duplicates", type=int, default=1_000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    result = burst(args.events, args.duplicates, args.threads)
    print(json.dumps(asdict(result), indent=2))
    return 0 if not (result.lost or result.errors or result.extra) else 1


if __name__ == "__main__":
    raise SystemExit(main())
