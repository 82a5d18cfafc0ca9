"""`python -m trailguard`: the commands playbook authors and operators run.

validate [PATH...]      check playbooks; exit 1 listing every mistake
test [PATH...]          run the playbooks' inline tests (--watch: again on every change)
new ID --from FILE      a playbook skeleton, with tests, from a real CloudTrail record
replay INPUT...         what the playbooks would have done about these logs (files, s3://, --athena;
                        --compare GIT_REF: what a playbook change would do)
athena-ddl LOCATION     the Athena table of a trail's logs, for replay --athena
schema                  print the playbook JSON Schema (for editors)
policy                  print the roles' IAM policies, the member template; --write a stage's files
docs                    write docs/playbooks.md and docs/slack-messages.md from the code
bootstrap --stage S     create the stage's table (with TTL and recovery), integrity key and Slack
                        placeholders and, once deployed (and after every deploy), its dead-letter
                        queues, alarms, dashboard and the API's access logs; idempotently
                        (--check: report what a deploy undid)
redrive --stage S       hand a function's dead-letter queue back to the deployed function
slack-manifest --stage S    the stage's Slack app manifest
incidents --stage S     list open incidents, or show one with its history (--ocsf: as OCSF findings)
demo [--keep-running]   the end-to-end story on a local AWS (moto) and Slack stub
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from chalicelib import __version__
from chalicelib.incidents.store import LISTED_STATES
from chalicelib.organization.model import Organization
from chalicelib.playbooks.catalog import Catalog
from chalicelib.respond.guards import OwnIdentities
from chalicelib.settings import ConfigurationError, Settings
from trailguard.replay.options import athena_ddl_options, replay_scale_options, replay_selection_options


@dataclass(frozen=True)
class Loaded:
    """What a command runs with: the stage's settings, its organization settings file, the playbooks."""

    settings: Settings
    organization: Organization
    catalog: Catalog


def _context(stage: str | None, settings_file: str | None = None) -> tuple[Settings, Organization]:
    """The settings of `stage` (.chalice/config.json) or of this shell, with the organization
    settings file they name (or `settings_file`); exit 1 listing every mistake."""
    from chalicelib.organization.extensions import stage_organization

    settings = _stage_settings(stage) if stage else _environment_settings()
    if settings_file:
        settings = dataclasses.replace(settings, organization_file=Path(settings_file).resolve())
    try:
        return settings, stage_organization(settings)
    except ConfigurationError as error:
        click.echo(str(error), err=True)
        sys.exit(1)


def _environment_settings() -> Settings:
    try:
        return Settings.from_environment()
    except ConfigurationError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


def _load(
    paths: tuple[str, ...], stage: str | None = None, settings_file: str | None = None, with_tests: bool = True
) -> Loaded:
    """The playbooks under `paths`, else the stage's (shipped and the organization's, less the
    disabled); the organization's actions are imported either way. Exit 1 listing every mistake."""
    from chalicelib.organization.extensions import import_actions, load_catalog

    settings, organization = _context(stage, settings_file)
    try:
        if paths:
            import_actions(organization)
            catalog = Catalog.load(paths, with_tests)
        else:
            catalog = load_catalog(settings.playbooks, organization, with_tests=with_tests)
    except ConfigurationError as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    return Loaded(settings, organization, catalog)


