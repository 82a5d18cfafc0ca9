"""A member account the container has not seen yet: what its first client costs.

Each member account gets its own credentials (AssumeRole), so its own botocore session; a
fresh botocore session also builds a fresh loader, which reads and parses the service's
JSON model again (130-150 ms of CPU for EC2). trailguard's member sessions share the home
session's loader, so only the credentials are new. Measured in one process, against moto
(in-process), CPU seconds (`time.process_time`), the two alternated, medians:

- baseline: a new `botocore.session.get_session()` per account (what trailguard did);
- ours: `AwsClients.client(service, account, region)` for an account not seen yet.

    .venv/bin/python -m bench.member_accounts
"""

from __future__ import annotations

import os
import statistics
import time

ACCOUNTS = 12
SERVICE = "ec2"
TARGET = 0.2
"""A new member account costs at most a fifth of a fresh session's first client."""


def run(accounts: int = ACCOUNTS) -> dict:
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    import boto3
    from botocore.session import get_session
    from moto import mock_aws

    from chalicelib.aws.clients import AwsClients

    fresh, shared = [], []
    with mock_aws():
        clients = AwsClients(member_role="trailguard-member")
        clients.home_client(SERVICE)  # the home session and its loader exist, as in a warm container
        for number in range(accounts):
            started = time.process_time()
            session = boto3.session.Session(botocore_session=get_session())
            session.client(SERVICE, region_name="us-east-1")
            fresh.append(time.process_time() - started)

            started = time.process_time()
            clients.client(SERVICE, f"{100000000000 + number:012d}", "us-east-1")
            shared.append(time.process_time() - started)
    ratio = statistics.median(shared) / statistics.median(fresh)
    return {
        "accounts": accounts,
        "fresh_session_ms": round(statistics.median(fresh) * 1000, 1),
        "shared_loader_ms": round(statistics.median(shared) * 1000, 1),
        "ratio": round(ratio, 3),
        "target": TARGET,
        "met": ratio <= TARGET,
    }


def section(result: dict) -> str:
    """docs/benchmarks.md's section (issue 24)."""
    return f"""## A member account not seen yet

`python -m bench.member_accounts` (part of `make bench`): CPU time of the first `{SERVICE}` client in
{result["accounts"]} member accounts the container has not seen, in one process against moto,
medians. A fresh botocore session per account (its own loader, the service model parsed again):
{result["fresh_session_ms"]} ms; trailguard's member session, which shares the home session's
loader (AssumeRole included): {result["shared_loader_ms"]} ms, **{result["ratio"]}x** (target at
most {result["target"]}x: {"met" if result["met"] else "not met"}). At 256 MB Lambda gives about
0.15 vCPU, so the fresh session's figure is about {round(result["fresh_session_ms"] / 0.15)} ms of
a handler's time there."""


if __name__ == "__main__":
    result = run()
    print(result)
    print(section(result))
