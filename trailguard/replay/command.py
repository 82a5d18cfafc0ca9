"""`trailguard replay` and `trailguard athena-ddl`: the inputs read, the output written.

Exit status: 0 when the playbooks load (even if some records were malformed); 2 for a
usage mistake (what was wrong is said); 1 when an S3 or Athena call fails or a worker process
dies, and with `--compare` when a difference of the kinds `--fail-on` names was found.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from chalicelib.events.record import EventError
from chalicelib.named_lists import NamedLists
from chalicelib.playbooks.catalog import Catalog, CatalogError
from chalicelib.respond.controls import Controls
from chalicelib.respond.guards import OwnIdentities
from chalicelib.respond.responder import NO_CONTROLS
from trailguard import replay as replaying
from trailguard.replay import compare as comparing
from trailguard.replay import run
from trailguard.replay.deciding import CompareDecider, Decider, ReplayDecider
from trailguard.replay.options import listed
from trailguard.replay.selection import Selection, SelectionError, parse_when

SHOWN_MALFORMED = 20
MAX_LOCAL_WORKERS = 8


class UsageError(Exception):
    """A mistake in the command line: said, exit 2."""


@dataclass
class ReplayRequest:
    inputs: tuple[str, ...]
    catalog: Catalog
    playbook_paths: tuple[str, ...]
    only: tuple[str, ...]
    own: OwnIdentities
    lists: NamedLists
    output_format: str
    include_skipped: bool
    since: str | None = None
    until: str | None = None
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    late_delivery: str = "1h"
    engine: str = "auto"
    workers: int = 8
    athena: bool = False
    athena_database: str = "default"
    athena_table: str = "cloudtrail_logs"
    athena_workgroup: str = "primary"
    athena_output: str | None = None
    compare_with: str | None = None
    markdown: str | None = None
    fail_on: tuple[str, ...] = ()
    controls: Controls = NO_CONTROLS
    """The organization's scope and mode ceilings (its settings file), on both sides of --compare."""
    stage_playbooks: tuple[Path, ...] = ()
    """The stage's shipped playbook folders (without --playbooks): read at the ref by --compare GIT_REF."""


def run_replay(request: ReplayRequest) -> int:
    from trailguard.replay.engines import EngineError
    from trailguard.replay.workers import WorkerDied

    try:
        return _run(request)
    except (UsageError, SelectionError, EngineError) as error:
        click.echo(f"error: {error}", err=True)
        return 2
    except WorkerDied as error:
        click.echo(f"\nerror: {error}", err=True)
        return 1


class Malformed:
    """Reports malformed records on stderr: the first SHOWN_MALFORMED, then how many more."""

    def __init__(self) -> None:
        self.seen = 0

    def __call__(self, error: Exception) -> None:
        self.seen += 1
        if self.seen <= SHOWN_MALFORMED:
            click.echo(f"malformed: {error}", err=True)

    def close(self) -> None:
        if self.seen > SHOWN_MALFORMED:
            click.echo(f"malformed: ... and {self.seen - SHOWN_MALFORMED} more", err=True)


def _run(request: ReplayRequest) -> int:
    s3_urls = [value for value in request.inputs if value.startswith("s3://")]
    local_paths = [value for value in request.inputs if not value.startswith("s3://")]
    if request.athena and request.inputs:
        raise UsageError("--athena reads the CloudTrail table, not INPUTS: leave them out")
    if not request.athena and not request.inputs:
        raise UsageError("give files, folders or an s3:// location to replay (or --athena)")
    if s3_urls and (local_paths or len(s3_urls) > 1):
        raise UsageError("give one s3:// location, or local files and folders, not both")
    for path in local_paths:
        if not os.path.exists(path):
            raise UsageError(f"no such file or folder: {path}")
    old_catalog = _compared_catalog(request) if request.compare_with else None
    pairs = request.catalog.answered() | (old_catalog.answered() if old_catalog else frozenset())
    remote = bool(s3_urls) or request.athena
    if remote and not request.since:
        raise UsageError("give --since (an age such as 30d, or a date): it chooses which days are read")
    selection = Selection.build(
        pairs,
        request.since,
        request.until,
        listed(request.accounts),
        listed(request.regions),
        # Failed calls: a replay reports them as its guards skip them, as it always has;
        # Athena and --compare leave them out (no playbook answers a failed call).
        successful_only=request.athena or old_catalog is not None,
        late_delivery=_age(request.late_delivery, "--late-delivery"),
    )
    malformed = Malformed()
    notes: list[str] = []
    decide: Decider
    if old_catalog is not None:
        context = (request.own, request.lists, request.controls)
        decide = CompareDecider(comparing.Side(old_catalog, *context), comparing.Side(request.catalog, *context))
    else:
        decide = ReplayDecider(request.catalog, request.own, request.lists, request.controls)
    with run.shown_on(run.stderr_terminal()) as shown:
        items = _items(request, selection, s3_urls, local_paths, shown, malformed, notes, decide)
        if isinstance(decide, CompareDecider):
            status = _compare(request, decide, items, malformed)
        else:
            status = _replay(request, items, malformed, shown)
    for note in notes:
        click.echo(note, err=True)
    return status


