"""An organization's CloudTrail corpus in the real S3 layout, generated from real records.

    python -m bench.orgcorpus OUT --records 2000000 --days 30

Like bench/corpus.py, each record is a real one (by default the invictus
dataset's) with a fresh eventID, requestID and eventTime. Unlike it, the corpus spreads over
several accounts, regions and days, optionally under an organization prefix, and each file
is named for its *delivery*: a few minutes after its last record, so that some files of a
day's last minutes land in the next day's folder, as CloudTrail's do. Each record's
`recipientAccountId` and `awsRegion` are those of its file. The same arguments give the same
bytes (gzip's time is 0), so two runs measure the same input.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import gzip
import json
import random
import string
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def invictus_pool(datasets: Path | None = None) -> list[dict[str, Any]]:
    """The real records the corpus is made of (2,900 records of one hour of one account)."""
    from bench.corpus import invictus_records
    from trailguard.generate.docs import default_datasets

    return invictus_records(datasets or default_datasets())


@dataclass(frozen=True)
class CorpusSpec:
    records: int
    accounts: Sequence[str] = ("111111111111", "222222222222", "333333333333")
    regions: Sequence[str] = ("us-east-1", "eu-west-1")
    start: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    days: float = 3.0
    per_file: int = 2000
    organization: str | None = "o-a1b2c3d4e5"
    prefix: str = ""
    seed: int = 7


def generate(spec: CorpusSpec, pool: Sequence[dict[str, Any]]) -> Iterator[tuple[str, bytes]]:
    """(key, gzipped bytes) of each file, in key order within each stream."""
    rng = random.Random(spec.seed)
    files = -(-spec.records // spec.per_file)
    streams = [(account, region) for account in spec.accounts for region in spec.regions]
    span = dt.timedelta(days=spec.days)
    written = 0
    for number in range(files):
        account, region = streams[number % len(streams)]
        count = min(spec.per_file, spec.records - written)
        batch = []
        for offset in range(count):
            record = copy.deepcopy(rng.choice(pool))
            moment = spec.start + span * ((written + offset) / spec.records)
            record["eventTime"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            record["eventID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            record["requestID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            record["recipientAccountId"] = account
            record["awsRegion"] = region
            batch.append(record)
        written += count
        last = max(dt.datetime.fromisoformat(record["eventTime"]) for record in batch)
        delivered = last + dt.timedelta(seconds=rng.randint(60, 600))
        yield key_for(spec, account, region, delivered, rng), pack(batch)


def key_for(spec: CorpusSpec, account: str, region: str, delivered: dt.datetime, rng: random.Random) -> str:
    unique = "".join(rng.choices(string.ascii_letters + string.digits, k=16))
    org = f"{spec.organization}/" if spec.organization else ""
    return (
        f"{spec.prefix}AWSLogs/{org}{account}/CloudTrail/{region}/{delivered:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{delivered:%Y%m%dT%H%M}Z_{unique}.json.gz"
    )


def pack(records: list[dict[str, Any]]) -> bytes:
    """A delivery file: compact JSON, like CloudTrail's own, gzipped with time 0."""
    return gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode(), mtime=0)


def write(spec: CorpusSpec, out: Path, pool: Sequence[dict[str, Any]] | None = None) -> int:
    """Write the corpus under `out`; the number of files."""
    count = 0
    for key, data in generate(spec, pool if pool is not None else invictus_pool()):
        path = out / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--per-file", type=int, default=2000)
    args = parser.parse_args()
    files = write(CorpusSpec(records=args.records, days=args.days, per_file=args.per_file), args.out)
    print(f"wrote {args.records} records in {files} files under {args.out}")


if __name__ == "__main__":
    main()
