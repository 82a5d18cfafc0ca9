"""The bulk CloudTrail corpus the throughput benchmarks read.

No public bulk corpus is small enough to ship, so one of any size is made from the real
invictus records in tests/data: each record keeps its shape and gets a fresh eventID,
requestID and eventTime, and the files follow the layout CloudTrail uses when it delivers
to S3:

    OUT/AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/<account>_CloudTrail_<region>_<stamp>_<n>.json.gz

Each file holds one {"Records": [...]} object, like a real delivery. The same --records,
--per-file and --seed give byte-identical files (gzip's header time is fixed at 0), so two
runs, or two machines, measure the same input.

    python -m bench.corpus OUT --records 200000
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import gzip
import json
import random
import uuid
from pathlib import Path
from typing import Any

from trailguard.generate.docs import default_datasets

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def invictus_records(datasets: Path) -> list[dict[str, Any]]:
    folder = datasets / "invictus-aws-2023" / "CloudTrail"
    records: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        records.extend(json.loads(path.read_text())["Records"])
    if not records:
        raise SystemExit(f"bench.corpus: no invictus records under {folder} (set TRAILGUARD_DATASETS)")
    return records


def build(out: Path, records: int, per_file: int = 2_000, seed: int = 7, datasets: Path | None = None) -> int:
    """Write `records` records under `out`; returns the number of files written."""
    if records < 1 or per_file < 1:
        raise ValueError("records and per_file must be at least 1")
    rng = random.Random(seed)
    pool = invictus_records(datasets or default_datasets())
    written = 0
    file_no = 0
    while written < records:
        batch = []
        for _ in range(min(per_file, records - written)):
            record = copy.deepcopy(rng.choice(pool))
            record["eventTime"] = (START + dt.timedelta(seconds=written // 10)).strftime("%Y-%m-%dT%H:%M:%SZ")
            record["eventID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            record["requestID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            batch.append(record)
            written += 1
        account = batch[0].get("recipientAccountId", "123456789012")
        region = batch[0].get("awsRegion", "us-east-1")
        when = dt.datetime.strptime(batch[0]["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
        folder = out / "AWSLogs" / account / "CloudTrail" / region / when.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{account}_CloudTrail_{region}_{when.strftime('%Y%m%dT%H%MZ')}_{file_no:06d}.json.gz"
        with (folder / name).open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
            packed.write(json.dumps({"Records": batch}).encode())
        file_no += 1
    return file_no


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder to write (created if missing)")
    parser.add_argument("--records", type=int, default=200_000, help="how many records in all (default 200000)")
    parser.add_argument("--per-file", type=int, default=2_000, help="records per delivered file (default 2000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args()
    files = build(args.out, args.records, args.per_file, args.seed)
    print(f"wrote {args.records} records in {files} files under {args.out}")


if __name__ == "__main__":
    main()
