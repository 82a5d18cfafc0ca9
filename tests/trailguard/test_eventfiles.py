"""Reading events from every file layout people have, and reporting bad files without stopping."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from chalicelib.events.record import CloudTrailEvent, EventError
from tests.conftest import envelope, record
from trailguard.eventfiles import iter_event_files, read_events

pytestmark = pytest.mark.unit


def _ids(items):
    return [item.event_id for item in items if isinstance(item, CloudTrailEvent)]


def _invictus_file(datasets):
    return sorted((datasets / "invictus-aws-2023" / "CloudTrail").glob("*.json"))[0]


def test_s3_delivery_file_plain_and_gzipped(datasets, tmp_path):
    source = _invictus_file(datasets)
    expected = [r["eventID"] for r in json.loads(source.read_text())["Records"]]
    gzipped = tmp_path / "123_CloudTrail_us-east-1_x.json.gz"
    gzipped.write_bytes(gzip.compress(source.read_bytes()))
    assert _ids(read_events([source])) == expected
    assert _ids(read_events([gzipped])) == expected


def test_gzip_is_recognised_by_content_not_name(datasets, tmp_path):
    source = _invictus_file(datasets)
    disguised = tmp_path / "log.json"
    disguised.write_bytes(gzip.compress(source.read_bytes()))
    assert len(_ids(read_events([disguised]))) == len(json.loads(source.read_text())["Records"])


def test_json_lines_of_records_and_envelopes(tmp_path):
    first = record("StopLogging", "cloudtrail.amazonaws.com", {"name": "a"})
    second = record("DisableKey", "kms.amazonaws.com", {"keyId": "k"})
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(first) + "\n\n" + json.dumps(envelope(second)) + "\n")
    assert _ids(read_events([path])) == [first["eventID"], second["eventID"]]


def test_a_bad_line_is_reported_with_its_number_and_the_rest_is_read(tmp_path):
    good = [record("StopLogging", "cloudtrail.amazonaws.com") for _ in range(2)]
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(good[0]) + "\n{not json\n" + json.dumps(good[1]) + "\n")
    items = list(read_events([path]))
    assert _ids(items) == [good[0]["eventID"], good[1]["eventID"]]
    [error] = [item for item in items if isinstance(item, EventError)]
    assert error.where == f"{path} line 2"
    assert error.problem.startswith("not JSON: ")


def test_a_bad_record_in_a_json_lines_file_names_its_line(tmp_path):
    bad = record("StopLogging", "cloudtrail.amazonaws.com")
    del bad["eventName"]
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(record("StopLogging", "cloudtrail.amazonaws.com")) + "\n" + json.dumps(bad) + "\n")
    errors = [item for item in read_events([path]) if isinstance(item, EventError)]
    assert [str(e) for e in errors] == [f"{path} line 2: missing field 'eventName'"]


def test_json_array_file(datasets):
    path = datasets / "stratus-detonation-logs" / "aws.defense-evasion.cloudtrail-delete.json"
    assert _ids(read_events([path])) == [r["eventID"] for r in json.loads(path.read_text())]


def test_pretty_printed_s3_delivery_object(tmp_path):
    records = [record("StopLogging", "cloudtrail.amazonaws.com") for _ in range(3)]
    path = tmp_path / "pretty.json"
    path.write_text(json.dumps({"Records": records}, indent=2))
    assert _ids(read_events([path])) == [r["eventID"] for r in records]


def test_folders_are_read_recursively_in_order_skipping_digests_and_other_files(tmp_path, datasets):
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    (tmp_path / "a").mkdir()
    shutil.copy(_invictus_file(datasets), tmp_path / "b" / "deeper" / "2.json")
    (tmp_path / "a" / "1.jsonl").write_text(json.dumps(record("StopLogging", "cloudtrail.amazonaws.com")) + "\n")
    (tmp_path / "a" / "123_CloudTrail-Digest_us-east-1_x.json.gz").write_bytes(gzip.compress(b'{"awsAccountId": "1"}'))
    (tmp_path / "a" / "notes.txt").write_text("not events")
    (tmp_path / "LICENSE").write_text("MIT")
    files = list(iter_event_files([tmp_path]))
    assert files == [tmp_path / "a" / "1.jsonl", tmp_path / "b" / "deeper" / "2.json"]
    assert all(isinstance(item, CloudTrailEvent) for item in read_events([tmp_path]))


def test_records_of_an_s3_file_are_numbered(tmp_path):
    records = [record("StopLogging", "cloudtrail.amazonaws.com") for _ in range(3)]
    records[2]["userIdentity"] = None
    path = tmp_path / "trail.json"
    path.write_text(json.dumps({"Records": records}))
    errors = [item for item in read_events([path]) if isinstance(item, EventError)]
    assert [str(e) for e in errors] == [f"{path} record 3: missing field 'userIdentity'"]


def test_files_that_are_not_event_files_are_reported(tmp_path):
    not_json = tmp_path / "a.json"
    not_json.write_text("<html>\n<body>\n")
    records_not_list = tmp_path / "b.json"
    records_not_list.write_text('{"Records": {"eventName": "x"}}')
    empty = tmp_path / "c.json"
    empty.write_text("\n\n")
    missing = tmp_path / "gone.json"
    items = list(read_events([not_json, records_not_list, empty, missing]))
    assert str(items[0]).startswith(f"{not_json}: not JSON: ") and str(items[0]).endswith(" at line 1 column 1")
    assert [str(item) for item in items[1:]] == [
        f"{records_not_list}: 'Records' must be an array of CloudTrail records",
        f"{missing}: cannot read file: No such file or directory",
    ]


def test_a_truncated_gzip_file_is_reported_after_what_could_be_read(tmp_path):
    lines = "".join(json.dumps(record("StopLogging", "cloudtrail.amazonaws.com")) + "\n" for _ in range(200))
    data = gzip.compress(lines.encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    items = list(read_events([path]))
    events = [item for item in items if isinstance(item, CloudTrailEvent)]
    errors = [item for item in items if isinstance(item, EventError)]
    assert 0 < len(events) < 200
    assert len(errors) >= 1 and errors[-1].where == str(path)
    assert errors[-1].problem.startswith("cannot read file: ")


def _shape(items):
    return [
        item.event_id if isinstance(item, CloudTrailEvent) else (str(item) if item is not None else None)
        for item in items
    ]


def test_parallel_reading_yields_the_same_items_in_the_same_order(datasets):
    serial = _shape(read_events([datasets]))
    assert _shape(read_events([datasets], workers=2)) == serial
    assert len(serial) > 3000 and any(isinstance(s, str) and "missing field" in s for s in serial)


def test_records_of_calls_nobody_wants_are_counted_not_checked(tmp_path):
    wanted = {("cloudtrail.amazonaws.com", "StopLogging")}
    unwanted_but_broken = record("DescribeTrails", "cloudtrail.amazonaws.com")
    del unwanted_but_broken["eventID"]
    wanted_but_broken = record("StopLogging", "cloudtrail.amazonaws.com")
    del wanted_but_broken["eventTime"]
    good = record("StopLogging", "cloudtrail.amazonaws.com")
    wrapped = envelope(record("StopLogging", "cloudtrail.amazonaws.com"))
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [unwanted_but_broken, wanted_but_broken, good, wrapped]))
    items = list(read_events([path], wanted))
    assert items[0] is None
    assert isinstance(items[1], EventError) and "missing field 'eventTime'" in str(items[1])
    assert [item.event_id for item in items[2:]] == [good["eventID"], wrapped["detail"]["eventID"]]


# -- compression bombs ---------------------------------------------------------------------

_CAPPED = (
    "cannot read file: it inflates to more than {} MiB, the most replay decompresses of one file "
    "(a compression bomb, or an export to decompress before reading it)"
)


def _bomb(path, start: bytes, inflated_mib: int) -> None:
    """A gzip file that inflates to `inflated_mib` MiB from a thousandth of that: `start`,
    then spaces (in 1 MiB members: gzip allows a file of many)."""
    path.write_bytes(gzip.compress(start) + gzip.compress(b" " * 1024 * 1024) * inflated_mib)


def test_a_1_mb_gzip_bomb_is_cut_at_the_cap_reported_and_the_next_file_is_read(datasets, tmp_path):
    """A 1 MB CloudTrail-looking file that would inflate to 1 GiB: replay decompresses no
    more of it than the cap, reports it like a damaged file (its name and why), and reads
    the next file."""
    import tracemalloc

    from trailguard.eventfiles import MAX_INFLATED_BYTES

    bomb = tmp_path / "a-bomb.json.gz"
    _bomb(bomb, b'{"Records": [', 1024)
    assert bomb.stat().st_size < 1_100_000
    source = _invictus_file(datasets)
    (tmp_path / "b-good.json.gz").write_bytes(gzip.compress(source.read_bytes()))

    tracemalloc.start()
    try:
        items = list(read_events([tmp_path]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [str(item) for item in items if isinstance(item, EventError)] == [f"{bomb}: {_CAPPED.format(256)}"]
    assert _ids(items) == [r["eventID"] for r in json.loads(source.read_text())["Records"]]
    assert peak < 3 * MAX_INFLATED_BYTES < 1024 * 1024 * 1024  # the whole of it (1 GiB) was never held


@pytest.mark.parametrize("streamed", [False, True], ids=["small-file", "large-file"])
@pytest.mark.parametrize("layout", ["array", "json-lines"])
def test_every_layout_stops_at_the_cap_after_reading_what_came_before(tmp_path, monkeypatch, layout, streamed):
    from trailguard import eventfiles

    monkeypatch.setattr(eventfiles, "MAX_INFLATED_BYTES", 8 * 1024 * 1024)
    if streamed:  # a file larger than is decompressed in one call
        monkeypatch.setattr(eventfiles, "_WHOLE_FILE_LIMIT", 1024)
    first = record("StopLogging", "cloudtrail.amazonaws.com")
    start = b"[" if layout == "array" else json.dumps(first).encode() + b"\n"
    bomb = tmp_path / "bomb.jsonl.gz"
    _bomb(bomb, start, 64)
    items = list(read_events([bomb]))
    assert [str(item) for item in items if isinstance(item, EventError)] == [f"{bomb}: {_CAPPED.format(8)}"]
    assert _ids(items) == ([] if layout == "array" else [first["eventID"]])
