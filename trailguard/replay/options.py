"""The command-line options of `replay` at scale and of `athena-ddl`, kept with the package
so that the CLI module only wires them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from trailguard.replay.compare import KINDS

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _apply(options: list[Decorator]) -> Decorator:
    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def listed(values: tuple[str, ...]) -> tuple[str, ...] | None:
    """Repeatable and comma-separated values, or None when none were given."""
    found = tuple(part.strip() for value in values for part in value.split(",") if part.strip())
    return found or None


replay_selection_options = _apply(
    [
        click.option(
            "--since",
            metavar="WHEN",
            help="Only calls made since then: an age (30d, 12h, 90m, 2w), a date (2024-01-31) or an ISO 8601 "
            "date-time. Needed for S3 and Athena (it chooses the days read).",
        ),
        click.option(
            "--until",
            metavar="WHEN",
            help="Only calls made before then (default: now); a date includes that whole day.",
        ),
        click.option(
            "--accounts",
            multiple=True,
            metavar="IDS",
            help="Only these accounts (comma-separated or repeated): their S3 prefixes or partitions.",
        ),
        click.option(
            "--regions",
            multiple=True,
            metavar="NAMES",
            help="Only these regions (comma-separated or repeated).",
        ),
        click.option(
            "--late-delivery",
            default="1h",
            show_default=True,
            metavar="AGE",
            help="How long after --until files delivered late are still read (CloudTrail delivers within "
            "minutes, without a guarantee).",
        ),
    ]
)

replay_scale_options = _apply(
    [
        click.option(
            "--engine",
            type=click.Choice(["auto", "duckdb", "python"]),
            default="auto",
            show_default=True,
            help="Who reads CloudTrail's delivery files: DuckDB (the candidate query), or the pure-Python reader; "
            "auto takes the Python reader for a few MB and when DuckDB is not installed.",
        ),
        click.option(
            "--workers",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="S3 objects fetched at once (local files: one process per CPU, up to 8).",
        ),
        click.option("--athena", is_flag=True, help="Select the candidates with Athena (no INPUTS; needs --since)."),
        click.option(
            "--athena-database", default="default", show_default=True, help="The CloudTrail table's database."
        ),
        click.option("--athena-table", default="cloudtrail_logs", show_default=True, help="The CloudTrail table."),
        click.option("--athena-workgroup", default="primary", show_default=True, help="The Athena workgroup."),
        click.option(
            "--athena-output",
            metavar="S3_URL",
            help="Where Athena writes results (default: the workgroup's result location).",
        ),
        click.option(
            "--compare",
            "compare_with",
            metavar="GIT_REF|FOLDER",
            help="Replay the same events through these playbooks too (a git ref of the playbook folders, or a "
            "folder of playbooks) and print only the differences; exit 1 if there are any (see --fail-on).",
        ),
        click.option(
            "--markdown",
            metavar="FILE",
            help="With --compare: also write the differences as Markdown, for a pull-request comment ('-': stdout "
            "instead of the table).",
        ),
        click.option(
            "--fail-on",
            multiple=True,
            type=click.Choice([*(kind.replace(" ", "-") for kind in KINDS), "nothing"]),
            help="With --compare: the kinds of difference that make the exit status 1 (repeatable; default: all).",
        ),
    ]
)

athena_ddl_options = _apply(
    [
        click.argument("location"),
        click.option(
            "--start",
            required=True,
            metavar="DATE",
            help="The first day partitions are projected for (the trail's first delivery), e.g. 2024-01-01.",
        ),
        click.option(
            "--accounts",
            multiple=True,
            metavar="IDS",
            help="The accounts (an enum); without them, accounts are injected: each query must list its own.",
        ),
        click.option("--regions", multiple=True, metavar="NAMES", help="The regions (default: every commercial one)."),
        click.option("--database", help="The database to create the table in (default: the session's)."),
        click.option("--table", default="cloudtrail_logs", show_default=True, help="The table's name."),
    ]
)