def stage_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--stage and --settings: whose organization settings (lists, scope, ceilings, extensions) apply."""
    command = click.option(
        "--settings",
        "settings_file",
        type=click.Path(exists=True, dir_okay=False),
        help="An organization settings file to use (default: the stage's, or TRAILGUARD_SETTINGS_FILE).",
    )(command)
    return click.option(
        "--stage", help="A stage of .chalice/config.json: its settings file, playbooks and actions apply."
    )(command)


class OperatorGroup(click.Group):
    """Commands whose common mistakes (no region, no credentials, no table, a setting with a
    typo) end in one line and an exit status, not a traceback (`operator_errors`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as error:
            from trailguard.operator_errors import explain

            explained = explain(error, ctx.meta.get("trailguard.context"))
            if explained is None:
                raise
            line, status = explained
            click.echo(line, err=True)
            sys.exit(status)


def _remember_context(**context: Any) -> None:
    """What a one-line error should name (the stage, its table), for `OperatorGroup`."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta["trailguard.context"] = {**ctx.meta.get("trailguard.context", {}), **context}


@click.group(cls=OperatorGroup, help="trailguard: automated response to dangerous AWS API calls.")
@click.version_option(__version__, prog_name="trailguard")
def main() -> None:
    from chalicelib.playbooks import precompiled

    precompiled.remember_in(precompiled.cache_folder())  # compiled playbooks, as Python keeps __pycache__


@main.command(
    help="Check playbooks (default: the bundled playbooks/, and with --stage the organization's) and the "
    "organization settings file, and list every mistake."
)
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@stage_options
def validate(paths: tuple[str, ...], stage: str | None, settings_file: str | None) -> None:
    loaded = _load(paths, stage, settings_file)
    count = len(loaded.catalog.playbooks)
    for playbook_id, (shipped, theirs) in sorted(loaded.catalog.overrides.items()):
        click.echo(f"note: {theirs} replaces the shipped playbook {playbook_id} ({shipped})")
    if loaded.organization.disabled:
        click.echo(f"note: disabled by {loaded.organization.where}: {', '.join(loaded.organization.disabled)}")
    click.echo(f"ok: {count} playbook{'s' if count != 1 else ''} valid")


@main.command(
    "test",
    help="Run the inline tests of playbooks (default: the bundled playbooks/). With --stage, as the stage "
    "would decide: its organization's playbooks, scope and mode ceilings apply.",
)
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--watch", is_flag=True, help="Run them again whenever a playbook file changes (Ctrl-C stops).")
@stage_options
def test_command(paths: tuple[str, ...], watch: bool, stage: str | None, settings_file: str | None) -> None:
    if not watch:
        sys.exit(_run_tests(paths, stage, settings_file))
    import time

    from trailguard.authoring import watched_files

    roots = [Path(p) for p in paths] or list(Settings.from_environment().playbooks)
    seen: dict[Path, float] = {}
    try:
        while True:
            current = watched_files(roots)
            if current != seen:
                if seen:
                    changed = sorted(str(f) for f in set(current) | set(seen) if current.get(f) != seen.get(f))
                    click.echo(f"\nchanged: {', '.join(changed)}")
                seen = current
                _run_tests(paths, stage, settings_file)
                click.echo("watching for changes (Ctrl-C stops)")
            time.sleep(0.5)
    except KeyboardInterrupt:
        return


def _run_tests(paths: tuple[str, ...], stage: str | None = None, settings_file: str | None = None) -> int:
    """Run the tests once and report them; 0 when all pass, 1 otherwise (a load error included)."""
    from chalicelib.respond.controls import Controls
    from trailguard.playbook_tests import run_tests

    try:
        loaded = _load(paths, stage, settings_file)
    except SystemExit:
        return 1
    catalog, settings = loaded.catalog, loaded.settings
    results = run_tests(catalog.playbooks, OwnIdentities.of(settings), Controls(loaded.organization))
    failed = [result for result in results if not result.passed]
    for result in results:
        mark = click.style("PASS", fg="green") if result.passed else click.style("FAIL", fg="red")
        click.echo(f"{mark} {result.playbook.id}: {result.test.name}")
        if result.problem:
            click.echo(f"     {result.location}: {result.problem}")
    untested = [p.id for p in catalog.playbooks if not p.tests]
    if untested:
        click.echo(f"note: no tests in {', '.join(untested)}")
    passed = len(results) - len(failed)
    click.echo(f"{len(catalog.playbooks)} playbooks, {len(results)} tests: {passed} passed, {len(failed)} failed")
    if failed:
        files = sorted({str(result.playbook.path) for result in failed})
        click.echo(f"rerun: python -m trailguard test {' '.join(files)}   (or add --watch)")
        return 1
    return 0


@main.command(
    help="Write a playbook skeleton answering the call in EVENT_FILE (a CloudTrail record, an "
    "EventBridge event or a CloudTrail log file), with its first tests taken from that record."
)
@click.argument("playbook_id")
@click.option("--from", "source", required=True, type=click.Path(exists=True, dir_okay=False), help="The event file.")
@click.option("--event-name", help="Which record of the file (default: its first successful write call).")
@click.option("--event-id", help="Which record of the file, by eventID.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write PLAYBOOK_ID.yaml (default: the bundled playbooks/).",
)
@click.option("--force", is_flag=True, help="Replace an existing file.")
def new(
    playbook_id: str, source: str, event_name: str | None, event_id: str | None, out_dir: str | None, force: bool
) -> None:
    from chalicelib.settings import PROJECT_PLAYBOOKS
    from trailguard.authoring import AuthoringError, write_skeleton

    folder = Path(out_dir) if out_dir else PROJECT_PLAYBOOKS
    folder.mkdir(parents=True, exist_ok=True)
    try:
        target, event = write_skeleton(
            playbook_id, Path(source), folder, event_name=event_name, event_id=event_id, force=force
        )
    except AuthoringError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    click.echo(f"wrote {target}: {event.source} {event.name}, notify mode, 2 tests from event {event.event_id}")
    click.echo(f"next: edit it, then python -m trailguard test --watch {target}")


@main.command(
    help="Run CloudTrail logs through the playbooks, as the Lambda would, without calling AWS or Slack. INPUTS are "
    "files and folders, or the S3 location a trail delivers to (s3://BUCKET/PREFIX, or .../AWSLogs/o-ORGID/ for an "
    "organization trail); with --athena, none: the CloudTrail table is queried. See docs/replay.md."
)
@click.argument("inputs", nargs=-1)
@click.option("--format", "output_format", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@click.option("--all", "include_skipped", is_flag=True, help="Also report the events a guard skipped.")
@click.option(
    "--own-role",
    "own_roles",
    multiple=True,
    metavar="NAME",
    help="A function role of trailguard's own in the central account, whose calls there are skipped "
    "(repeatable; adds to TRAILGUARD_OWN_ROLES).",
)
@click.option(
    "--central-account",
    metavar="ID",
    help="The account trailguard's function roles live in (default: TRAILGUARD_CENTRAL_ACCOUNT); without "
    "it, no call is taken for a function role's.",
)
@click.option(
    "--playbooks",
    "playbook_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Playbook files or folders (default: the bundled playbooks/).",
)
@click.option(
    "--playbook",
    "only",
    multiple=True,
    metavar="ID",
    help="Replay only this playbook (repeatable): what would it have done?",
)
@click.option(
    "--trusted-account",
    "trusted_accounts",
    multiple=True,
    metavar="ID",
    help="An account of the organization, named_list('trusted_accounts') (repeatable; adds to the settings "
    "file's list). Each event's own account always is.",
)
@click.option(
    "--trusted-organization",
    "trusted_organizations",
    multiple=True,
    metavar="ID",
    help="An AWS Organizations id of the organization, named_list('trusted_organizations') (repeatable; adds "
    "to the settings file's list).",
)
@replay_selection_options
@replay_scale_options
@stage_options
def replay(
    inputs: tuple[str, ...],
    output_format: str,
    include_skipped: bool,
    own_roles: tuple[str, ...],
    central_account: str | None,
    playbook_paths: tuple[str, ...],
    only: tuple[str, ...],
    trusted_accounts: tuple[str, ...],
    trusted_organizations: tuple[str, ...],
    stage: str | None,
    settings_file: str | None,
    **scale: Any,
) -> None:
    from chalicelib.respond.controls import Controls
    from trailguard.replay.command import ReplayRequest, run_replay

    loaded = _load(playbook_paths, stage, settings_file, with_tests=False)
    catalog, settings = loaded.catalog, loaded.settings
    if only:
        unknown = sorted(set(only) - {p.id for p in catalog.playbooks})
        if unknown:
            click.echo(f"error: no playbook {', '.join(unknown)} (see python -m trailguard validate)", err=True)
            sys.exit(2)
        catalog = Catalog([p for p in catalog.playbooks if p.id in only])
    if central_account is not None and not (
        len(central_account) == 12 and central_account.isascii() and central_account.isdigit()
    ):
        click.echo(f"error: --central-account is {central_account!r}; expected a 12-digit AWS account id", err=True)
        sys.exit(2)
    request = ReplayRequest(
        inputs=inputs,
        catalog=catalog,
        playbook_paths=playbook_paths,
        only=only,
        own=OwnIdentities.of(settings, central_account, own_roles),
        lists=_trusted_lists(loaded.organization, trusted_accounts, trusted_organizations),
        controls=Controls(loaded.organization),
        output_format=output_format,
        include_skipped=include_skipped,
        stage_playbooks=tuple(settings.playbooks),
        **scale,
    )
    sys.exit(run_replay(request))


@main.command(
    "athena-ddl",
    help="Print the CREATE TABLE of the CloudTrail table Athena replays query (AWS's documented table, partitioned "
    "by account, region and day with partition projection) for the trail delivering to LOCATION (s3://BUCKET/PREFIX, "
    "or .../AWSLogs/o-ORGID/ for an organization trail).",
)
@athena_ddl_options
def athena_ddl(
    location: str, start: str, accounts: tuple[str, ...], regions: tuple[str, ...], database: str | None, table: str
) -> None:
    from trailguard.replay.command import athena_ddl as write_ddl

    sys.exit(write_ddl(location, start, accounts, regions, database, table))


def _trusted_lists(organization: Organization, accounts: tuple[str, ...], organizations: tuple[str, ...]) -> Any:
    """The settings file's named lists with the ones given on the command line added; exit 2 on a bad id."""
    from chalicelib.named_lists import TRUSTED_ACCOUNTS, TRUSTED_ORGANIZATIONS, NamedLists, problem

    given = {
        TRUSTED_ACCOUNTS: (accounts, "--trusted-account"),
        TRUSTED_ORGANIZATIONS: (organizations, "--trusted-organization"),
    }
    for name, (added, option) in given.items():
        wrong = problem(name, added)
        if wrong:
            click.echo(f"error: {option} {wrong}", err=True)
            sys.exit(2)
    lists = organization.lists
    return NamedLists.of({**lists.values, **{name: [*lists.get(name), *added] for name, (added, _) in given.items()}})


@main.command(
    help="Print the playbook JSON Schema (playbooks/playbook.schema.json is this output), or with --settings "
    "the organization settings file's (settings/settings.schema.json); with --write, write both and the "
    "validators generated from them (chalicelib/playbooks/ and chalicelib/organization/schema_validator.py)."
)
@click.option("--write", is_flag=True, help="Write both schemas and their generated validators.")
@click.option("--settings", "of_settings", is_flag=True, help="The organization settings file's schema.")
def schema(write: bool, of_settings: bool) -> None:
    from chalicelib.organization.schema import SCHEMA as SETTINGS_SCHEMA
    from chalicelib.playbooks.schema import SCHEMA
    from chalicelib.settings import PROJECT_PLAYBOOKS, PROJECT_ROOT

    if not write:
        click.echo(json.dumps(SETTINGS_SCHEMA if of_settings else SCHEMA, indent=2))
        return
    from trailguard.generate.validator import write_organization_validator, write_validator

    for path, document in (
        (PROJECT_PLAYBOOKS / "playbook.schema.json", SCHEMA),
        (PROJECT_ROOT / "settings" / "settings.schema.json", SETTINGS_SCHEMA),
    ):
        path.write_text(json.dumps(document, indent=2) + "\n")
        click.echo(f"wrote {path}")
    click.echo(f"wrote {write_validator()}")
    click.echo(f"wrote {write_organization_validator()}")


def _stage_settings(stage: str) -> Settings:
    from trailguard.generate.deployment import StageError, stage_settings

    try:
        settings = stage_settings(stage)
    except (StageError, ValueError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    _remember_context(stage=stage, table=settings.table)
    return settings


@main.command(
    help="Print the IAM policy of trailguard's Lambda roles, generated from the playbooks; or, with --write, "
    "write every generated deployment file of a stage: .chalice/policy-STAGE.json (the acting "
    "functions), .chalice/policy-STAGE-api.json (the Slack endpoint) and deploy/*-STAGE.json (the "
    "merge, member and central-bus CloudFormation templates, and, when the stage puts events out, the "
    "worked example routing them to Jira, ServiceNow and PagerDuty)."
)
@click.option("--stage", help="The stage of .chalice/config.json whose table, secrets and roles the policy names.")
@click.option("--api", is_flag=True, help="The Slack endpoint's policy (no remediation permission) instead.")
@click.option(
    "--member",
    is_flag=True,
    help="The member-account CloudFormation template (StackSet) instead (for --stage, default prod).",
)
@click.option(
    "--operator",
    is_flag=True,
    help="What an operator needs for incidents, exceptions, pause and resume (no KMS, no remediation) instead.",
)
@click.option("--write", is_flag=True, help="Write the stage's files instead of printing.")
def policy(stage: str | None, api: bool, member: bool, operator: bool, write: bool) -> None:
    from chalicelib.respond.handler import eventbridge_rules
    from trailguard.generate.policy import api_policy, lambda_policy

    if write and not stage:
        click.echo("error: --write needs --stage", err=True)
        sys.exit(2)
    if member and not stage:
        stage = "prod"
    loaded = _load((), stage, with_tests=False)
    settings, catalog = loaded.settings, loaded.catalog
    if write:
        assert stage is not None
        for path in _write_deployment_files(stage, settings, catalog):
            click.echo(f"wrote {path}")
        return
    if member:
        from trailguard.generate.templates import member_template

        document = member_template(stage or "prod", settings, catalog, eventbridge_rules(catalog))
    elif api:
        document = api_policy(settings)
    elif operator:
        from trailguard.generate.policy import operator_policy

        document = operator_policy(settings)
    elif stage:
        from trailguard.generate.deployment import CHALICE_DIR

        document = json.loads(deployment_files(stage, settings, catalog)[CHALICE_DIR / f"policy-{stage}.json"])
    else:
        document = lambda_policy(catalog, settings)
    click.echo(json.dumps(document, indent=2))


def deployment_files(stage: str, settings: Settings, catalog: Catalog) -> dict[Path, str]:
    """Every file `policy --stage STAGE --write` writes, by path, with its text."""
    from chalicelib.respond.handler import eventbridge_rules
    from trailguard.generate.deadletters import send_statement
    from trailguard.generate.deployment import (
        CHALICE_DIR,
        TEMPLATES_DIR,
        own_roles_in_central_account,
        stage_environment,
    )
    from trailguard.generate.operations import StageLayout
    from trailguard.generate.policy import api_policy, lambda_policy
    from trailguard.generate.templates import central_bus_template, member_template, merge_template

    rules = eventbridge_rules(catalog)
    own_roles = own_roles_in_central_account(stage, settings, [rule.name for rule in rules])
    layout = StageLayout.of(stage, settings, [rule.name for rule in rules], stage_environment(stage))
    documents = {
        CHALICE_DIR / f"policy-{stage}.json": lambda_policy(
            catalog, settings, own_roles=own_roles, dead_letters=send_statement(layout)
        ),
        CHALICE_DIR / f"policy-{stage}-api.json": api_policy(settings),
        TEMPLATES_DIR / f"merge-{stage}.json": merge_template(stage, settings, rules, layout.ops),
        TEMPLATES_DIR / f"member-{stage}.json": member_template(stage, settings, catalog, rules),
        TEMPLATES_DIR / f"central-bus-{stage}.json": central_bus_template(stage),
    }
    if settings.events_out is not None:
        from trailguard.generate.destinations import example_template

        documents[TEMPLATES_DIR / f"event-destinations-{stage}.json"] = example_template(stage, settings.events_out)
    return {path: json.dumps(document, indent=2) + "\n" for path, document in documents.items()}


def _write_deployment_files(stage: str, settings: Settings, catalog: Catalog) -> list[Path]:
    files = deployment_files(stage, settings, catalog)
    for path, text in files.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    return list(files)


@main.command(
    help="Create what chalice deploy does not: the stage's DynamoDB table (with TTL and point-in-time recovery), "
    "the KMS HMAC key that seals it, and its Slack secrets' placeholders; after chalice deploy, the dead-letter "
    "queues, the rules' retry policies, the on-failure destinations, log retention, the alarms and the dashboard, "
    "and the REST API's access logs. Run it again after every chalice deploy (which drops the rules' dead-letter "
    "queues). Safe to rerun; never overwrites a secret."
)
@click.option("--stage", required=True, help="A stage of .chalice/config.json (its TRAILGUARD_TABLE).")
@click.option(
    "--check",
    is_flag=True,
    help="Change nothing: report what a chalice deploy (or a person) undid; exit 1 if anything.",
)
def bootstrap(stage: str, check: bool) -> None:
    import boto3

    from trailguard.bootstrap import ensure_table

    settings = _stage_settings(stage)
    if not settings.table:
        click.echo(f"error: stage {stage} sets no TRAILGUARD_TABLE in .chalice/config.json", err=True)
        sys.exit(2)
    if check:
        sys.exit(_bootstrap_check(stage, settings))
    try:
        done = ensure_table(boto3.client("dynamodb"), settings.table)
    except Exception as error:
        from chalicelib.aws.errors import describe_error

        click.echo(f"error: table {settings.table}: {describe_error(error)}", err=True)
        sys.exit(1)
    for line in done or [f"table {settings.table} is ready (already existed, TTL and point-in-time recovery on)"]:
        click.echo(line)
    _bootstrap_integrity_key(stage, settings)
    _bootstrap_secrets(settings)
    deployed = _bootstrap_operations(stage, settings)
    if not _bootstrap_access_logs(stage) or not deployed:
        click.echo(
            f"next: chalice deploy --stage {stage}, then bootstrap --stage {stage} again (dead-letter queues, "
            "alarms, the dashboard and the API's access logs)"
        )


def _stage_layout(stage: str, settings: Settings) -> Any:
    from chalicelib.respond.handler import eventbridge_rules
    from trailguard.generate.deployment import stage_environment
    from trailguard.generate.operations import StageLayout

    rules = eventbridge_rules(Catalog.load(settings.playbooks, with_tests=False))
    try:
        return StageLayout.of(stage, settings, [rule.name for rule in rules], stage_environment(stage))
    except ValueError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


def _bootstrap_operations(stage: str, settings: Settings) -> bool:
    """Dead-letter queues, retry policies, on-failure destinations, log retention, alarms and
    the dashboard; False when the stage is not deployed yet."""
    import boto3

    from chalicelib.aws.errors import describe_error
    from trailguard.operations import BootstrapError, deployed, ensure

    layout = _stage_layout(stage, settings)
    try:
        if not deployed(boto3.client, layout):
            return False
        lines = ensure(boto3.client, layout)
    except BootstrapError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except Exception as error:
        click.echo(f"error: dead-letter queues, alarms and dashboard: {describe_error(error)}", err=True)
        sys.exit(1)
    for line in lines:
        click.echo(line)
    return True


def _bootstrap_check(stage: str, settings: Settings) -> int:
    import boto3

    from chalicelib.aws.errors import describe_error
    from trailguard.operations import drift

    try:
        problems = drift(boto3.client, _stage_layout(stage, settings))
    except Exception as error:
        click.echo(f"error: {describe_error(error)}", err=True)
        return 1
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"run: python -m trailguard bootstrap --stage {stage}", err=True)
        return 1
    click.echo(f"stage {stage}: dead-letter queues, retry policies, destinations, log retention and recovery in place")
    return 0


def _bootstrap_access_logs(stage: str) -> bool:
    """Turn on the access logs of the stage's REST API; False when it is not deployed yet."""
    import boto3

    from chalicelib.aws.errors import describe_error
    from trailguard.generate.access_logs import (
        AccessLogError,
        access_log_group,
        ensure_access_logs,
        has_logging_role,
        logging_role_commands,
    )
    from trailguard.generate.deployment import StageError, api_gateway_stage, deployed_rest_api_id

    apigateway = boto3.client("apigateway")

    def how_to_set_the_logging_role() -> str:
        identity = boto3.client("sts").get_caller_identity()
        commands = logging_role_commands(identity["Arn"].split(":")[1], identity["Account"])
        return "\n".join(f"  {command}" for command in commands)

    try:
        rest_api_id = deployed_rest_api_id(stage)
        if rest_api_id is None:
            if not has_logging_role(apigateway):
                click.echo(
                    "API Gateway has no CloudWatch Logs role in this account and region, and the API's access "
                    f"logs need one; set it (once per account and region):\n{how_to_set_the_logging_role()}"
                )
            return False
        lines = ensure_access_logs(
            apigateway, boto3.client("logs"), rest_api_id, api_gateway_stage(stage), access_log_group(stage)
        )
    except AccessLogError as error:
        click.echo(f"error: {error}:\n{how_to_set_the_logging_role()}", err=True)
        sys.exit(1)
    except StageError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    except Exception as error:
        click.echo(f"error: the API's access logs: {describe_error(error)}", err=True)
        sys.exit(1)
    for line in lines:
        click.echo(line)
    return True


def _bootstrap_integrity_key(stage: str, settings: Settings) -> None:
    """The key the acting functions seal the table with; only they may seal (its key policy)."""
    import boto3

    from chalicelib.aws.clients import partition_of
    from chalicelib.aws.seals import KEY_SPEC
    from chalicelib.respond.handler import eventbridge_rules
    from trailguard.bootstrap import ensure_key
    from trailguard.generate.deployment import acting_functions, role_name
    from trailguard.generate.policy import integrity_key_policy

    key = settings.integrity_key
    assert key is not None  # Settings refuses a table without one
    try:
        kms = boto3.client("kms")
        account = boto3.client("sts").get_caller_identity()["Account"]
        prefix = f"arn:{partition_of(kms.meta.region_name)}:iam::{account}"
        rules = eventbridge_rules(_load((), stage, with_tests=False).catalog)
        roles = [f"{prefix}:role/{role_name(stage, f)}" for f in acting_functions([rule.name for rule in rules])]
        description = f"trailguard ({stage}): seals what its acting functions write to the incidents table"
        done = ensure_key(kms, key, integrity_key_policy(f"{prefix}:root", roles), description)
    except Exception as error:
        from chalicelib.aws.errors import describe_error

        click.echo(f"error: integrity key {key}: {describe_error(error)}", err=True)
        sys.exit(1)
    for line in done or [f"integrity key {key} is ready (already existed, {KEY_SPEC})"]:
        click.echo(line)


def _bootstrap_secrets(settings: Settings) -> None:
    import boto3

    from chalicelib.slack.secrets import SecretError, ensure_placeholder, how_to_set, is_reference, read_secret

    for name, setting in (("bot token", settings.slack_token), ("signing secret", settings.slack_signing_secret)):
        if setting is None or not is_reference(setting):
            continue
        try:
            created = ensure_placeholder(setting, boto3.client)
            if created:
                click.echo(created)
            read_secret(setting, boto3.client)
        except SecretError:
            click.echo(f"the Slack {name} ({setting}) is a placeholder; set it: {how_to_set(setting)}")
            continue
        except Exception as error:
            from chalicelib.aws.errors import describe_error

            click.echo(f"error: the Slack {name} ({setting}): {describe_error(error)}", err=True)
            sys.exit(1)
        click.echo(f"the Slack {name} ({setting}) is set")


@main.command(
    help="Hand what a function's dead-letter queue holds (events EventBridge could not deliver, invocations that "
    "failed every retry) back to the deployed function, and delete each message it handled; what fails again "
    "stays, with the reason. Fix the cause first (the queue's alarm and the function's logs say it)."
)
@click.option("--stage", required=True, help="A stage of .chalice/config.json.")
@click.option(
    "--function",
    "function",
    default="respond_to_cloudtrail",
    show_default=True,
    help="Whose queue: respond_to_cloudtrail (or a second rule's function), posture_sweep or slack_worker.",
)
@click.option("--limit", default=1000, show_default=True, help="At most this many messages in one run.")
@click.option("--dry-run", is_flag=True, help="Read and report; hand nothing over, delete nothing.")
def redrive(stage: str, function: str, limit: int, dry_run: bool) -> None:
    import boto3
    from botocore.config import Config

    from chalicelib.aws.errors import describe_error
    from trailguard.redrive import invoke_function
    from trailguard.redrive import redrive as replay_queue

    layout = _stage_layout(stage, _stage_settings(stage))
    if function not in layout.background_functions:
        click.echo(
            f"error: {function} has no dead-letter queue; one of: {', '.join(layout.background_functions)}", err=True
        )
        sys.exit(2)
    sqs = boto3.client("sqs")
    queue = layout.dead_letter_queue(function)
    try:
        queue_url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        # a synchronous invocation waits as long as the function may run (chalice's lambda_timeout)
        lambda_client = boto3.client("lambda", config=Config(read_timeout=900, retries={"mode": "standard"}))
        report = replay_queue(
            sqs, queue_url, invoke_function(lambda_client, layout.function_name(function)), limit=limit, dry_run=dry_run
        )
    except Exception as error:
        click.echo(f"error: {queue}: {describe_error(error)}", err=True)
        sys.exit(1)
    click.echo(json.dumps(report.to_dict(), indent=2))
    click.echo(
        f"{report.received} received, {report.handled} handed to {layout.function_name(function)}, "
        f"{len(report.kept)} kept in {queue}",
        err=True,
    )
    if report.kept and not dry_run:
        sys.exit(1)


@main.command(
    "slack-manifest",
    help="Print the stage's Slack app manifest (scopes, the interactivity request URL, the bot's name): paste it "
    "at api.slack.com/apps, Create New App, From a manifest.",
)
@click.option("--stage", required=True, help="A stage of .chalice/config.json.")
@click.option(
    "--endpoint-url",
    help="The REST API's URL (a CloudFormation stack's EndpointURL output); default: the one chalice deploy "
    "recorded in .chalice/deployed/STAGE.json.",
)
@click.option("--bot-name", help="The app's and bot's name (default: trailguard for prod, else 'trailguard STAGE').")
def slack_manifest(stage: str, endpoint_url: str | None, bot_name: str | None) -> None:
    from trailguard.generate.deployment import CHALICE_DIR
    from trailguard.generate.slack_manifest import ManifestError, endpoint_from_deployed, manifest

    settings = _stage_settings(stage)
    approvers = {*settings.slack_approvers, *(a for p in _load((), stage).catalog.playbooks for a in p.approvers)}
    try:
        endpoint = endpoint_url or endpoint_from_deployed(stage, CHALICE_DIR)
        click.echo(json.dumps(manifest(stage, endpoint, approvers, bot_name), indent=2))
    except ManifestError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


_OCSF_HELP = "Print each as an OCSF 1.1.0 Detection Finding, one JSON object a line (for a SIEM, Security Lake)."


class _IncidentsGroup(click.Group):
    """`incidents --stage S` lists; `incidents --stage S ID` shows one (as before there were
    subcommands); `incidents approve ID` and the like decide."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().resolve_command(ctx, args)


def _table_settings(stage: str | None) -> Settings:
    ctx = click.get_current_context(silent=True)
    parent = ctx.parent if ctx is not None else None
    stage = stage or (parent.params.get("stage") if parent is not None else None)
    if not stage:
        click.echo("error: give --stage (a stage of .chalice/config.json)", err=True)
        sys.exit(2)
    settings = _stage_settings(stage)
    if not settings.table:
        click.echo(f"error: stage {stage} has no table (TRAILGUARD_TABLE)", err=True)
        sys.exit(2)
    return settings


def _claims(settings: Settings) -> Any:
    """The incidents as an operator reaches them: read, and decided by conditional writes, like
    a click; the work is the worker's, which checks every seal (the operator cannot seal)."""
    import boto3

    from chalicelib.incidents.lifecycle import Incidents
    from chalicelib.incidents.store import DynamoStore

    assert settings.table is not None
    store = DynamoStore(boto3.client("dynamodb"), settings.table, settings.retention_days)
    return Incidents(store, None, lease_seconds=settings.lease_seconds)


def _dispatcher(settings: Settings) -> Callable[[dict[str, Any]], Any]:
    """How the command line hands work to the stage's worker: an asynchronous Lambda invoke,
    as the Slack endpoint does."""
    import boto3

    from chalicelib.slack.worker import lambda_dispatch

    if not settings.slack_worker:
        click.echo("error: the stage names no worker (TRAILGUARD_SLACK_WORKER)", err=True)
        sys.exit(2)
    return lambda_dispatch(boto3.client("lambda"), settings.slack_worker)


def _who() -> str:
    from chalicelib.incidents.model import AWS_PRINCIPAL_PREFIX

    return AWS_PRINCIPAL_PREFIX + _caller_arn()


def _incident_line(incident: Any) -> str:
    event = incident.event
    mode = incident.mode + (" (lowered)" if incident.mode_note else "")
    return (
        f"{incident.created_at}  {incident.state.value:<12} {incident.id}  {incident.playbook_id:<40} {mode:<18} "
        f"{event.name} by {event.actor} in {event.account}/{event.region}"
    )


@main.group(
    cls=_IncidentsGroup,
    invoke_without_command=True,
    help="List incidents people may still act on or look at (open ones, notices, dry runs), show one with its "
    "history (incidents --stage S ID), or decide about one without Slack (approve, deny, undo, ack, retry, "
    "contain, deny-containment, release).",
)
@click.option("--stage", help="A stage of .chalice/config.json.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per line) instead of text.")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(sorted(state.value for state in LISTED_STATES)),
    help="Only incidents in this state (repeatable; default: every listed state).",
)
@click.option("--ocsf", is_flag=True, help=_OCSF_HELP)
@click.pass_context
def incidents(ctx: click.Context, stage: str | None, as_json: bool, states: tuple[str, ...], ocsf: bool) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from chalicelib.incidents.model import State
    from chalicelib.incidents.store import UnreadableIncident
    from chalicelib.outputs.ocsf import to_ocsf

    settings = _table_settings(stage)
    unreadable: list[UnreadableIncident] = []
    wanted = [State(state) for state in states] or sorted(LISTED_STATES)
    found = _claims(settings).open_incidents(wanted, unreadable=unreadable)
    for damaged in unreadable:
        click.echo(f"error: {damaged}", err=True)
    for incident in found:
        if ocsf:
            click.echo(json.dumps(to_ocsf(incident, settings.stage_label)))
        else:
            click.echo(json.dumps(incident.to_dict(), default=str) if as_json else _incident_line(incident))
    if not (as_json or ocsf):
        click.echo(f"{len(found)} incident{'s' if len(found) != 1 else ''}", err=True)


