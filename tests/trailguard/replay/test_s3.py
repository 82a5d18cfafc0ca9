"""Replay from S3: the layout's prefixes from a selection, discovery only when asked, edges
by key time; objects fetched in order with bounded concurrency; and `replay s3://...` giving
what a local replay of the same files gives.

Against moto's S3 with a generated corpus in the real layout; the LIST and GET calls are
recorded with botocore's own event hooks on the real client."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from bench import orgcorpus as corpus
from trailguard.cli import main
from trailguard.replay import run
from trailguard.replay.progress import Progress
from trailguard.replay.s3fetch import fetch
from trailguard.replay.s3layout import (
    DayPrefix,
    ListingReport,
    Location,
    LogObject,
    day_prefixes,
    describe_key,
    list_objects,
    plan,
)
from trailguard.replay.selection import Selection, SelectionError, layout_partition

pytestmark = pytest.mark.integration

BUCKET = "org-trail-logs"


@pytest.fixture(scope="module")
def pool(datasets: Path) -> list[dict[str, Any]]:
    return corpus.invictus_pool(datasets)


@pytest.fixture
def s3() -> Iterator[Any]:
    """moto's S3, in-process, with the log bucket."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def upload(client: Any, spec: corpus.CorpusSpec, pool: list[dict[str, Any]], bucket: str = BUCKET) -> dict[str, bytes]:
    """Put a generated corpus in the bucket; its objects by key."""
    objects = dict(corpus.generate(spec, pool))
    for key, data in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)
    return objects


ORG = "o-a1b2c3d4e5"
PAIRS = [("cloudtrail.amazonaws.com", "StopLogging")]
NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
SPEC = corpus.CorpusSpec(records=6000, per_file=100, days=3.0, organization=ORG)


def record_lists(client: Any) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.s3.ListObjectsV2", lambda params, **_: calls.append(dict(params))
    )
    return calls


def test_location_from_url_reads_prefix_and_organization() -> None:
    assert Location.from_url("s3://logs") == Location("logs", "", None)
    assert Location.from_url("s3://logs/trails/main/") == Location("logs", "trails/main/", None)
    assert Location.from_url(f"s3://logs/p/AWSLogs/{ORG}/") == Location("logs", "p/", ORG)
    assert Location.from_url("s3://logs/p/AWSLogs") == Location("logs", "p/", None)
    with pytest.raises(SelectionError, match="up to AWSLogs/"):
        Location.from_url("s3://logs/AWSLogs/111111111111/CloudTrail/")
    with pytest.raises(SelectionError, match="not an s3:// URL"):
        Location.from_url("logs/AWSLogs")


def test_day_prefixes_are_one_per_account_region_and_day_in_both_layouts() -> None:
    days = [dt.date(2024, 1, 31), dt.date(2024, 2, 1)]
    org = day_prefixes(Location("b", "t/", ORG), [(ORG, "111111111111")], ("us-east-1",), days)
    assert [p.prefix for p in org] == [
        f"t/AWSLogs/{ORG}/111111111111/CloudTrail/us-east-1/2024/01/31/",
        f"t/AWSLogs/{ORG}/111111111111/CloudTrail/us-east-1/2024/02/01/",
    ]
    plain = day_prefixes(Location("b"), [(None, "222222222222")], ("eu-west-1", "us-east-1"), days[:1])
    assert [p.prefix for p in plain] == [
        "AWSLogs/222222222222/CloudTrail/eu-west-1/2024/01/31/",
        "AWSLogs/222222222222/CloudTrail/us-east-1/2024/01/31/",
    ]


def test_with_accounts_and_regions_given_nothing_is_listed_to_plan(s3: Any, pool: list[dict[str, Any]]) -> None:
    upload(s3, SPEC, pool)
    calls = record_lists(s3)
    selection = Selection.build(PAIRS, "2024-01-02", "2024-01-02", ["111111111111"], ["eu-west-1"], now=NOW)
    prefixes = plan(s3, Location(BUCKET, "", ORG), selection)
    assert calls == []
    assert [p.prefix for p in prefixes] == [
        f"AWSLogs/{ORG}/111111111111/CloudTrail/eu-west-1/2024/01/02/",
        f"AWSLogs/{ORG}/111111111111/CloudTrail/eu-west-1/2024/01/03/",  # late delivery after midnight
    ]


