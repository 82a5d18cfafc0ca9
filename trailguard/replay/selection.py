"""What a replay selects: the calls, the time range, the accounts and the regions.

Every engine (the S3 lister, Athena, DuckDB, the pure-Python reader) takes the same
`Selection`, so that "the same selection on two engines" is one value, not two sets of
flags that could drift apart.

Time is a half-open range `[since, until)` in UTC; a local replay may leave it open. Besides
that exact range on `eventTime`, the engines prune by *delivery* time, the time in
CloudTrail's object keys and day folders. AWS documents that "a log file delivered at a
specific time can contain records written at any point before that time" (CloudTrail User
Guide, "CloudTrail log file examples"), and that delivery usually follows a call by minutes
but is not guaranteed. So a file delivered before `since` holds nothing wanted, while a file
delivered after `until` still can: `late_delivery` is how long after `until` files are still
read (and which extra day folders or partitions that adds). A record delivered later than
that is missed, by every engine alike.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Pair = tuple[str, str]
"""(eventSource, eventName), e.g. ("cloudtrail.amazonaws.com", "StopLogging")."""

DEFAULT_LATE_DELIVERY = dt.timedelta(hours=1)
"""Files delivered up to this long after `until` are read. CloudTrail delivers within about
5 minutes on average, "not guaranteed": `--late-delivery` changes it."""

_ACCOUNT = re.compile(r"[0-9]{12}")
# Real region names, and the made-up ones of anonymised datasets: lowercase words and digits.
_REGION = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_RELATIVE = re.compile(r"([0-9]+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
LAYOUT_PATTERN = (
    r"(?:^|/)AWSLogs/(?:o-[a-z0-9]{10,32}/)?([0-9]{12})/CloudTrail/([a-z0-9-]+)/"
    r"([0-9]{4})/([0-9]{2})/([0-9]{2})/[^/]*$"
)
"""A delivered file's path or key: groups are account, region, year, month, day. Written in
the regular-expression syntax Python and DuckDB (RE2) share: DuckDB's view uses it too."""
_LAYOUT = re.compile(LAYOUT_PATTERN)


class SelectionError(ValueError):
    """A selection that cannot be run; the message says which input and why."""


def parse_when(text: str, *, now: dt.datetime, end_of_day: bool = False) -> dt.datetime:
    """An instant in UTC from a command-line value.

    Accepts a relative age (`30d`, `12h`, `90m`, `2w`: that long before `now`), a date
    (`2024-01-31`: its start, or with `end_of_day` its end, so `--until 2024-01-31` includes
    the 31st), or an ISO 8601 date-time (`2024-01-31T12:00:00Z`, an offset, or none = UTC).
    """
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return _utc(now) - dt.timedelta(**{_UNITS[unit]: amount})
    if _DATE.fullmatch(value):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError as error:
            raise SelectionError(f"{text!r} is not a valid date: {error}") from None
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        return start + dt.timedelta(days=1) if end_of_day else start
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise SelectionError(
            f"{text!r} is neither an age (30d, 12h, 90m, 2w), a date (2024-01-31) nor an ISO 8601 "
            "date-time (2024-01-31T12:00:00Z)"
        ) from None
    return _utc(parsed)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


