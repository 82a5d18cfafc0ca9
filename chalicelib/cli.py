"""`python -m chalicelib`: the commands playbook authors and operators run.

    validate [PATH...]      check playbooks; exit 1 listing every mistake
    test [PATH...]          run the playbooks' inline tests
    replay PATH...          what the playbooks would have done about these logs
    schema                  print the playbook JSON Schema (for editors)
    policy                  print or write the Lambda role's IAM policy
    demo                    the end-to-end story on a local AWS (moto)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

import click

from chalicelib.catalog import Catalog, CatalogError
from chalicelib.settings import Settings

_SHOWN_MALFORMED = 20


def _load(paths: tuple[str, ...]) -> Catalog:
    settings = Settings.from_environment()
    try:
        return Catalog.load(paths or settings.playbooks)
    except CatalogError as error:
        click.echo(str(error), err=True)
        sys.exit(1)


@click.group(help="trailguard: automated response to dangerous AWS API calls.")
def main() -> None:
    pass


@main.command(help="Check playbooks (default: the bundled playbooks/) and list every mistake.")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def validate(paths: tuple[str, ...]) -> None:
    catalog = _load(paths)
    count = len(catalog.playbooks)
    click.echo(f"ok: {count} playbook{'s' if count != 1 else ''} valid")


@main.command("test", help="Run the inline tests of playbooks (default: the bundled playbooks/).")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
def test_command(paths: tuple[str, ...]) -> None:
    from chalicelib.playbook_tests import run_tests

    catalog = _load(paths)
    results = run_tests(catalog.playbooks, Settings.from_environment().own_role_names)
    failed = [result for result in results if not result.passed]
    for result in results:
        mark = click.style("PASS", fg="green") if result.passed else click.style("FAIL", fg="red")
        click.echo(f"{mark} {result.playbook.id}: {result.test.name}")
        if result.problem:
            click.echo(f"     {result.location}: {result.problem}")
    untested = [p.id for p in catalog.playbooks if not p.tests]
    if untested:
        click.echo(f"note: no tests in {', '.join(untested)}")
    click.echo(f"{len(catalog.playbooks)} playbooks, {len(results)} tests: {len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        files = sorted({str(result.playbook.path) for result in failed})
        click.echo(f"rerun: python -m chalicelib test {' '.join(files)}")
        sys.exit(1)


@main.command(help="Run CloudTrail logs through the playbooks, as the Lambda would, without calling AWS or Slack.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "output_format", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@click.option("--all", "include_skipped", is_flag=True, help="Also report the events a guard skipped.")
@click.option("--own-role", "own_roles", multiple=True, metavar="NAME",
              help="A role of trailguard's own, whose calls are skipped (repeatable; adds to TRAILGUARD_OWN_ROLES).")
@click.option("--playbooks", "playbook_paths", multiple=True, type=click.Path(exists=True),
              help="Playbook files or folders (default: the bundled playbooks/).")
def replay(paths: tuple[str, ...], output_format: str, include_skipped: bool, own_roles: tuple[str, ...],
           playbook_paths: tuple[str, ...]) -> None:
    from chalicelib import replay as replaying
    from chalicelib.eventfiles import iter_event_files, read_event_file

    catalog = _load(playbook_paths)
    settings = Settings.from_environment()
    files = list(iter_event_files(paths))
    out = sys.stdout
    malformed_shown = 0

    def report_malformed(error: Exception) -> None:
        nonlocal malformed_shown
        malformed_shown += 1
        if malformed_shown <= _SHOWN_MALFORMED:
            click.echo(f"malformed: {error}", err=True)

    def events() -> Iterator:
        if sys.stderr.isatty() and len(files) > 1:
            with click.progressbar(files, label="replaying", file=sys.stderr) as bar:
                for path in bar:
                    yield from read_event_file(path)
        else:
            for path in files:
                yield from read_event_file(path)

    if output_format == "table":
        replaying.write_table_header(out)
    for item in replaying.replay(events(), catalog, settings.own_role_names | set(own_roles),
                                 include_skipped=include_skipped, on_malformed=report_malformed):
        if isinstance(item, replaying.ReplayCounts):
            if output_format == "table":
                replaying.write_table_footer(item, out)
            if malformed_shown > _SHOWN_MALFORMED:
                click.echo(f"malformed: ... and {malformed_shown - _SHOWN_MALFORMED} more", err=True)
            click.echo(item.summary(), err=True)
        elif output_format == "jsonl":
            replaying.write_jsonl(item, out)
        else:
            replaying.write_table_row(item, out)


@main.command(help="Print the playbook JSON Schema (playbooks/playbook.schema.json is this output).")
def schema() -> None:
    from chalicelib.playbook_schema import SCHEMA

    click.echo(json.dumps(SCHEMA, indent=2))


@main.command(help="Print the Lambda role's IAM policy generated from the playbooks, or write it for a stage.")
@click.option("--stage", help="Write .chalice/policy-STAGE.json instead of printing.")
def policy(stage: str | None) -> None:
    from chalicelib.policy import lambda_policy

    text = json.dumps(lambda_policy(_load(())), indent=2) + "\n"
    if stage is None:
        click.echo(text, nl=False)
        return
    target = Path(".chalice") / f"policy-{stage}.json"
    target.write_text(text)
    click.echo(f"wrote {target}")


@main.command(help="Play an attacker against a local AWS (moto) and show what trailguard does.")
def demo() -> None:
    from chalicelib.demo import run_demo

    sys.exit(run_demo())