def test_discovery_lists_folders_only_and_only_what_the_selection_leaves_open(
    s3: Any, pool: list[dict[str, Any]]
) -> None:
    upload(s3, SPEC, pool)
    upload(s3, corpus.CorpusSpec(records=200, per_file=100, accounts=("444444444444",), organization=None), pool)
    calls = record_lists(s3)
    selection = Selection.build(PAIRS, "2024-01-02", "2024-01-02T12:00:00Z", regions=["us-east-1"], now=NOW)
    prefixes = plan(s3, Location(BUCKET), selection)
    assert [(call["Prefix"], call.get("Delimiter")) for call in calls] == [
        ("AWSLogs/", "/"),
        (f"AWSLogs/{ORG}/", "/"),
    ]
    assert sorted({(p.account, p.prefix.split("/CloudTrail")[0]) for p in prefixes}) == [
        ("111111111111", f"AWSLogs/{ORG}/111111111111"),
        ("222222222222", f"AWSLogs/{ORG}/222222222222"),
        ("333333333333", f"AWSLogs/{ORG}/333333333333"),
        ("444444444444", "AWSLogs/444444444444"),
    ]
    calls.clear()
    one = Selection.build(PAIRS, "2024-01-02", "2024-01-02T12:00:00Z", accounts=["222222222222"], now=NOW)
    regions = {p.region for p in plan(s3, Location(BUCKET, "", ORG), one)}
    assert regions == {"us-east-1", "eu-west-1"}
    assert [call["Prefix"] for call in calls] == [f"AWSLogs/{ORG}/222222222222/CloudTrail/"]


def test_listing_returns_exactly_the_files_that_may_hold_the_range(s3: Any, pool: list[dict[str, Any]]) -> None:
    objects = upload(s3, SPEC, pool)
    selection = Selection.build(PAIRS, "2024-01-02T07:13:00Z", "2024-01-02T09:00:00Z", now=NOW)
    report = ListingReport()
    prefixes = plan(s3, Location(BUCKET, "", ORG), selection, report)
    listed = [obj.key for obj in list_objects(s3, BUCKET, prefixes, selection, report, page_size=5)]
    expected = sorted(
        key for key in objects if (described := describe_key(key)) is not None and selection.may_hold(described[2])
    )
    assert sorted(listed) == expected
    assert expected  # the window is not empty: some files of each stream fall in it
    assert report.objects == len(expected)
    assert report.bytes == sum(len(objects[key]) for key in expected)


def test_the_first_day_starts_after_since_and_the_last_stops_at_late_delivery(
    s3: Any, pool: list[dict[str, Any]]
) -> None:
    upload(s3, corpus.CorpusSpec(records=6000, per_file=10, days=3.0, organization=ORG), pool)
    selection = Selection.build(
        PAIRS, "2024-01-02T08:00:00Z", "2024-01-02T09:00:00Z", ["111111111111"], ["us-east-1"], now=NOW
    )
    calls = record_lists(s3)
    prefixes = plan(s3, Location(BUCKET, "", ORG), selection)
    listed = list(list_objects(s3, BUCKET, prefixes, selection, page_size=2))
    day = f"AWSLogs/{ORG}/111111111111/CloudTrail/us-east-1/2024/01/02/"
    assert calls[0]["StartAfter"] == f"{day}111111111111_CloudTrail_us-east-1_20240102T0759Z_~"
    # The folder holds a day of files (about 33); pages of 2 keys: listing stopped at 10:00.
    assert all(obj.delivered < dt.datetime(2024, 1, 2, 10, 0, tzinfo=dt.UTC) for obj in listed)
    assert len(calls) <= len(listed) // 2 + 2
    assert listed and all(obj.key.startswith(day) for obj in listed)