@incidents.command("show", help="One incident with its history.")
@click.argument("incident_id")
@click.option("--stage", help="A stage of .chalice/config.json.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--ocsf", is_flag=True, help=_OCSF_HELP)
def show_incident(incident_id: str, stage: str | None, as_json: bool, ocsf: bool) -> None:
    from chalicelib.incidents.model import HISTORY_FIRST
    from chalicelib.incidents.notify import describe
    from chalicelib.incidents.store import UnreadableIncident
    from chalicelib.outputs.ocsf import to_ocsf

    ctx = click.get_current_context()
    as_json = as_json or bool(ctx.parent and ctx.parent.params.get("as_json"))
    ocsf = ocsf or bool(ctx.parent and ctx.parent.params.get("ocsf"))
    settings = _table_settings(stage)
    try:
        incident = _claims(settings).get(incident_id)
    except UnreadableIncident as problem:
        click.echo(f"error: {problem}", err=True)
        sys.exit(1)
    if incident is None:
        click.echo(f"error: no incident {incident_id} in {settings.table}", err=True)
        sys.exit(1)
    if ocsf:
        click.echo(json.dumps(to_ocsf(incident, settings.stage_label)))
        return
    if as_json:
        click.echo(json.dumps(incident.to_dict(), indent=2, default=str))
        return
    click.echo(describe(incident))
    if incident.mode_note:
        click.echo(f"  mode {incident.mode_note}")
    if incident.notification is not None:
        where = incident.notification
        status = (
            "waiting for delivery" + (f" (last error: {where['error']})" if where.get("error") else "")
            if incident.notification_due
            else "up to date"
        )
        click.echo(f"  Slack message {where.get('channel')} {where.get('ts') or '(not posted)'}: {status}")
    for number, entry in enumerate(incident.history):
        if number == HISTORY_FIRST and incident.history_dropped:
            click.echo(f"  ... {incident.history_dropped} entries in between not kept ...")
        detail = f": {entry.detail}" if entry.detail else ""
        click.echo(f"  {entry.at}  {entry.who:<28} {entry.what:<12} -> {entry.state.value}{detail}")