def _items(
    request: ReplayRequest,
    selection: Selection,
    s3_urls: list[str],
    local_paths: list[str],
    shown: run.Shown,
    malformed: Malformed,
    notes: list[str],
    decide: Decider,
) -> Iterator[Any]:
    if request.athena:
        import boto3

        options = run.AthenaOptions(
            request.athena_database, request.athena_table, request.athena_workgroup, request.athena_output
        )
        yield from _remote(lambda: run.athena(selection, options, boto3.client("athena"), notes))
        return
    if s3_urls:
        import boto3

        from trailguard.replay.s3fetch import client_config

        summary = run.S3Summary()
        client = boto3.client("s3", config=client_config(request.workers))
        yield from _remote(
            lambda: run.s3(
                s3_urls[0],
                selection,
                request.engine,
                request.workers,
                shown,
                client,
                summary,
                malformed,
                decide,
                processes=_processes(),
            )
        )
        notes.append(summary.line())
        return
    yield from run.local(local_paths, selection, request.engine, _processes(), shown, decide)


def _processes() -> int:
    """The processes that read and decide files: one per core (at most MAX_LOCAL_WORKERS)."""
    return min(os.cpu_count() or 1, MAX_LOCAL_WORKERS)


def _remote(items: Any) -> Iterator[Any]:
    """The items of an S3 or Athena read; an AWS error ends the command with its reason."""
    from botocore.exceptions import BotoCoreError, ClientError

    from trailguard.replay.athena import AthenaQueryError

    try:
        yield from items()
    except (ClientError, BotoCoreError, AthenaQueryError, TimeoutError) as error:
        from chalicelib.aws.errors import describe_error

        click.echo(f"\nerror: {describe_error(error)}", err=True)
        sys.exit(1)


def _replay(request: ReplayRequest, items: Iterator[Any], malformed: Malformed, shown: run.Shown) -> int:
    out = sys.stdout
    if request.output_format == "table":
        replaying.write_table_header(out)
    for item in replaying.replay(
        items,
        request.catalog,
        request.own,
        include_skipped=request.include_skipped,
        on_malformed=malformed,
        lists=request.lists,
        controls=request.controls,
    ):
        if isinstance(item, replaying.ReplayCounts):
            shown.close()
            if request.output_format == "table":
                replaying.write_table_footer(item, out)
            malformed.close()
            click.echo(item.summary(), err=True)
        elif request.output_format == "jsonl":
            replaying.write_jsonl(item, out)
        else:
            replaying.write_table_row(item, out)
    return 0


def _compare(request: ReplayRequest, decide: CompareDecider, items: Iterator[Any], malformed: Malformed) -> int:
    def reported(source: Iterator[Any]) -> Iterator[Any]:
        for item in source:
            if isinstance(item, EventError):
                malformed(item)
            yield item

    comparison = comparing.compare(reported(items), decide.old, decide.new)
    title = f"What this playbook change would do (against {request.compare_with})"
    markdown = comparing.to_markdown(comparison, title=title) if request.markdown else None
    if request.markdown == "-":
        sys.stdout.write(markdown or "")
    elif request.output_format == "jsonl":
        comparing.write_jsonl(comparison, sys.stdout)
    else:
        comparing.write_table(comparison, sys.stdout)
    if request.markdown and request.markdown != "-":
        Path(request.markdown).write_text(markdown or "")
    malformed.close()
    click.echo(comparison.summary(), err=True)
    kinds = [kind.replace("-", " ") for kind in request.fail_on] or list(comparing.KINDS)
    return comparing.exit_code(comparison, [kind for kind in kinds if kind != "nothing"])