def test_keys_that_are_not_cloudtrail_files_are_noted_not_read(s3: Any) -> None:
    day = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/01/"
    s3.put_object(
        Bucket=BUCKET, Key=f"{day}111111111111_CloudTrail_us-east-1_20240101T0005Z_abcdefghijklmnop.json.gz", Body=b"x"
    )
    s3.put_object(Bucket=BUCKET, Key=f"{day}notes.txt", Body=b"x")
    selection = Selection.build(PAIRS, "2024-01-01", "2024-01-01", ["111111111111"], ["us-east-1"], now=NOW)
    report = ListingReport()
    listed = list(list_objects(s3, BUCKET, plan(s3, Location(BUCKET), selection), selection, report))
    assert [obj.key.rsplit("/", 1)[1][:12] for obj in listed] == ["111111111111"]
    assert report.unrecognised == [f"{day}notes.txt"]


def test_describe_key_and_layout_partition_read_the_layout() -> None:
    folder = f"p/AWSLogs/{ORG}/111111111111/CloudTrail/eu-west-1/2024/01/02/"
    key = f"{folder}111111111111_CloudTrail_eu-west-1_20240102T0005Z_x.json.gz"
    assert describe_key(key) == ("111111111111", "eu-west-1", dt.datetime(2024, 1, 2, 0, 5, tzinfo=dt.UTC))
    assert layout_partition("/tmp/c/" + key) == ("111111111111", "eu-west-1", "2024/01/02")
    assert layout_partition("/tmp/records.json") is None
    assert describe_key("AWSLogs/111111111111/CloudTrail-Digest/us-east-1/2024/01/02/x.json.gz") is None
    assert DayPrefix("1", "r", dt.date(2024, 1, 1), "a") < DayPrefix("1", "r", dt.date(2024, 1, 2), "a")


# -- fetching --------------------------------------------------------------------------------


def concurrency_probe(client: Any) -> dict[str, int]:
    """The most GetObject calls in flight at once, seen by botocore's event hooks."""
    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def started(**_: Any) -> None:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])

    def ended(**_: Any) -> None:
        with lock:
            state["now"] -= 1

    client.meta.events.register("before-call.s3.GetObject", started)
    client.meta.events.register("after-call.s3.GetObject", ended)
    return state


def listed_objects(client: Any, selection: Selection) -> list[LogObject]:
    return list(list_objects(client, BUCKET, plan(client, Location(BUCKET, "", ORG), selection), selection))


def test_objects_are_fetched_in_listing_order_with_bounded_concurrency(
    s3: Any, pool: list[dict[str, Any]], tmp_path: Path
) -> None:
    objects = upload(s3, corpus.CorpusSpec(records=3000, per_file=50, days=2.0, organization=ORG), pool)
    listed = listed_objects(s3, Selection.build(PAIRS, "2024-01-01", "2024-01-02", now=NOW))
    probe = concurrency_probe(s3)
    fetched = list(fetch(s3, BUCKET, listed, tmp_path, workers=3))
    assert [item.object.key for item in fetched] == [obj.key for obj in listed]
    assert all(item.error is None and item.path.read_bytes() == objects[item.object.key] for item in fetched)
    assert 1 < probe["max"] <= 3


def test_a_slow_consumer_holds_at_most_workers_objects_and_one_that_stops_fetches_no_more(
    s3: Any, pool: list[dict[str, Any]], tmp_path: Path
) -> None:
    upload(s3, corpus.CorpusSpec(records=3000, per_file=50, days=2.0, organization=ORG), pool)
    listed = listed_objects(s3, Selection.build(PAIRS, "2024-01-01", "2024-01-02", now=NOW))
    gets: list[str] = []
    s3.meta.events.register("provide-client-params.s3.GetObject", lambda params, **_: gets.append(params["Key"]))
    reader = fetch(s3, BUCKET, listed, tmp_path, workers=2)
    next(reader)
    time.sleep(0.5)  # the consumer is busy: the pool must not run ahead through the listing
    assert len(gets) <= 3
    reader.close()
    time.sleep(0.2)
    assert len(gets) <= 3