@dataclass(frozen=True)
class Selection:
    """The candidate records: calls of `pairs` (successful ones only with `successful_only`),
    with `since <= eventTime < until` (None = open), in `accounts` and `regions` (None = all).

    Checked on construction, so that nothing built from it (an S3 prefix, a SQL literal)
    ever sees a malformed account or region. A local replay keeps failed calls
    (`successful_only=False`): its guards report them, as they always have."""

    pairs: frozenset[Pair]
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    accounts: tuple[str, ...] | None = None
    regions: tuple[str, ...] | None = None
    successful_only: bool = True
    late_delivery: dt.timedelta = field(default=DEFAULT_LATE_DELIVERY)

    def __post_init__(self) -> None:
        if not self.pairs:
            raise SelectionError("no (eventSource, eventName) pair to select: the playbooks answer no call")
        for pair in self.pairs:
            if len(pair) != 2 or not all(isinstance(part, str) and part for part in pair):
                raise SelectionError(f"{pair!r} is not an (eventSource, eventName) pair of non-empty strings")
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is None:
                continue
            if moment.tzinfo is None:
                raise SelectionError(f"{name} must be timezone-aware (UTC)")
            object.__setattr__(self, name, moment.astimezone(dt.UTC))
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise SelectionError(f"since ({iso(self.since)}) must be before until ({iso(self.until)})")
        if self.until is not None and self.since is None:
            raise SelectionError("--until needs --since")
        if self.late_delivery < dt.timedelta(0):
            raise SelectionError("the late delivery margin cannot be negative")
        if self.accounts is not None:
            object.__setattr__(self, "accounts", checked_accounts(self.accounts))
        if self.regions is not None:
            object.__setattr__(self, "regions", checked_regions(self.regions))

    @classmethod
    def build(
        cls,
        pairs: Iterable[Pair],
        since: str | None = None,
        until: str | None = None,
        accounts: Iterable[str] | None = None,
        regions: Iterable[str] | None = None,
        *,
        successful_only: bool = True,
        now: dt.datetime | None = None,
        late_delivery: dt.timedelta = DEFAULT_LATE_DELIVERY,
    ) -> Selection:
        """A selection from command-line values (`until` defaults to now when `since` is given)."""
        moment = _utc(now or dt.datetime.now(dt.UTC))
        if until is not None and since is None:
            raise SelectionError("--until needs --since")
        return cls(
            pairs=frozenset(pairs),
            since=parse_when(since, now=moment) if since else None,
            until=(parse_when(until, now=moment, end_of_day=True) if until else moment) if since else None,
            accounts=tuple(accounts) if accounts is not None else None,
            regions=tuple(regions) if regions is not None else None,
            successful_only=successful_only,
            late_delivery=late_delivery,
        )

    @property
    def bounded(self) -> bool:
        """Whether a time range is given (S3 and Athena need one: it chooses what is read)."""
        return self.since is not None and self.until is not None

    @property
    def filters(self) -> bool:
        """Whether anything besides the pairs decides: the time, accounts, regions, success."""
        return self.bounded or self.accounts is not None or self.regions is not None or self.successful_only

    # -- delivery-time pruning, shared by every engine ----------------------------------

    def _range(self) -> tuple[dt.datetime, dt.datetime]:
        if self.since is None or self.until is None:
            raise SelectionError("give --since (an age such as 30d, or a date): it chooses which days are read")
        return self.since, self.until

    @property
    def last_delivery(self) -> dt.datetime:
        """Files delivered at or after this instant are not read."""
        return self._range()[1] + self.late_delivery

    def day_bounds(self) -> tuple[dt.date, dt.date]:
        """The first and last delivery days to read (S3 day folders, Athena partitions)."""
        return self._range()[0].date(), (self.last_delivery - dt.timedelta(microseconds=1)).date()

    def days(self) -> list[dt.date]:
        """Every delivery day to read, in order."""
        first, last = self.day_bounds()
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]

    def may_hold(self, delivered_minute: dt.datetime) -> bool:
        """Whether a file whose key says it was delivered in this minute can hold a wanted
        record: delivered at or after `since` (its minute may be the one `since` falls in)
        and before `last_delivery`. Always, without a time range."""
        if not self.bounded:
            return True
        since, _ = self._range()
        return delivered_minute + dt.timedelta(minutes=1) > since and delivered_minute < self.last_delivery

    def by_source(self) -> dict[str, list[str]]:
        """Sorted event names per sorted source: the stable form queries are written in."""
        grouped: dict[str, list[str]] = {}
        for source, name in sorted(self.pairs):
            grouped.setdefault(source, []).append(name)
        return grouped

    # -- the definition every engine is checked against ---------------------------------

    def takes(self, record: Mapping[str, Any], partition: Partition) -> bool:
        """Whether this record is a candidate, read from a file whose partition (account,
        region and day folder in CloudTrail's layout, else the record's own) is `partition`.
        The candidate SQL says the same; an engine that disagrees with this on any input is
        wrong (tests/trailguard/replay/test_engines.py)."""
        if (record.get("eventSource"), record.get("eventName")) not in self.pairs:
            return False
        if self.successful_only and record.get("errorCode") not in (None, ""):
            return False
        account, region, day = partition
        if self.accounts is not None and account not in self.accounts:
            return False
        if self.regions is not None and region not in self.regions:
            return False
        if not self.bounded:
            return True
        first, last = self.day_bounds()
        if day is None or not f"{first:%Y/%m/%d}" <= day <= f"{last:%Y/%m/%d}":
            return False
        when = event_time(record)
        since, until = self._range()
        return when is not None and since <= when < until


Partition = tuple[str | None, str | None, str | None]
"""(account, region, 'YYYY/MM/DD'), as the table's partition columns see a record."""


def layout_partition(path: str) -> Partition | None:
    """The partition of a file in CloudTrail's S3 layout, from its path or key (the account,
    region and day folders, as Athena's partition projection sees them); None outside it."""
    match = _LAYOUT.search(path.replace("\\", "/"))
    if not match:
        return None
    account, region, year, month, day = match.groups()
    return account, region, f"{year}/{month}/{day}"


def record_partition(record: Mapping[str, Any]) -> Partition:
    """A record's own partition, for a file outside the layout: its recipient account, its
    region and the day of its eventTime (text, as DuckDB's view takes them)."""
    when = record.get("eventTime")
    account, region = record.get("recipientAccountId"), record.get("awsRegion")
    return (
        account if isinstance(account, str) else None,
        region if isinstance(region, str) else None,
        when[:10].replace("-", "/") if isinstance(when, str) else None,
    )


def event_time(record: Mapping[str, Any]) -> dt.datetime | None:
    value = record.get("eventTime")
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed


@dataclass(frozen=True)
class RecordFilter:
    """`Selection.takes` for the records of one file (picklable: parallel readers get it)."""

    selection: Selection
    partition: Partition | None
    """The file's layout partition, or None: each record's own."""

    def __call__(self, record: Mapping[str, Any]) -> bool:
        return self.selection.takes(record, self.partition or record_partition(record))


def checked_accounts(values: Iterable[str]) -> tuple[str, ...]:
    """Account ids, sorted and without repeats; SelectionError for one that is not 12 digits."""
    return _checked("account", tuple(values), _ACCOUNT, "a 12-digit id")


def checked_regions(values: Iterable[str]) -> tuple[str, ...]:
    """Region names, sorted and without repeats; SelectionError for one that is not a name."""
    return _checked("region", tuple(values), _REGION, "like us-east-1")


def _checked(what: str, values: tuple[str, ...], pattern: re.Pattern[str], form: str) -> tuple[str, ...]:
    if not values:
        raise SelectionError(f"an empty list of {what}s selects nothing; leave it out to select every {what}")
    for value in values:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise SelectionError(f"{what} {value!r} is not {form}")
    return tuple(sorted(set(values)))


def iso(moment: dt.datetime) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{moment.microsecond:06d}Z" if moment.microsecond else "Z")