def _age(text: str, option: str) -> dt.timedelta:
    now = dt.datetime.now(dt.UTC)
    try:
        return now - parse_when(text, now=now)
    except SelectionError as error:
        raise UsageError(f"{option}: {error}") from None


# -- the other side of --compare --------------------------------------------------------


def _compared_catalog(request: ReplayRequest) -> Catalog:
    """The playbooks to compare with: a folder; or at a git ref, the `--playbooks` given, else
    the stage's as the stage loads them (its shipped folders and the organization's own
    folders, each as it is at the ref; an organization's playbook replacing a shipped one of
    the same id, the disabled ones left out, by the current settings file)."""
    reference = request.compare_with
    assert reference is not None
    what = f"--compare {reference}"
    if os.path.isdir(reference):
        return _catalog([reference], request.only, what)
    from chalicelib.organization.extensions import load_catalog
    from chalicelib.settings import ConfigurationError, Settings

    scratch = Path(tempfile.mkdtemp(prefix="trailguard-compare-"))
    atexit.register(shutil.rmtree, scratch, True)  # the files are read until the comparison ends
    if request.playbook_paths:
        return _catalog([str(_at_ref(Path(p), reference, scratch)) for p in request.playbook_paths], request.only, what)
    organization = request.controls.organization
    shipped = request.stage_playbooks or Settings.from_environment().playbooks
    theirs = tuple(_at_ref(folder, reference, scratch) for folder in organization.playbook_folders)
    try:
        catalog = load_catalog(
            tuple(_at_ref(Path(path), reference, scratch) for path in shipped),
            dataclasses.replace(organization, playbook_folders=theirs),
            with_tests=False,
        )
    except ConfigurationError as error:
        raise UsageError(f"{what}: {error}") from None
    return Catalog([p for p in catalog.playbooks if p.id in request.only]) if request.only else catalog


def _catalog(paths: list[str], only: tuple[str, ...], what: str) -> Catalog:
    try:
        catalog = Catalog.load(paths)
    except CatalogError as error:
        raise UsageError(f"{what}: {error}") from None
    return Catalog([p for p in catalog.playbooks if p.id in only]) if only else catalog


def _at_ref(path: Path, reference: str, scratch: Path) -> Path:
    """`path` (a playbook file or folder in a git checkout) as it is at `reference`."""
    folder = path if path.is_dir() else path.parent

    def git(*args: str, binary: bool = False, where: Path = folder) -> Any:
        result = subprocess.run(["git", "-C", str(where), *args], capture_output=True, check=False)
        if result.returncode != 0:
            raise UsageError(
                f"--compare {reference}: {path} at {reference}: "
                f"{result.stderr.decode(errors='replace').strip() or 'git failed'}"
            )
        return result.stdout if binary else result.stdout.decode().strip()

    top = Path(git("rev-parse", "--show-toplevel"))
    relative = path.resolve().relative_to(top.resolve())
    archive = git("archive", "--format=tar", reference, "--", relative.as_posix(), binary=True, where=top)
    target = scratch / str(len(list(scratch.iterdir())))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / relative


# -- athena-ddl ------------------------------------------------------------------------


def athena_ddl(
    location: str, start: str, accounts: tuple[str, ...], regions: tuple[str, ...], database: str | None, table: str
) -> int:
    from trailguard.replay.athena import DEFAULT_REGIONS, ddl
    from trailguard.replay.s3layout import Location

    try:
        first = parse_when(start, now=dt.datetime.now(dt.UTC)).date()
        text = ddl(
            Location.from_url(location),
            start=first,
            table=table,
            database=database,
            accounts=listed(accounts),
            regions=listed(regions) or DEFAULT_REGIONS,
        )
    except SelectionError as error:
        click.echo(f"error: {error}", err=True)
        return 2
    click.echo(text + ";")
    return 0