def test_a_missing_object_is_reported_on_its_result(s3: Any, tmp_path: Path) -> None:
    day = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/01/"
    key = f"{day}111111111111_CloudTrail_us-east-1_20240101T0005Z_x.json.gz"
    missing = LogObject(key, 10, "111111111111", "us-east-1", dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    [result] = fetch(s3, BUCKET, [missing], tmp_path, workers=1)
    assert result.error is not None and "NoSuchKey" in result.error


# -- the command -----------------------------------------------------------------------------


def replay(*args: Any) -> Any:
    return CliRunner().invoke(main, ["replay", *map(str, args)], catch_exceptions=False)


@pytest.mark.parametrize("engine", ["duckdb", "python"])
def test_replay_from_s3_gives_what_a_local_replay_of_the_same_files_gives(
    s3: Any, pool: list[dict[str, Any]], tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = upload(s3, corpus.CorpusSpec(records=6000, per_file=200, days=3.0, organization=ORG), pool)
    for key, data in objects.items():  # the same files, as `aws s3 sync` would leave them
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(data)
    window = ["--since", "2024-01-02T06:00:00Z", "--until", "2024-01-03", "--accounts", "111111111111,333333333333"]
    gets: list[str] = []
    session = boto3.Session()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)  # the command's client is made from it
    session.events.register("provide-client-params.s3.GetObject", lambda params, **_: gets.append(params["Key"]))
    remote = replay(f"s3://{BUCKET}/AWSLogs/{ORG}/", *window, "--format", "jsonl", "--all", "--engine", engine)
    local = replay(tmp_path, *window, "--format", "jsonl", "--all", "--engine", engine)
    assert remote.exit_code == 0, remote.stderr
    assert remote.stdout == local.stdout and remote.stdout.count("\n") > 10
    assert remote.stderr.splitlines()[0].rsplit(",", 1)[0] == local.stderr.splitlines()[0].rsplit(",", 1)[0]
    assert "s3: " in remote.stderr and "0 not read" in remote.stderr
    # Only the asked-for accounts' day folders were read, and only files that may hold the window.
    assert gets and {key.split("/")[2] for key in gets} == {"111111111111", "333333333333"}
    assert all(key.split("/")[5:8] >= ["2024", "01", "02"] for key in gets)
    assert len(gets) < sum(key.split("/")[2] in ("111111111111", "333333333333") for key in objects)


def test_replay_from_s3_needs_a_window_and_says_why_a_bucket_cannot_be_read(s3: Any) -> None:
    without = replay(f"s3://{BUCKET}/")
    assert without.exit_code == 2 and "give --since" in without.stderr
    missing = replay("s3://no-such-bucket/", "--since", "1d", "--accounts", "111111111111")
    assert missing.exit_code == 1 and "NoSuchBucket" in missing.stderr
    wrong = replay(f"s3://{BUCKET}/", "--since", "1d", "--accounts", "1234")
    assert wrong.exit_code == 2 and "account '1234' is not a 12-digit id" in wrong.stderr


def test_progress_on_a_terminal_shows_events_per_second_and_an_eta() -> None:
    progress = Progress(files_total=4, bytes_total=4 * 2**20)
    progress.started -= 2.0
    progress.add(1, 50_000, 2**20)
    line = progress.line()
    assert line.startswith("1/4 files, 50,000 events, 1.0/4.0 MiB, ")
    assert "events/s" in line and ", ETA 6s" in line
    out = io.StringIO()
    shown = run.Shown(out)
    shown.start(2, 2048)
    shown.progress.started -= 1.0
    list(shown.count([5, None]))
    shown.done(1, 1024)
    assert "1/2 files, 6 events" in out.getvalue() and "ETA" in out.getvalue()
    shown.close()
    assert out.getvalue().endswith("\r")