_RUNS_STEPS = ("approve", "retry", "undo", "contain", "release")


def _decide(incident_id: str, transition: str, stage: str | None, reason: str | None, wait: float) -> None:
    """Decide as a click does (the same transitions, one conditional write, so a click at
    the same moment and this decide once), recorded as the AWS principal who ran it; then
    the worker carries it out."""
    from chalicelib.incidents.lifecycle import StaleIncident, UnknownIncident
    from chalicelib.incidents.model import BUSY_STATES, IllegalTransition

    settings = _table_settings(stage)
    if transition in _RUNS_STEPS:
        paused = _paused(settings)
        if paused:
            click.echo(f"error: nothing done: {paused}; python -m trailguard resume --stage STAGE first", err=True)
            sys.exit(1)
    door = _claims(settings)
    who = _who()
    try:
        decided = door.claim(incident_id, transition, who, reason)
    except (IllegalTransition, UnknownIncident) as error:
        click.echo(f"error: nothing done: {error}", err=True)
        sys.exit(1)
    except StaleIncident:
        click.echo("error: nothing done: someone else changed the incident at the same moment; look again", err=True)
        sys.exit(1)
    click.echo(f"{transition} of {decided.id} recorded, by {who}: {decided.state.value}")
    _dispatcher(settings)({"incident": decided.id, "version": decided.version})
    if wait <= 0:
        click.echo("the stage's worker carries it out; python -m trailguard incidents --stage STAGE ID shows it")
        return
    import time

    deadline = time.monotonic() + wait
    incident = door.get(decided.id)
    while incident is not None and incident.state in BUSY_STATES and time.monotonic() < deadline:
        time.sleep(1)
        incident = door.get(decided.id)
    if incident is None:
        click.echo(f"{decided.id} is gone (expired)")
    elif incident.state in BUSY_STATES:
        click.echo(f"{incident.id} is still {incident.state.value} after {wait:g} s; the worker goes on")
    else:
        click.echo(f"{incident.id} is {incident.state.value}" + (f": {incident.error}" if incident.error else ""))


