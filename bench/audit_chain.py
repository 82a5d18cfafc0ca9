"""The audit chain's figures, on moto's server (real HTTP on 127.0.0.1, as the demo runs):

- the heartbeat: what one run costs per account and region (tag the canary, note the send,
  judge the last beats), and the detection time: from the last event an account and region
  sent to the heartbeat's incident, for a stop at any moment of the interval (a simulated
  clock: CloudTrail's own delivery delay, minutes in AWS, is not something moto can show);
- the organization-wide sweep: seconds per member account (one trail and one region each,
  through the member role), with 1 and with 4 accounts looked at at once.

`python -m bench.audit_chain [--accounts N] [--write]`: prints the section; --write puts it
into docs/benchmarks.md between its markers (this section only; `make bench` writes it too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
BEGIN, END = "<!-- audit-chain: begin (python -m bench.audit_chain --write) -->", "<!-- audit-chain: end -->"
INTERVAL, GRACE = dt.timedelta(minutes=5), dt.timedelta(minutes=15)
ACCOUNTS = 20
"""Member accounts the sweep's figure is measured over."""


def _stage(local: Any, places: list[tuple[str, str]], clock: Any) -> Any:
    from chalicelib.actions.binding import ActionBinder
    from chalicelib.aws.clients import AwsClients
    from chalicelib.incidents.lifecycle import Incidents
    from chalicelib.incidents.store import MemoryStore
    from chalicelib.memory.documents import MemoryDocuments
    from chalicelib.memory.rules import Memory
    from chalicelib.posture.heartbeat import Heartbeat

    store = MemoryStore()
    memory = Memory(MemoryDocuments())
    clients = AwsClients(home_account="123456789012")
    incidents = Incidents(store, ActionBinder(clients, memory), memory=memory, clock=clock)
    return Heartbeat(
        incidents=incidents, clients=clients, places=lambda: places, canary="/trailguard/bench/heartbeat", grace=GRACE
    )


def heartbeat(local: Any, places: int) -> dict[str, float]:
    """Wall-clock cost of a run, and detection times on a simulated clock."""
    from chalicelib.memory import heartbeats

    regions = ["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"]
    where = [("123456789012", regions[i % len(regions)]) for i in range(min(places, len(regions)))]
    now = [dt.datetime(2026, 12, 6, tzinfo=dt.UTC)]
    beat = _stage(local, where, lambda: now[0])
    costs = []
    for _ in range(5):
        started = time.perf_counter()
        beat.run()
        costs.append(time.perf_counter() - started)
    detections = []
    rng = random.Random(18)
    for _ in range(20):
        beat = _stage(local, where[:1], lambda: now[0])
        account, region = where[0]
        stop_at = now[0] + dt.timedelta(minutes=30) + rng.random() * INTERVAL  # events stop at any moment
        while True:
            report = beat.run()
            if report.blind:
                detections.append((now[0] - stop_at).total_seconds() / 60)
                break
            if now[0] < stop_at:  # CloudTrail delivers the beat (within the interval)
                heartbeats.seen(beat.memory, account, region, now[0])
            now[0] += INTERVAL
    return {
        "places": len(where),
        "run_ms_per_place": statistics.median(costs) * 1000 / len(where),
        "detect_min_median": statistics.median(detections),
        "detect_min_max": max(detections),
        "detect_min_min": min(detections),
    }


