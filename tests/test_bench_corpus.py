"""bench.corpus: the benchmarks' bulk corpus is deterministic and shaped like CloudTrail's S3 delivery."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from bench.corpus import build, invictus_records
from chalicelib.events.record import CloudTrailEvent
from trailguard.eventfiles import read_events

pytestmark = pytest.mark.unit

LAYOUT = re.compile(
    r"AWSLogs/(\d{12})/CloudTrail/([a-z0-9-]+)/\d{4}/\d{2}/\d{2}/\1_CloudTrail_\2_\d{8}T\d{4}Z_\d{6}\.json\.gz"
)


def test_the_same_arguments_give_the_same_bytes(tmp_path, datasets):
    build(tmp_path / "a", 450, per_file=200, datasets=datasets)
    build(tmp_path / "b", 450, per_file=200, datasets=datasets)
    first = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*.gz")}
    second = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*.gz")}
    assert len(first) == 3 and first == second


def test_records_keep_their_shape_with_fresh_ids_in_the_delivery_layout(tmp_path, datasets):
    build(tmp_path, 300, per_file=100, datasets=datasets)
    paths = sorted(tmp_path.rglob("*.gz"))
    assert [LAYOUT.fullmatch(str(p.relative_to(tmp_path))) is not None for p in paths] == [True] * 3
    records = [r for p in paths for r in json.loads(gzip.decompress(p.read_bytes()))["Records"]]
    source_ids = {r["eventID"] for r in invictus_records(datasets)}
    assert len({r["eventID"] for r in records}) == 300 and not source_ids & {r["eventID"] for r in records}
    shapes = {(r["eventSource"], r["eventName"]) for r in invictus_records(datasets)}
    assert {(r["eventSource"], r["eventName"]) for r in records} <= shapes
    assert sum(isinstance(item, CloudTrailEvent) for item in read_events([tmp_path])) == 300


def test_a_missing_dataset_is_named(tmp_path):
    with pytest.raises(SystemExit, match="no invictus records under"):
        build(tmp_path / "out", 10, datasets=tmp_path)