def _paused(settings: Settings) -> str | None:
    import boto3

    from chalicelib.organization.switch import NEVER_SET, SwitchState, ssm_reader

    if not settings.switch_parameter:
        return None
    value = ssm_reader(lambda: boto3.client("ssm"), settings.switch_parameter)()
    state = NEVER_SET if value is None else SwitchState.from_value(value)
    return f"the stage is {state.describe()}" if state.paused else None


def _decision_command(name: str, transition: str, text: str) -> None:
    @incidents.command(name, help=text)
    @click.argument("incident_id")
    @click.option("--stage", help="A stage of .chalice/config.json.")
    @click.option("--reason", help="Why (kept in the incident's history).")
    @click.option(
        "--wait",
        type=float,
        default=60.0,
        show_default=True,
        help="Seconds to wait for the worker to finish (0: do not wait).",
    )
    def decide(incident_id: str, stage: str | None, reason: str | None, wait: float) -> None:
        _decide(incident_id, transition, stage, reason, wait)


_decision_command("approve", "approve", "Approve a proposal: the worker runs its steps.")
_decision_command("deny", "deny", "Deny a proposal: nothing is changed, and the sweep does not propose it again.")
_decision_command("undo", "undo", "Undo a remediation: the worker puts back what trailguard changed.")
_decision_command("ack", "acknowledge", "Acknowledge an incident: nothing more to do.")
_decision_command("retry", "retry", "Run the steps of a failed incident again.")
_decision_command(
    "contain", "contain", "Approve the containment an incident proposes: the worker runs its contain: steps."
)
_decision_command("deny-containment", "deny_containment", "Deny the containment: the repair stands alone.")
_decision_command("release", "release", "Release a containment: the worker undoes its contain: steps only.")