def sweep(local: Any, accounts: int, workers: int) -> float:
    """Seconds per member account of one organization-wide sweep (one trail each)."""
    import boto3

    from chalicelib.actions.binding import ActionBinder
    from chalicelib.aws.clients import AwsClients
    from chalicelib.incidents.lifecycle import Incidents
    from chalicelib.incidents.store import MemoryStore
    from chalicelib.memory.documents import MemoryDocuments
    from chalicelib.memory.rules import Memory
    from chalicelib.playbooks.catalog import Catalog
    from chalicelib.posture.sweep import Sweep
    from chalicelib.respond.guards import OwnIdentities
    from chalicelib.respond.responder import Responder
    from chalicelib.settings import PROJECT_PLAYBOOKS

    members = [f"{700000000000 + workers * 1000 + n:012d}" for n in range(accounts)]
    sts = boto3.client("sts", region_name="us-east-1")
    for account in members:
        credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/admin", RoleSessionName="setup")[
            "Credentials"
        ]
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name="us-east-1",
        )
        session.client("s3").create_bucket(Bucket=f"trail-logs-{account}")
        cloudtrail = session.client("cloudtrail")
        cloudtrail.create_trail(Name="main", S3BucketName=f"trail-logs-{account}")
        cloudtrail.start_logging(Name="main")
    memory = Memory(MemoryDocuments())
    clients = AwsClients(home_account="123456789012")
    incidents = Incidents(MemoryStore(), ActionBinder(clients, memory), memory=memory)
    catalog = Catalog.load([PROJECT_PLAYBOOKS], with_tests=False)
    responder = Responder(catalog, own=OwnIdentities(member_role="trailguard-remediator"), incidents=incidents)
    run = Sweep(
        catalog=catalog,
        responder=responder,
        incidents=incidents,
        clients=clients,
        account="123456789012",
        regions={"us-east-1"},
        places=lambda: [(account, "us-east-1") for account in members],
        workers=workers,
    )
    started = time.perf_counter()
    report = run.run()
    elapsed = time.perf_counter() - started
    assert report.errors == [] and report.places_looked == accounts, report.to_dict()
    return elapsed / accounts


def section(accounts: int) -> str:
    from trailguard.local.aws import LocalAws, process_environment

    with LocalAws() as local, process_environment(local.environment()):
        beats = heartbeat(local, 4)
        one = sweep(local, accounts, 1)
        four = sweep(local, accounts, 4)
    return "\n".join(
        [
            BEGIN,
            "## The audit chain: heartbeat and organization-wide sweep",
            "",
            "`bench/audit_chain.py` (`python -m bench.audit_chain --write`), on moto's server (HTTP on",
            "127.0.0.1). The heartbeat runs every `TRAILGUARD_HEARTBEAT_MINUTES` (5) and reports an account and",
            "region whose beat has waited `TRAILGUARD_HEARTBEAT_GRACE_MINUTES` (15); a beat is judged at the run",
            "after it, so the detection time is the grace plus at most one interval (here on a simulated clock,",
            "20 stops at random moments; in AWS, add CloudTrail's delivery delay to EventBridge, which the grace",
            "absorbs). The sweep's figure is one run over member accounts with one trail each, through the",
            "member role (an STS session per account), on this 2-core machine.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| heartbeat interval / grace | {INTERVAL.seconds // 60} min / {GRACE.seconds // 60} min |",
            f"| heartbeat run, per account and region | {beats['run_ms_per_place']:.1f} ms |",
            f"| detection time after events stop: median (min, max) | {beats['detect_min_median']:.1f} min "
            f"({beats['detect_min_min']:.1f}, {beats['detect_min_max']:.1f}) |",
            f"| organization-wide sweep, per member account, 1 at a time | {one * 1000:.0f} ms ({accounts} accts) |",
            f"| organization-wide sweep, per member account, 4 at a time | {four * 1000:.0f} ms ({accounts} accts) |",
            f"| 1,000 accounts x 4 regions at 4 at a time, estimated | {four * 4000 / 60:.1f} min "
            "(over `TRAILGUARD_SWEEP_BUDGET_SECONDS`: the next run resumes) |",
            END,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    parser.add_argument("--write", action="store_true")
    options = parser.parse_args()
    text = section(options.accounts)
    print(text)
    if options.write:
        current = DOCS.read_text()
        if BEGIN in current:
            before, rest = current.split(BEGIN, 1)
            after = rest.split(END, 1)[1]
            DOCS.write_text(before + text + after)
        else:
            DOCS.write_text(current.rstrip("\n") + "\n\n" + text + "\n")


if __name__ == "__main__":
    main()
