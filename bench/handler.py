"""Per-event latency through the Chalice handler, in-process, against moto (also in-process).

A matched StopLogging goes the whole way: envelope check, guards, index, plan, the
incident opened in DynamoDB, the snapshot, StartLogging, the result written. Time spent
inside moto (AWS's stand-in: STS, CloudTrail, DynamoDB) is measured separately by timing
moto's request handler, so "ours" is trailguard's own share. A call no playbook names and
a call skipped by a guard show the cost of the fast paths.
"""

from __future__ import annotations

import time
import uuid

from bench.common import bench_record, integrity_key, median, moto_in_process, p99

EVENTS = 300


def run(events: int = EVENTS) -> dict:
    import boto3
    from chalice.test import Client

    import app as chalice_app
    from chalicelib.events.synthetic import eventbridge_envelope
    from trailguard.bootstrap import ensure_table
    from trailguard.local.app import container, running

    with moto_in_process() as in_moto:
        ensure_table(boto3.client("dynamodb"), "trailguard-bench")
        key = integrity_key()
        with running(container(table="trailguard-bench", integrity_key=key)):
            boto3.client("s3").create_bucket(Bucket="bench-trail-logs")
            cloudtrail = boto3.client("cloudtrail")
            cloudtrail.create_trail(Name="bench", S3BucketName="bench-trail-logs")
            with Client(chalice_app.app) as client:
                matched = _measure(client, cloudtrail, events, in_moto, "StopLogging", eventbridge_envelope)
                unknown = _measure(client, None, events, in_moto, "DescribeTrails", eventbridge_envelope)
                failed = _measure(
                    client, None, events, in_moto, "StopLogging", eventbridge_envelope, errorCode="AccessDenied"
                )
    return {"events": events, "matched": matched, "not_named": unknown, "guard_skipped": failed}


def _measure(client, cloudtrail, count, in_moto, name, wrap, **fields) -> dict:
    totals, ours = [], []
    for number in range(count + 5):
        if cloudtrail is not None:
            cloudtrail.stop_logging(Name="bench")
        event = wrap(bench_record(name, **fields), str(uuid.uuid4()))
        in_moto[0] = 0.0
        started = time.perf_counter()
        result = client.lambda_.invoke("respond_to_cloudtrail", event).payload
        elapsed = time.perf_counter() - started
        if number < 5:
            continue  # the first calls create clients: that is cold start, measured elsewhere
        if cloudtrail is not None:
            assert result["incidents"][0]["state"] == "remediated", result
        totals.append(elapsed)
        ours.append(elapsed - in_moto[0])
    return {
        "median_ms": round(median(totals) * 1000, 2),
        "p99_ms": round(p99(totals) * 1000, 2),
        "ours_median_ms": round(median(ours) * 1000, 2),
        "ours_p99_ms": round(p99(ours) * 1000, 2),
    }
