"""CloudTrail's S3 layout: which prefixes to LIST for a selection, and what each key says.

CloudTrail delivers to (CloudTrail User Guide, "Finding your CloudTrail log files" and
"CloudTrail log file examples"):

    s3://BUCKET/[PREFIX/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/
        ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz

where `o-ORGID/` is there for an organization trail, and the time in the name is when the
file was *delivered* (in UTC, to the minute); a file "can contain records written at any
point before that time". Digest files go to `.../CloudTrail-Digest/...` and are never listed.

Listing is the cost of S3 replay at organization scale (a LIST returns 1,000 keys), so a
plan lists only what was asked for: one prefix per (account, region, day), accounts are
discovered (a delimiter LIST of `AWSLogs/` and `AWSLogs/o-*/`) only when none are given,
regions (a delimiter LIST of `.../ACCOUNT/CloudTrail/`) only when none are given. Within a
day folder keys sort by delivery time, so the first day starts after `since` (S3's
`StartAfter`) and the last day stops at `until` + late delivery instead of listing the rest.

An organization trail's layout is chosen by the location (`s3://BUCKET/PREFIX/AWSLogs/o-ID/`)
or `organization=`: with accounts given and no organization, the plain layout is listed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from trailguard.replay.selection import Selection, SelectionError

S3Client = Any

_ORGANIZATION = re.compile(r"o-[a-z0-9]{10,32}")
_ACCOUNT = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

_NAME = re.compile(r"([0-9]{12})_CloudTrail_([a-z0-9-]+)_([0-9]{8}T[0-9]{4}Z)_[^/]*$")


@dataclass(frozen=True)
class Location:
    """Where a trail delivers: a bucket, the trail's prefix ('' or ending in '/'), and the
    organization id for an organization trail."""

    bucket: str
    prefix: str = ""
    organization: str | None = None

    def __post_init__(self) -> None:
        if not self.bucket or "/" in self.bucket:
            raise SelectionError(f"bucket name {self.bucket!r} is not valid")
        if self.prefix and not self.prefix.endswith("/"):
            object.__setattr__(self, "prefix", self.prefix + "/")
        if self.organization is not None and not _ORGANIZATION.fullmatch(self.organization):
            raise SelectionError(f"organization {self.organization!r} is not an id like o-a1b2c3d4e5")

    @classmethod
    def from_url(cls, url: str, organization: str | None = None) -> Location:
        """`s3://BUCKET[/PREFIX][/AWSLogs[/o-ID]]`: the part from `AWSLogs` on may be given."""
        if not url.startswith("s3://"):
            raise SelectionError(f"{url!r} is not an s3:// URL")
        bucket, _, path = url[len("s3://") :].partition("/")
        parts = [part for part in path.split("/") if part]
        if "AWSLogs" in parts:
            at = parts.index("AWSLogs")
            rest = parts[at + 1 :]
            if len(rest) > 1 or (rest and not _ORGANIZATION.fullmatch(rest[0])):
                raise SelectionError(
                    f"{url!r}: give the trail's location up to AWSLogs/ or AWSLogs/o-ORGID/; accounts, "
                    "regions and days are chosen with the selection"
                )
            if rest:
                if organization and organization != rest[0]:
                    raise SelectionError(f"{url!r} names organization {rest[0]}, not {organization}")
                organization = rest[0]
            parts = parts[:at]
        return cls(bucket, "/".join(parts) + "/" if parts else "", organization)

    @property
    def logs(self) -> str:
        """The `AWSLogs/` folder."""
        return f"{self.prefix}AWSLogs/"

    def account_root(self, account: str, organization: str | None = None) -> str:
        org = organization or self.organization
        return f"{self.logs}{org}/{account}/" if org else f"{self.logs}{account}/"


@dataclass(frozen=True, order=True)
class DayPrefix:
    """One day folder of one account and region: the unit of listing."""

    account: str
    region: str
    day: dt.date
    prefix: str


@dataclass(frozen=True)
class LogObject:
    """A delivered log file, as its key describes it."""

    key: str
    size: int
    account: str
    region: str
    delivered: dt.datetime
    """The delivery minute from the file name (UTC)."""


@dataclass
class ListingReport:
    """What listing cost and what it passed over (for a summary line and for tests)."""

    list_calls: int = 0
    prefixes: int = 0
    objects: int = 0
    bytes: int = 0
    outside_window: int = 0
    unrecognised: list[str] | None = None

    def ignore(self, key: str) -> None:
        if self.unrecognised is None:
            self.unrecognised = []
        self.unrecognised.append(key)


def day_prefixes(
    location: Location,
    accounts: Iterable[tuple[str | None, str]],
    regions_of: dict[str, tuple[str, ...]] | tuple[str, ...],
    days: Iterable[dt.date],
) -> list[DayPrefix]:
    """Every (account, region, day) folder to list, sorted; no I/O.

    `accounts` are (organization or None, account) pairs; `regions_of` is one tuple for all
    accounts or a tuple per account (as discovered)."""
    wanted_days = list(days)
    result = []
    for organization, account in accounts:
        regions = regions_of if isinstance(regions_of, tuple) else regions_of.get(account, ())
        root = location.account_root(account, organization)
        for region in regions:
            for day in wanted_days:
                prefix = f"{root}CloudTrail/{region}/{day:%Y/%m/%d}/"
                result.append(DayPrefix(account, region, day, prefix))
    return sorted(result)


def plan(
    client: S3Client, location: Location, selection: Selection, report: ListingReport | None = None
) -> list[DayPrefix]:
    """The day folders to list for `selection`, discovering accounts and regions only when
    the selection leaves them open."""
    report = report if report is not None else ListingReport()
    if selection.accounts is not None:
        accounts = [(location.organization, account) for account in selection.accounts]
    else:
        accounts = _discover_accounts(client, location, report)
    if selection.regions is not None:
        regions: dict[str, tuple[str, ...]] | tuple[str, ...] = selection.regions
    else:
        regions = {
            account: tuple(
                sorted(
                    name
                    for name in _folders(
                        client, location.bucket, f"{location.account_root(account, org)}CloudTrail/", report
                    )
                    if _REGION.fullmatch(name)
                )
            )
            for org, account in accounts
        }
    prefixes = day_prefixes(location, accounts, regions, selection.days())
    report.prefixes = len(prefixes)
    return prefixes


def _discover_accounts(client: S3Client, location: Location, report: ListingReport) -> list[tuple[str | None, str]]:
    """(organization or None, account) of every account folder: those directly under
    `AWSLogs/` and those under each `AWSLogs/o-*/` (or under the given organization only)."""
    if location.organization:
        accounts: list[tuple[str | None, str]] = []
        organizations = [location.organization]
    else:
        top = _folders(client, location.bucket, location.logs, report)
        accounts = [(None, name) for name in top if _ACCOUNT.fullmatch(name)]
        organizations = [name for name in top if _ORGANIZATION.fullmatch(name)]
    for organization in organizations:
        under = _folders(client, location.bucket, f"{location.logs}{organization}/", report)
        accounts += [(organization, name) for name in under if _ACCOUNT.fullmatch(name)]
    return sorted(accounts, key=lambda pair: (pair[1], pair[0] or ""))


def _folders(client: S3Client, bucket: str, prefix: str, report: ListingReport) -> list[str]:
    """The names of the folders directly under `prefix` (a delimiter LIST, paginated)."""
    names = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        report.list_calls += 1
        for common in page.get("CommonPrefixes", []):
            names.append(common["Prefix"][len(prefix) :].rstrip("/"))
    return names


def list_objects(
    client: S3Client,
    bucket: str,
    prefixes: Iterable[DayPrefix],
    selection: Selection,
    report: ListingReport | None = None,
    page_size: int = 1000,
    workers: int = 1,
    on_folder: Callable[[DayPrefix], None] = lambda folder: None,
) -> Iterator[LogObject]:
    """The log files under `prefixes` whose delivery time may hold a wanted record, in
    prefix then key order. Keys that do not follow CloudTrail's file name are not read
    (they are noted in `report.unrecognised`): nothing but CloudTrail writes there.

    An organization's month is tens of thousands of day folders, one LIST each at least:
    `workers` folders are listed at once, each whole (a day's keys), and handed over in
    order; `on_folder` is called once a folder's files are all handed over (progress)."""
    report = report if report is not None else ListingReport()
    if workers <= 1:
        for folder in prefixes:
            yield from _merged(_list_folder(client, bucket, folder, selection, page_size), report)
            on_folder(folder)
        return
    from concurrent.futures import Future, ThreadPoolExecutor

    in_flight: deque[tuple[DayPrefix, Future[tuple[list[LogObject], ListingReport]]]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-list") as pool:
        try:
            for folder in prefixes:
                if len(in_flight) >= workers:
                    done, future = in_flight.popleft()
                    yield from _merged(future.result(), report)
                    on_folder(done)
                in_flight.append((folder, pool.submit(_list_folder, client, bucket, folder, selection, page_size)))
            while in_flight:
                done, future = in_flight.popleft()
                yield from _merged(future.result(), report)
                on_folder(done)
        finally:
            for _, future in in_flight:
                future.cancel()


def _merged(found: tuple[list[LogObject], ListingReport], report: ListingReport) -> list[LogObject]:
    objects, own = found
    report.list_calls += own.list_calls
    report.objects += own.objects
    report.bytes += own.bytes
    report.outside_window += own.outside_window
    for key in own.unrecognised or []:
        report.ignore(key)
    return objects


def _list_folder(
    client: S3Client, bucket: str, folder: DayPrefix, selection: Selection, page_size: int
) -> tuple[list[LogObject], ListingReport]:
    """One day folder's files that may hold a wanted record, and what listing it cost."""
    report = ListingReport()
    found: list[LogObject] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": folder.prefix, "PaginationConfig": {"PageSize": page_size}}
    if selection.since is not None and folder.day == selection.since.date():
        kwargs["StartAfter"] = _start_after(folder, selection.since)
    for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
        report.list_calls += 1
        for item in page.get("Contents", []):
            key = item["Key"]
            described = describe_key(key)
            if described is None:
                report.ignore(key)
                continue
            account, region, delivered = described
            if delivered >= selection.last_delivery:
                report.outside_window += 1
                return found, report  # keys sort by delivery time: the rest of the folder is later
            if not selection.may_hold(delivered):
                report.outside_window += 1
                continue
            report.objects += 1
            report.bytes += item["Size"]
            found.append(LogObject(key, item["Size"], account, region, delivered))
    return found, report


def _start_after(folder: DayPrefix, since: dt.datetime) -> str:
    """A StartAfter that skips exactly the files delivered in minutes before `since`'s
    minute ('~' sorts after the letters and digits of the unique part)."""
    skipped_up_to = (since - dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    return f"{folder.prefix}{folder.account}_CloudTrail_{folder.region}_{skipped_up_to:%Y%m%dT%H%M}Z_~"


def describe_key(key: str) -> tuple[str, str, dt.datetime] | None:
    """(account, region, delivery minute) from a log file's key, or None if it is not one."""
    match = _NAME.search(key)
    if not match:
        return None
    stamp = dt.datetime.strptime(match.group(3), "%Y%m%dT%H%MZ").replace(tzinfo=dt.UTC)
    return match.group(1), match.group(2), stamp
