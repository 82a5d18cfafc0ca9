"""Fetching CloudTrail log objects from S3: parallel GETs, bounded in count and in disk.

Objects are written, still gzipped, under a scratch folder at their key's path (so that the
engines read each one's account, region and day from its path, as Athena does) and handed
over in listing order, so that two runs over the same objects give the same output, as
local replay keeps its files' order. At most `workers` objects are in flight (requested,
downloading, or written and waiting their turn); the caller deletes each batch once read,
so the scratch folder holds a few batches whatever the size of the replay.

A problem with one object (a failed GET after botocore's retries, a broken connection) is
reported on that object, never raised: the replay goes on and reports it, as a local file
it cannot read.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from trailguard.replay.s3layout import LogObject

CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    """One object: where it was written, or why it could not be."""

    object: LogObject
    path: Path
    error: str | None = None


def client_config(workers: int) -> Any:
    """A botocore Config with a connection pool for `workers` threads and adaptive retries."""
    from botocore.config import Config

    return Config(max_pool_connections=max(10, workers), retries={"mode": "adaptive", "max_attempts": 5})


def fetch(client: Any, bucket: str, objects: Iterable[LogObject], folder: Path, workers: int = 8) -> Iterator[Fetched]:
    """Each object of `objects`, written under `folder`, in the order given.

    `client` must allow `workers` connections (`client_config`); boto3 clients are
    thread-safe. A consumer that stops early stops the downloads not yet started."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    in_flight: deque[Future[Fetched]] = deque()
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-get") as pool:
        try:
            for item in objects:
                if len(in_flight) >= workers:
                    yield in_flight.popleft().result()
                in_flight.append(pool.submit(_fetch_one, client, bucket, item, folder, stop))
            while in_flight:
                yield in_flight.popleft().result()
        finally:
            stop.set()
            for future in in_flight:
                future.cancel()


def _fetch_one(client: Any, bucket: str, item: LogObject, folder: Path, stop: threading.Event) -> Fetched:
    path = folder / item.key
    if stop.is_set():
        return Fetched(item, path, "not read: the replay stopped")
    try:
        body = client.get_object(Bucket=bucket, Key=item.key)["Body"]
    except (ClientError, BotoCoreError) as error:
        return Fetched(item, path, f"cannot get object: {error}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            for chunk in body.iter_chunks(CHUNK_BYTES):
                out.write(chunk)
    except (ClientError, BotoCoreError, OSError) as error:
        path.unlink(missing_ok=True)
        return Fetched(item, path, f"cannot read object: {error}")
    finally:
        body.close()
    return Fetched(item, path)
