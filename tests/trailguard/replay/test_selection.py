from __future__ import annotations

import datetime as dt

import pytest

from trailguard.replay.selection import RecordFilter, Selection, SelectionError, layout_partition, parse_when

pytestmark = pytest.mark.unit

NOW = dt.datetime(2024, 3, 10, 15, 30, tzinfo=dt.UTC)
PAIRS = [("cloudtrail.amazonaws.com", "StopLogging")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", NOW - dt.timedelta(days=30)),
        ("12h", NOW - dt.timedelta(hours=12)),
        ("90m", NOW - dt.timedelta(minutes=90)),
        ("2w", NOW - dt.timedelta(weeks=2)),
        ("2024-01-31", dt.datetime(2024, 1, 31, tzinfo=dt.UTC)),
        ("2024-01-31T12:00:00Z", dt.datetime(2024, 1, 31, 12, tzinfo=dt.UTC)),
        ("2024-01-31T12:00:00", dt.datetime(2024, 1, 31, 12, tzinfo=dt.UTC)),
        ("2024-01-31T14:00:00+02:00", dt.datetime(2024, 1, 31, 12, tzinfo=dt.UTC)),
    ],
)
def test_parse_when_reads_ages_dates_and_datetimes_as_utc(text: str, expected: dt.datetime) -> None:
    assert parse_when(text, now=NOW) == expected


def test_a_date_given_as_until_includes_that_whole_day() -> None:
    assert parse_when("2024-01-31", now=NOW, end_of_day=True) == dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    # A date-time is an instant, end_of_day or not.
    assert parse_when("2024-01-31T00:00:00Z", now=NOW, end_of_day=True) == dt.datetime(2024, 1, 31, tzinfo=dt.UTC)


@pytest.mark.parametrize("text", ["yesterday", "30x", "2024-02-30", "-5d", ""])
def test_parse_when_refuses_what_it_cannot_read_and_says_what_it_takes(text: str) -> None:
    with pytest.raises(SelectionError, match=r"date|age"):
        parse_when(text, now=NOW)


def test_build_defaults_until_to_now_and_sorts_filters() -> None:
    selection = Selection.build(PAIRS, "1d", accounts=["222222222222", "111111111111"], regions=["us-east-1"], now=NOW)
    assert (selection.since, selection.until) == (NOW - dt.timedelta(days=1), NOW)
    assert selection.accounts == ("111111111111", "222222222222")


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"accounts": ["12345"]}, "not a 12-digit id"),
        ({"accounts": ["111111111111' OR '1'='1"]}, "not a 12-digit id"),
        ({"regions": ["us-east-1/../../"]}, "not like us-east-1"),
        ({"accounts": []}, "empty list"),
    ],
)
def test_a_malformed_account_or_region_is_refused_before_any_prefix_or_sql_is_built(
    kwargs: dict[str, list[str]], problem: str
) -> None:
    with pytest.raises(SelectionError, match=problem):
        Selection.build(PAIRS, "1d", now=NOW, **kwargs)  # type: ignore[arg-type]


def test_an_empty_or_reversed_selection_is_refused() -> None:
    with pytest.raises(SelectionError, match=r"no \(eventSource, eventName\) pair"):
        Selection.build([], "1d", now=NOW)
    with pytest.raises(SelectionError, match="must be before"):
        Selection.build(PAIRS, "2024-01-02", "2024-01-01T00:00:00Z", now=NOW)


def test_days_add_the_next_day_when_late_delivery_crosses_midnight() -> None:
    selection = Selection.build(PAIRS, "2024-01-01", "2024-01-02", now=NOW)  # until 2024-01-03T00:00
    assert selection.days() == [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    early = Selection.build(PAIRS, "2024-01-01", "2024-01-02T12:00:00Z", now=NOW)
    assert early.days() == [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
    none = Selection.build(PAIRS, "2024-01-01", "2024-01-02", now=NOW, late_delivery=dt.timedelta(0))
    assert none.days() == [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]


def test_may_hold_keeps_the_minute_since_falls_in_and_files_delivered_late() -> None:
    selection = Selection.build(PAIRS, "2024-01-01T10:00:30Z", "2024-01-01T11:00:00Z", now=NOW)
    minute = dt.timedelta(minutes=1)
    at = dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.UTC)
    assert not selection.may_hold(at - minute)  # delivered by 09:59:59: only earlier records
    assert selection.may_hold(at)  # delivered 10:00:00-10:00:59: may hold 10:00:30
    assert selection.may_hold(dt.datetime(2024, 1, 1, 11, 59, tzinfo=dt.UTC))  # late delivery (1 h)
    assert not selection.may_hold(dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC))


def test_without_since_a_local_selection_is_open_and_an_s3_one_is_refused() -> None:
    selection = Selection.build(PAIRS, successful_only=False)
    assert not selection.bounded and selection.may_hold(dt.datetime(1999, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(SelectionError, match="give --since"):
        selection.days()
    with pytest.raises(SelectionError, match="--until needs --since"):
        Selection.build(PAIRS, until="2024-01-01")


RECORD = {
    "eventSource": "cloudtrail.amazonaws.com",
    "eventName": "StopLogging",
    "eventTime": "2024-01-01T10:00:00Z",
    "recipientAccountId": "111111111111",
    "awsRegion": "us-east-1",
}


def test_takes_is_the_definition_each_engine_is_checked_against() -> None:
    selection = Selection.build(PAIRS, "2024-01-01T09:00:00Z", "2024-01-01T11:00:00Z", ["111111111111"], now=NOW)
    own = RecordFilter(selection, None)  # outside the layout: the record's own partition
    assert own(RECORD)
    assert not own({**RECORD, "eventTime": "2024-01-01T11:00:00Z"})  # until is excluded
    assert not own({**RECORD, "errorCode": "AccessDenied"})
    assert own({**RECORD, "errorCode": ""})  # the decision path takes "" as success too
    assert not own({**RECORD, "eventName": "DescribeTrails"})
    assert not own({**RECORD, "recipientAccountId": "222222222222"})
    assert not own({**RECORD, "eventTime": "yesterday"})
    # In CloudTrail's layout, the folders decide the partition, as in Athena.
    key = "AWSLogs/o-a1b2c3d4e5/222222222222/CloudTrail/us-east-1/2024/01/01/x.json.gz"
    assert layout_partition("/tmp/" + key) == ("222222222222", "us-east-1", "2024/01/01")
    assert not RecordFilter(selection, layout_partition(key))(RECORD)
    failed = Selection.build(PAIRS, successful_only=False)
    assert RecordFilter(failed, None)({**RECORD, "errorCode": "AccessDenied"})
