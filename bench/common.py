"""Shared by the benchmarks: where things are, how to time a command, how to summarise."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def environment() -> dict[str, str]:
    """A clean environment for child processes: fake AWS credentials, no real endpoints."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def timed(command: list[str] | str, **options) -> float:
    """Wall seconds of one run of `command` (output discarded); raises if it fails."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=environment(), cwd=ROOT, **options)
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"
    )


def ensure_corpus(folder: Path, records: int) -> Path:
    """The deterministic bulk corpus of `records` records (built once by bench.corpus, then reused)."""
    from bench import corpus

    marker = folder / f".complete-{records}"
    if not marker.exists():
        corpus.build(folder, records)
        marker.touch()
    return folder


DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


@contextlib.contextmanager
def serialised_dynamodb_writes() -> Iterator[None]:
    """DynamoDB evaluates a ConditionExpression and writes the item as one step; moto's
    in-process backend checks, then writes, without a lock, so two threads can both pass
    `attribute_not_exists(pk)` (measured: 1.5-2.7% of 8-thread rounds had two winners).
    One re-entrant lock around the backend's write operations gives moto the per-item
    serialisation AWS documents, so a test or benchmark of "exactly once" measures
    trailguard, not moto. trailguard's own code is untouched."""
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    originals = {name: getattr(DynamoDBBackend, name) for name in DYNAMODB_WRITES}

    def serialised(write: Any) -> Any:
        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return write(*args, **kwargs)

        return locked

    for name, write in originals.items():
        setattr(DynamoDBBackend, name, serialised(write))
    try:
        yield
    finally:
        for name, write in originals.items():
            setattr(DynamoDBBackend, name, write)


@contextlib.contextmanager
def moto_in_process(config: dict[str, Any] | None = None) -> Iterator[list[float]]:
    """moto in-process, with fake credentials and trailguard's log quiet. Yields a one-item
    list holding the seconds spent inside moto's request handler (AWS's stand-in) since
    the caller last set it to 0, so that a benchmark can give trailguard's own share.
    The environment and the log level are put back afterwards (the load test runs this
    inside the test suite)."""
    import logging

    from moto import mock_aws
    from moto.core.botocore_stubber import BotocoreStubber

    from trailguard.local.aws import process_environment

    saved_level = logging.getLogger("trailguard").level
    logging.getLogger("trailguard").setLevel(logging.WARNING)  # a line per event is not what is measured
    in_moto = [0.0]
    original = BotocoreStubber.__call__

    def timed_stub(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            in_moto[0] += time.perf_counter() - started

    BotocoreStubber.__call__ = timed_stub
    environment = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TRAILGUARD_LOG_LEVEL": "WARNING",
    }
    try:
        with process_environment(environment), mock_aws(config=config):
            yield in_moto
    finally:
        BotocoreStubber.__call__ = original
        logging.getLogger("trailguard").setLevel(saved_level)


INTEGRITY_KEY = "alias/trailguard-bench-integrity"


def integrity_key() -> str:
    """The stage's KMS HMAC key in moto (as `bootstrap` makes it): a table is sealed with one."""
    import boto3

    from trailguard.bootstrap import ensure_key

    ensure_key(boto3.client("kms", region_name="us-east-1"), INTEGRITY_KEY)
    return INTEGRITY_KEY


def bench_record(event_name: str, **fields: Any) -> dict[str, Any]:
    """A CloudTrail record of `event_name` on the trail `bench`, by an IAM user in moto's account."""
    from chalicelib.events.synthetic import api_call_record

    identity = {
        "type": "IAMUser",
        "arn": "arn:aws:iam::123456789012:user/mallory",
        "accountId": "123456789012",
        "userName": "mallory",
    }
    return api_call_record(
        event_name,
        "cloudtrail.amazonaws.com",
        {"name": "bench"},
        identity=identity,
        region="us-east-1",
        event_time="2026-11-26T03:12:45Z",
        **fields,
    )