def _exception_store(settings: Settings) -> Any:
    import boto3

    from chalicelib.incidents.exceptions import DynamoExceptions

    assert settings.table is not None
    return DynamoExceptions(boto3.client("dynamodb"), settings.table, settings.retention_days)


@main.group(
    invoke_without_command=True,
    help="List exceptions (changes marked as expected: owner, reason, expiry), or add or revoke one without Slack.",
)
@click.option("--stage", help="A stage of .chalice/config.json.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per line) instead of text.")
@click.option("--all", "every", is_flag=True, help="Also those revoked or expired and checked again (a table scan).")
@click.pass_context
def exceptions(ctx: click.Context, stage: str | None, as_json: bool, every: bool) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from chalicelib.clock import utc_now

    settings = _table_settings(stage)
    store = _exception_store(settings)
    found = store.every() if every else store.listed()
    now = utc_now()
    for change in found:
        if as_json:
            click.echo(json.dumps({**change.to_dict(), "status": change.status(now)}, default=str))
            continue
        click.echo(
            f"{change.id}  {change.status(now):<18} {change.playbook_id:<40} {change.resource} in "
            f"{change.account}/{change.region}  until {change.expires_at}  owner {change.owner}: {change.reason}"
        )
    if not as_json:
        click.echo(f"{len(found)} exception{'s' if len(found) != 1 else ''}", err=True)


@exceptions.command(
    "add",
    help="Mark an incident's change as expected: for DAYS, its playbook's events on that resource are told, not "
    "acted on. Recorded on the incident as asked by you; the stage's worker makes it.",
)
@click.argument("incident_id")
@click.option("--stage", help="A stage of .chalice/config.json.")
@click.option("--reason", required=True, help="Why the change is expected (the change request, the ticket).")
@click.option("--days", type=click.IntRange(1, 365), default=7, show_default=True, help="How long it lasts.")
@click.option("--owner", help="Who answers for it (default: you).")
@click.option("--wait", type=float, default=60.0, show_default=True, help="Seconds to wait for the worker (0: do not).")
def add_exception(incident_id: str, stage: str | None, reason: str, days: int, owner: str | None, wait: float) -> None:
    from chalicelib.incidents.exceptions import MADE, REFUSED, REQUESTED
    from chalicelib.incidents.lifecycle import StaleIncident, UnknownIncident
    from chalicelib.incidents.model import BUSY_STATES
    from chalicelib.slack.worker import request_detail

    settings = _table_settings(stage)
    door = _claims(settings)
    incident = door.get(incident_id)
    if incident is None:
        click.echo(f"error: no incident {incident_id} in {settings.table}", err=True)
        sys.exit(1)
    if incident.state in BUSY_STATES:
        click.echo(f"error: incident {incident_id} is {incident.state.value}: ask again once it is done", err=True)
        sys.exit(1)
    if owner is not None and ":" in owner:
        click.echo("error: --owner may not contain ':' (an email or a name)", err=True)
        sys.exit(2)
    who = _who()
    try:
        noted = door.note(incident_id, who, REQUESTED, request_detail(days, reason, owner))
    except (StaleIncident, UnknownIncident) as error:
        click.echo(f"error: nothing done: {error}", err=True)
        sys.exit(1)
    count = len(noted.history)
    click.echo(f"exception asked on {incident_id} by {who}: for {days} days: {reason}")
    _dispatcher(settings)({"except": noted.id, "version": noted.version})
    answer = _answer_after(door, incident_id, count, (MADE, REFUSED), wait)
    if answer is None:
        click.echo("the stage's worker makes it; python -m trailguard exceptions --stage STAGE lists it")
    elif answer.what == MADE:
        click.echo(f"made: {answer.detail}")
    else:
        click.echo(f"error: refused: {answer.detail}", err=True)
        sys.exit(1)


def _answer_after(door: Any, incident_id: str, count: int, answers: tuple[str, ...], wait: float) -> Any:
    """The first history entry among `answers` recorded after the first `count` ones, waiting
    up to `wait` seconds for the worker; None if none came."""
    import time

    deadline = time.monotonic() + wait
    while True:
        incident = door.get(incident_id)
        later = incident.history_since(count) if incident is not None else []
        found = next((entry for entry in later if entry.what in answers), None)
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(1)


@exceptions.command("revoke", help="End an exception now: trailguard acts on that resource as its playbook says again.")
@click.argument("exception_id")
@click.option("--stage", help="A stage of .chalice/config.json.")
def revoke_exception(exception_id: str, stage: str | None) -> None:
    settings = _table_settings(stage)
    change = _exception_store(settings).get(exception_id)
    if change is None:
        click.echo(f"error: no exception {exception_id} in {settings.table}", err=True)
        sys.exit(1)
    who = _who()
    _dispatcher(settings)({"revoke": exception_id, "by": who})
    click.echo(
        f"revocation of {exception_id} ({change.playbook_id} on {change.resource}) handed to the worker, by {who}"
    )


@main.command(
    help="Print the organization's accounts, their names and OU paths, from AWS Organizations (with credentials "
    "in the management account or a delegated administrator), as the settings file's `accounts:`; with "
    "--stage, also say what differs from the stage's settings file."
)
@click.option("--stage", help="A stage of .chalice/config.json whose settings file to compare with.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the settings file's YAML.")
def organization(stage: str | None, as_json: bool) -> None:
    import boto3

    from trailguard.organization_map import accounts, as_settings

    found = accounts(boto3.client("organizations"))
    click.echo(json.dumps(found, indent=2) if as_json else as_settings(found), nl=False)
    if as_json:
        click.echo()
    if stage:
        _, known = _context(stage)
        for account, entry in found.items():
            have = known.accounts.get(account)
            path = tuple(entry["ou"].split("/"))
            if have is None or have.ou_path != path:
                click.echo(f"differs from {known.where}: {account} is in {entry['ou']}", err=True)


@main.command(
    help="Check every trail of every account and region in scope against the settings file's baseline "
    "(`baseline:`): each deviation goes through the playbooks as a synthetic event, and the report says what "
    "they would do; --fix carries it out (auto playbooks fix what is safe; others propose or tell)."
)
@stage_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--fix", is_flag=True, help="Act on the deviations as the playbooks decide (default: only say).")
def baseline(stage: str | None, settings_file: str | None, as_json: bool, fix: bool) -> None:
    from chalicelib.posture.baseline import table
    from chalicelib.runtime import Runtime

    loaded = _load((), stage, settings_file, with_tests=False)
    runtime = Runtime(loaded.settings, loaded.catalog, organization=loaded.organization)
    report = runtime.baseline(fix=fix).run()
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else table(report))
    sys.exit(1 if report.errors else 0)


@main.command(help="Write docs/playbooks.md and docs/slack-messages.md from the code (or --check they are current).")
@click.option(
    "--datasets",
    type=click.Path(exists=True, file_okay=False),
    help="The datasets folder (default: tests/data, or TRAILGUARD_DATASETS).",
)
@click.option("--check", is_flag=True, help="Exit 1 if a file differs from what would be written.")
def docs(datasets: str | None, check: bool) -> None:
    from trailguard.generate.docs import (
        DOCS_FILE,
        default_datasets,
        leaves_alone,
        render,
        stratus_coverage,
    )

    catalog = _load(()).catalog
    folder = Path(datasets) if datasets else default_datasets()
    stratus = folder / "stratus-detonation-logs"
    if not stratus.is_dir():
        click.echo(f"error: no Stratus detonation logs at {stratus} (give --datasets)", err=True)
        sys.exit(2)
    from trailguard.generate.slack_examples import EXAMPLES_FILE, render_examples

    generated = {
        DOCS_FILE: render(catalog, stratus_coverage(catalog, stratus), leaves_alone(folder)),
        EXAMPLES_FILE: render_examples(catalog),
    }
    stale = [path for path, text in generated.items() if (path.read_text() if path.exists() else "") != text]
    if check:
        for path in stale:
            click.echo(f"{path} is stale: run python -m trailguard docs", err=True)
        if stale:
            sys.exit(1)
        click.echo("ok: " + ", ".join(str(path) for path in generated) + " are current")
        return
    for path, text in generated.items():
        path.write_text(text)
        click.echo(f"wrote {path}")


@main.command(help="Play an attacker against a local AWS (moto on 127.0.0.1) and show what trailguard does.")
@click.option(
    "--output",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write each Slack message's Block Kit JSON (default: demo-output/).",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Afterwards, leave the local AWS, the Slack stub and `chalice local` up, and print how to play.",
)
def demo(output: str | None, keep_running: bool) -> None:
    from trailguard.demo import DEFAULT_OUTPUT, run_demo

    sys.exit(run_demo(Path(output) if output else DEFAULT_OUTPUT, keep_running))


# -- the kill switch ------------------------------------------------------------------------


def _caller_arn() -> str:
    """Who the operator is, as AWS asserts it (STS GetCallerIdentity): what decisions record."""
    import boto3

    arn: str = boto3.client("sts").get_caller_identity()["Arn"]
    return arn


def _switch_parameter(settings: Settings) -> str:
    if not settings.switch_parameter:
        click.echo("error: this stage has no switch parameter (TRAILGUARD_SWITCH_PARAMETER)", err=True)
        sys.exit(2)
    return settings.switch_parameter


def _set_switch(stage: str, state: str, reason: str | None) -> None:
    import boto3

    from chalicelib.clock import timestamp, utc_now
    from chalicelib.organization.switch import SwitchState
    from chalicelib.text import cut

    settings = _stage_settings(stage)
    name = _switch_parameter(settings)
    value = SwitchState(state, _caller_arn(), timestamp(utc_now()), cut(reason, 500) if reason else None)
    boto3.client("ssm").put_parameter(
        Name=name,
        Value=value.to_value(),
        Type="String",
        Overwrite=True,
        Description=f"trailguard ({stage}): active, dry-run or paused (python -m trailguard pause|dry-run|resume)",
    )
    click.echo(f"{stage}: {value.describe()} ({name})")
    click.echo(
        f"every function of the stage reads it within {settings.switch_seconds} s; "
        f"python -m trailguard status --stage {stage} shows it"
    )


@main.command(
    help="Stop all remediation in a stage, without a redeploy: new incidents only record and tell what would "
    "have been done, and approvals, retries and undos wait (they fail saying so). Sets the stage's SSM switch."
)
@click.option("--stage", required=True, help="A stage of .chalice/config.json.")
@click.option("--reason", help="Why (shown in incidents and messages).")
def pause(stage: str, reason: str | None) -> None:
    from chalicelib.organization.switch import PAUSED

    _set_switch(stage, PAUSED, reason)


@main.command(
    "dry-run",
    help="Put a stage in dry-run without a redeploy: new incidents record and tell what would have been done; "
    "decisions people already made are carried out. `resume` ends it.",
)
@click.option("--stage", required=True, help="A stage of .chalice/config.json.")
@click.option("--reason", help="Why (shown in incidents and messages).")
def dry_run(stage: str, reason: str | None) -> None:
    from chalicelib.organization.switch import DRY_RUN

    _set_switch(stage, DRY_RUN, reason)


@main.command(help="End a pause or a dry-run: the stage acts as its playbooks and settings say again.")
@click.option("--stage", required=True, help="A stage of .chalice/config.json.")
@click.option("--reason", help="Why (kept with the switch).")
def resume(stage: str, reason: str | None) -> None:
    from chalicelib.organization.switch import ACTIVE

    _set_switch(stage, ACTIVE, reason)


@main.command(help="Whether a stage is active, in dry-run or paused, who set it, when and why.")
@click.option("--stage", required=True, help="A stage of .chalice/config.json.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def status(stage: str, as_json: bool) -> None:
    import boto3

    from chalicelib.organization.switch import NEVER_SET, SwitchState, ssm_reader

    settings = _stage_settings(stage)
    name = _switch_parameter(settings)
    value = ssm_reader(lambda: boto3.client("ssm"), name)()  # an error is explained in one line
    state = NEVER_SET if value is None else SwitchState.from_value(value)
    if as_json:
        click.echo(json.dumps({"stage": stage, "parameter": name, **dataclasses.asdict(state)}))
        return
    click.echo(f"{stage}: {state.describe()} ({name})")
